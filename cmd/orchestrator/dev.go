//go:build !nodev

package main

import (
	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/internal/stack"
)

func (a *app) devCmd() *cobra.Command {
	opts := stack.DefaultDevOptions()
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run the whole system in one process on embedded defaults (what `make run` does)",
		Long: `Runs PostgreSQL (DATABASE_URL, else the server on 127.0.0.1:5432, else a throwaway
cluster under the data directory), an in-process S3 store, an embedded Temporal server with
its Web UI, the workers and the API. State lives under the data directory and survives
restarts. Ctrl-C stops everything.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return stack.RunDev(cmd.Context(), a.cfg, a.cfg.Logger(), opts)
		},
	}
	cmd.Flags().StringVar(&opts.DataDir, "data-dir", opts.DataDir, "where dev state lives")
	cmd.Flags().IntVar(&opts.TemporalPort, "temporal-port", opts.TemporalPort, "Temporal frontend port (0: any free port)")
	cmd.Flags().IntVar(&opts.UIPort, "ui-port", opts.UIPort, "Temporal Web UI port (0: no UI)")
	cmd.Flags().StringVar(&opts.S3Addr, "s3-addr", opts.S3Addr, "address of the in-process S3 store")
	cmd.Flags().StringVar(&opts.Database, "database", opts.Database, "database to use on a server dev found or started")
	return cmd
}
