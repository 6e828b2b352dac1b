package main

import "github.com/spf13/cobra"

// forecastCommands are the operator commands of the forecast domain.
func (a *app) forecastCommands() []*cobra.Command { return nil }
