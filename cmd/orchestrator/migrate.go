package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/db"
)

func (a *app) migrateCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply, roll back or list the database migrations (as the owner: MIGRATE_DATABASE_URL, else DATABASE_URL)",
	}
	run := func(do func(cmd *cobra.Command, m *db.Migrator) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, _ []string) error {
			url, variable := a.cfg.MigrateURL(), "MIGRATE_DATABASE_URL"
			if a.cfg.Database.MigrateURL == "" {
				variable = "DATABASE_URL"
				if err := a.cfg.RequireDatabase(); err != nil {
					return errors.New("MIGRATE_DATABASE_URL and DATABASE_URL: not set (the owner's URL, postgres://orchestrator_owner@host:5432/db)")
				}
			}
			pool, err := db.Open(cmd.Context(), url)
			if err != nil {
				return fmt.Errorf("%s: %w", variable, err)
			}
			defer pool.Close()
			m, err := db.NewMigrator(pool, nil)
			if err != nil {
				return err
			}
			defer func() { _ = m.Close() }()
			return do(cmd, m)
		}
	}
	cmd.AddCommand(
		&cobra.Command{
			Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
			RunE: run(func(cmd *cobra.Command, m *db.Migrator) error {
				n, err := m.Up(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "applied %d migration(s)\n", n)
				return nil
			}),
		},
		&cobra.Command{
			Use: "down", Short: "Roll back the newest applied migration", Args: cobra.NoArgs,
			RunE: run(func(cmd *cobra.Command, m *db.Migrator) error {
				st, err := m.Down(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "rolled back %05d %s\n", st.Version, st.Name)
				return nil
			}),
		},
		&cobra.Command{
			Use: "status", Short: "List the migrations and whether each is applied", Args: cobra.NoArgs,
			RunE: run(func(cmd *cobra.Command, m *db.Migrator) error {
				st, err := m.Status(cmd.Context())
				if err != nil {
					return err
				}
				for _, s := range st {
					state := "pending"
					if s.Applied {
						state = "applied"
					}
					fmt.Fprintf(cmd.OutOrStdout(), "%05d  %-8s %s\n", s.Version, state, s.Name)
				}
				return nil
			}),
		},
	)
	return cmd
}
