package main

import "github.com/spf13/cobra"

// treasuryCommands are the operator commands of the treasury domain.
func (a *app) treasuryCommands() []*cobra.Command { return nil }
