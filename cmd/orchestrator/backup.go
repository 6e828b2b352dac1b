package main

import "github.com/spf13/cobra"

// backupCommands are the operator commands of the backup domain.
func (a *app) backupCommands() []*cobra.Command { return nil }
