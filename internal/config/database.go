package config

import (
	"errors"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Database holds the connection strings of the identities other than the runtime role
// (DATABASE_URL), and the override of the start-time role check.
type Database struct {
	// MigrateURL connects as the owner, orchestrator_owner, for `migrate`
	// (MIGRATE_DATABASE_URL); empty means DATABASE_URL.
	MigrateURL string
	// AdminURL connects as an administrator for `db bootstrap` (ADMIN_DATABASE_URL, or the
	// command's --admin-url).
	AdminURL string
	// AllowPrivileged lets `api` and `worker` run with a DATABASE_URL whose role could reach
	// the treasury (ALLOW_PRIVILEGED_DATABASE_URL); for an install not yet upgraded.
	AllowPrivileged bool
}

// MigrateURL is the URL migrations run with: MIGRATE_DATABASE_URL, else DATABASE_URL.
func (c *Config) MigrateURL() string {
	if c.Database.MigrateURL != "" {
		return c.Database.MigrateURL
	}
	return c.DatabaseURL
}

func loadDatabase(e *env) Database {
	d := Database{
		MigrateURL:      e.str("MIGRATE_DATABASE_URL", ""),
		AdminURL:        e.str("ADMIN_DATABASE_URL", ""),
		AllowPrivileged: e.boolean("ALLOW_PRIVILEGED_DATABASE_URL", false),
	}
	for name, u := range map[string]string{"MIGRATE_DATABASE_URL": d.MigrateURL, "ADMIN_DATABASE_URL": d.AdminURL} {
		if u == "" {
			continue
		}
		if _, err := pgxpool.ParseConfig(u); err != nil {
			e.fail(name, errors.New("not a valid PostgreSQL connection string"))
		}
	}
	return d
}
