package main

import (
	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/internal/stack"
)

func (a *app) apiCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "api",
		Short: "Serve the HTTP API (production; configured from the environment)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return stack.RunAPI(cmd.Context(), a.cfg, a.cfg.Logger())
		},
	}
}

func (a *app) workerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Run the Temporal workers (production; configured from the environment)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return stack.RunWorker(cmd.Context(), a.cfg, a.cfg.Logger())
		},
	}
}
