package main

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/db"
)

// dbCmd is `orchestrator db`: the administrator's side of the database.
func (a *app) dbCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Database administration: the roles the orchestrator runs as"}
	var adminURL string
	var printOnly bool
	var reassign []string
	boot := &cobra.Command{
		Use:   "bootstrap",
		Short: "Create or repair the database roles and privileges (run by an administrator)",
		Long: `Creates, idempotently, the roles orchestrator_owner (migrations), orchestrator_app (API and
workers), orchestrator_treasury (NOLOGIN, the treasury's rights), orchestrator_treasury_login
and orchestrator_backup (pg_dump, read-only), and their privileges in the database the
administrator URL names. Passwords are taken from the users' URLs in MIGRATE_DATABASE_URL,
DATABASE_URL, TREASURY_DATABASE_URL and BACKUP_DATABASE_URL, where set, and sent as SCRAM
verifiers. --print writes the SQL for a DBA to run with psql instead.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if printOnly {
				fmt.Fprint(cmd.OutOrStdout(), "BEGIN;\n"+db.BootstrapSQL()+"COMMIT;\n")
				return nil
			}
			if adminURL == "" {
				adminURL = a.cfg.Database.AdminURL
			}
			if adminURL == "" {
				return errors.New("db bootstrap: no administrator URL: pass --admin-url or set ADMIN_DATABASE_URL (a superuser of the application's database), or use --print")
			}
			passwords, err := a.rolePasswords()
			if err != nil {
				return err
			}
			if err := db.Bootstrap(cmd.Context(), adminURL, db.BootstrapOptions{Passwords: passwords, ReassignFrom: reassign}); err != nil {
				return err
			}
			set := make([]string, 0, len(passwords))
			for r := range passwords {
				set = append(set, r)
			}
			slices.Sort(set)
			msg := "roles ready: " + strings.Join(db.LoginRoles, ", ") + " (and " + db.TreasuryRole + ")"
			if len(set) > 0 {
				msg += "; passwords set for " + strings.Join(set, ", ")
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	boot.Flags().StringVar(&adminURL, "admin-url", "", "administrator's URL of the application's database (default ADMIN_DATABASE_URL)")
	boot.Flags().BoolVar(&printOnly, "print", false, "print the SQL instead of running it (no passwords in it)")
	boot.Flags().StringSliceVar(&reassign, "reassign-from", nil, "upgrade: the old application user whose objects pass to orchestrator_owner and whose treasury membership ends")
	cmd.AddCommand(boot)
	return cmd
}

// rolePasswords takes each login role's password from the URL that names it.
func (a *app) rolePasswords() (map[string]string, error) {
	out := map[string]string{}
	for _, v := range []struct{ name, url string }{
		{"MIGRATE_DATABASE_URL", a.cfg.Database.MigrateURL},
		{"DATABASE_URL", a.cfg.DatabaseURL},
		{"TREASURY_DATABASE_URL", a.cfg.Treasury.DatabaseURL},
		{"BACKUP_DATABASE_URL", a.cfg.Backup.DatabaseURL},
	} {
		if v.url == "" {
			continue
		}
		u, err := url.Parse(v.url)
		if err != nil || u.User == nil {
			continue
		}
		pw, ok := u.User.Password()
		if !ok || pw == "" || !slices.Contains(db.LoginRoles, u.User.Username()) {
			continue
		}
		if old, dup := out[u.User.Username()]; dup && old != pw {
			return nil, fmt.Errorf("%s: user %s has a different password in another URL", v.name, u.User.Username())
		}
		out[u.User.Username()] = pw
	}
	return out, nil
}
