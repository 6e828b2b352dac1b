package recovery

import (
	"context"
	"fmt"
	"net/url"
	"slices"

	"github.com/creatorvault/orchestrator/db"
)

// Bootstrap makes the application's roles and privileges on the server and database of
// adminURL (db.Bootstrap: idempotent; no password comes from a backup, pg_dump holds none),
// setting the passwords given (role → password) as SCRAM verifiers.
func Bootstrap(ctx context.Context, adminURL string, passwords map[string]string) error {
	return db.Bootstrap(ctx, adminURL, db.BootstrapOptions{Passwords: passwords})
}

// RolePasswords collects the passwords of the orchestrator's login roles from the users of
// URLs (DATABASE_URL, TREASURY_DATABASE_URL and the like): the restore sets them on the new
// server so that the application, and the serving check, log in as they will in production.
// URLs without a password or of other users are skipped; one role with two passwords is an
// error.
func RolePasswords(urls ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if raw == "" || err != nil || u.User == nil {
			continue
		}
		pw, ok := u.User.Password()
		role := u.User.Username()
		if !ok || pw == "" || !slices.Contains(db.LoginRoles, role) {
			continue
		}
		if old, dup := out[role]; dup && old != pw {
			return nil, fmt.Errorf("restore: role %s has two different passwords in the URLs given", role)
		}
		out[role] = pw
	}
	return out, nil
}
