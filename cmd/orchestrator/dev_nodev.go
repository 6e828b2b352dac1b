//go:build nodev

package main

import (
	"errors"

	"github.com/spf13/cobra"
)

// errNoDev is what `dev` answers in a binary built with -tags nodev (the production image):
// the embedded Temporal server, S3 store and throwaway PostgreSQL are not in it.
var errNoDev = errors.New("dev: this binary was built without dev (-tags nodev, the production image); build the full binary with `make build` for `orchestrator dev`")

func (a *app) devCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "dev",
		Short: "Not in this binary (built with -tags nodev); `make build` builds the full one",
		// Whatever follows, the answer is the same one line.
		DisableFlagParsing: true,
		RunE:               func(*cobra.Command, []string) error { return errNoDev },
	}
}
