package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/spf13/cobra"
)

// healthcheckCmd probes a URL for container health checks, where the image has no curl.
func (a *app) healthcheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "healthcheck URL",
		Short: "Exit 0 when URL answers 200 (for container health checks)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := http.Client{Timeout: 3 * time.Second}
			resp, err := c.Get(args[0])
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%s answered %d", args[0], resp.StatusCode)
			}
			return nil
		},
	}
}
