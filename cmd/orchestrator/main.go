// Command orchestrator is the one binary of the creator platform's operations backbone: it
// runs the whole system for development (dev), the production processes (api, worker), and
// the operator's tools (migrate, token, backup, restore, drill, forecast, bailout, treasury).
//
// main stays thin: it parses flags, loads the configuration and calls a package.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/internal/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRoot().ExecuteContext(ctx); err != nil {
		// One line saying what is wrong, and a non-zero exit.
		msg := strings.Join(strings.Fields(strings.ReplaceAll(err.Error(), "\n", "; ")), " ")
		fmt.Fprintln(os.Stderr, "orchestrator: "+msg)
		os.Exit(1)
	}
}

// app carries the loaded configuration to the subcommands.
type app struct {
	cfg *config.Config
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:           "orchestrator",
		Short:         "Operations backbone of the creator platform: workflows, API and tools",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load()
			if err != nil {
				return err
			}
			a.cfg = cfg
			return nil
		},
	}
	root.AddCommand(
		a.devCmd(), a.apiCmd(), a.workerCmd(), a.migrateCmd(), a.dbCmd(), a.tokenCmd(), a.demoCmd(), a.healthcheckCmd(),
	)
	root.AddCommand(a.treasuryCommands()...)
	root.AddCommand(a.backupCommands()...)
	root.AddCommand(a.forecastCommands()...)
	return root
}
