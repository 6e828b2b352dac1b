package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/demo"
	"github.com/creatorvault/orchestrator/internal/stack"
)

func (a *app) demoCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "demo", Short: "The demo dataset of the README's tour"}
	var anchor, dataDir, envFile string
	seed := &cobra.Command{
		Use:   "seed",
		Short: "Seed the demo dataset into DATABASE_URL (idempotent) and write the tour's tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.cfg.RequireDatabase(); err != nil {
				return err
			}
			at := time.Now()
			if anchor != "" {
				t, err := time.Parse(time.DateOnly, anchor)
				if err != nil {
					return errors.New("--anchor must be a date such as 2026-11-25")
				}
				at = t
			}
			pool, err := db.Open(cmd.Context(), a.cfg.DatabaseURL)
			if err != nil {
				return fmt.Errorf("DATABASE_URL: %w", err)
			}
			defer pool.Close()
			d, err := demo.Seed(cmd.Context(), pool, at)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "seeded the demo dataset ending %s\n", d.Anchor.Format(time.DateOnly))
			secret, err := a.jwtSecret(dataDir)
			if err != nil {
				fmt.Fprintln(cmd.OutOrStdout(), "no JWT secret configured: tokens not written (set JWT_SECRET)")
				return nil
			}
			if err := os.MkdirAll(dataDir, 0o700); err != nil {
				return err
			}
			if envFile == "" {
				envFile = dataDir + "/demo.env"
			}
			if err := stack.WriteDemoEnv(envFile, d, secret); err != nil {
				return err
			}
			d.WriteTour(cmd.OutOrStdout(), "http://"+a.cfg.HTTPAddr, envFile)
			return nil
		},
	}
	seed.Flags().StringVar(&anchor, "anchor", "", "the day the 180 days of history end (default today)")
	seed.Flags().StringVar(&dataDir, "data-dir", ".data", "where `orchestrator dev` keeps its generated secret")
	seed.Flags().StringVar(&envFile, "env-file", "", "where to write the tour's tokens (default <data-dir>/demo.env)")
	cmd.AddCommand(seed)
	return cmd
}
