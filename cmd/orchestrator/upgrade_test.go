package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func hexID(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// asUser is u with its user (and password, when pw is not empty) replaced.
func asUser(t *testing.T, u, user, pw string) string {
	t.Helper()
	p, err := url.Parse(u)
	require.NoError(t, err)
	if pw != "" {
		p.User = url.UserPassword(user, pw)
	} else {
		p.User = url.User(user)
	}
	return p.String()
}

// oldInstall makes a database as the migrations before 00010 left it: one application user
// (named like the old compose file's `orchestrator`, made unique here because roles are
// cluster-wide) owns the database, ran migrations 00001–00009 and, through 00005, is a
// member of orchestrator_treasury. It returns the administrator's URL and the old user's.
func oldInstall(t *testing.T) (adminURL, oldUser, oldURL string) {
	t.Helper()
	ctx := t.Context()
	srv := testharness.Postgres(t).Server
	name := "upgrade_" + hexID(4)
	adminURL, err := srv.CreateDatabase(ctx, name, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.DropDatabase(context.Background(), name) })
	admin, err := db.Open(ctx, adminURL)
	require.NoError(t, err)
	defer admin.Close()

	oldUser = "legacy_orchestrator_" + hexID(4)
	pw := ""
	if p, _ := url.Parse(adminURL); p != nil && p.User != nil {
		if _, ok := p.User.Password(); ok {
			pw = hexID(16)
		}
	}
	// CREATEROLE: what the old 00005 needed to create and grant orchestrator_treasury.
	stmt := `CREATE ROLE ` + oldUser + ` LOGIN CREATEROLE`
	if pw != "" {
		stmt += ` PASSWORD '` + pw + `'`
	}
	_, err = admin.Exec(ctx, stmt)
	require.NoError(t, err)
	t.Cleanup(func() {
		a, err := db.Open(context.Background(), srv.URL())
		if err == nil {
			_, _ = a.Exec(context.Background(), `DROP ROLE IF EXISTS `+oldUser)
			a.Close()
		}
	})
	_, err = admin.Exec(ctx, `ALTER DATABASE `+name+` OWNER TO `+oldUser)
	require.NoError(t, err)
	oldURL = asUser(t, adminURL, oldUser, pw)

	old, err := db.Open(ctx, oldURL)
	require.NoError(t, err)
	defer old.Close()
	m, err := db.NewMigrator(old, nil)
	require.NoError(t, err)
	n, err := m.UpTo(ctx, 9)
	require.NoError(t, err)
	require.Equal(t, 9, n)
	require.NoError(t, m.Close())
	return adminURL, oldUser, oldURL
}

// TestUpgradeFromTheOldLayout: a database at the old migration head (00009), where the
// application's user is a member of the treasury role and can change the fund, is brought to
// the new layout by the README's steps (`db bootstrap --reassign-from`, then `migrate up` as
// the owner), keeping its data; afterwards the runtime role cannot touch the treasury.
func TestUpgradeFromTheOldLayout(t *testing.T) {
	ctx := t.Context()
	adminURL, oldUser, oldURL := oldInstall(t)
	admin, err := db.Open(ctx, adminURL)
	require.NoError(t, err)
	defer admin.Close()

	// The old install's data: a user and two yields, written the old way (the application's
	// own pool, SET ROLE inside db.Treasury).
	old, err := db.Open(ctx, oldURL)
	require.NoError(t, err)
	defer old.Close()
	_, err = old.Exec(ctx, `INSERT INTO users (id, role, display_name) VALUES ($1, 'fan', 'Old Fan')`, uuid.New())
	require.NoError(t, err)
	for _, gross := range []int64{10_000, 30_000} {
		_, err = db.NewTreasury(old).RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: gross, OccurredAt: time.Now()})
		require.NoError(t, err)
	}
	// The flaw this issue fixes: the old user writes the fund directly, no SET ROLE.
	_, err = old.Exec(ctx, `UPDATE treasury.balances SET updated_at = now() WHERE asset = 'XLM'`)
	require.NoError(t, err, "the old layout lets the application's user write the fund")
	var fund int64
	require.NoError(t, admin.QueryRow(ctx, `SELECT balance_stroops FROM treasury.balances WHERE asset = 'XLM'`).Scan(&fund))
	old.Close()

	roles, _, err := db.DevRoleURLs(adminURL)
	require.NoError(t, err)
	env := []string{
		"ADMIN_DATABASE_URL=" + adminURL,
		"MIGRATE_DATABASE_URL=" + roles.Owner,
		"DATABASE_URL=" + roles.App,
		"TREASURY_DATABASE_URL=" + roles.Treasury,
		"BACKUP_DATABASE_URL=" + roles.Backup,
	}

	// Bad input first: the old user as DATABASE_URL is refused at start, in one line.
	code, _, stderr := run(t, []string{"DATABASE_URL=" + oldURL, "JWT_SECRET=" + strings.Repeat("k", 40), "TREASURY_DATABASE_URL=" + roles.Treasury}, "api")
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
	require.Contains(t, stderr, "DATABASE_URL: role "+oldUser+" ")
	require.Contains(t, stderr, "is a member of orchestrator_treasury")
	// Migrating as the old user is refused by 00010 and changes nothing.
	code, _, stderr = run(t, []string{"MIGRATE_DATABASE_URL=" + oldURL}, "migrate", "up")
	require.NotZero(t, code)
	require.Contains(t, stderr, "migrations must run as orchestrator_owner")
	var head int64
	require.NoError(t, admin.QueryRow(ctx, `SELECT max(version_id) FROM goose_db_version`).Scan(&head))
	require.Equal(t, int64(9), head)

	// The README's steps.
	code, out, stderr := run(t, env, "db", "bootstrap", "--reassign-from", oldUser)
	require.Zero(t, code, stderr)
	require.Contains(t, out, "roles ready")
	// Every migration after 00009 is pending (00010 and whatever later issues added).
	m, err := db.NewMigrator(admin, nil)
	require.NoError(t, err)
	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.NoError(t, m.Close())
	pending := 0
	for _, s := range st {
		if !s.Applied {
			require.Greater(t, s.Version, int64(9), s.Name)
			pending++
		}
	}
	require.Positive(t, pending)
	code, out, stderr = run(t, env, "migrate", "up")
	require.Zero(t, code, stderr)
	require.Contains(t, out, fmt.Sprintf("applied %d migration(s)", pending))
	code, out, stderr = run(t, env, "treasury", "verify")
	require.Zero(t, code, stderr)
	require.Contains(t, out, "intact: 2 events")

	// The new layout.
	var member bool
	var oldOwned, users int
	var after int64
	require.NoError(t, admin.QueryRow(ctx, `SELECT pg_has_role($1, 'orchestrator_treasury', 'MEMBER')`, oldUser).Scan(&member))
	require.False(t, member, "the old user's treasury membership ended")
	require.NoError(t, admin.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = $1`, oldUser).Scan(&oldOwned))
	require.Zero(t, oldOwned, "the owner owns what the old user owned")
	require.NoError(t, admin.QueryRow(ctx, `SELECT balance_stroops FROM treasury.balances WHERE asset = 'XLM'`).Scan(&after))
	require.Equal(t, fund, after, "the fund is kept")

	app, err := db.Open(ctx, roles.App)
	require.NoError(t, err)
	defer app.Close()
	require.NoError(t, app.QueryRow(ctx, `SELECT count(*) FROM users`).Scan(&users))
	require.Equal(t, 1, users, "the runtime role reads the application's data")
	require.NoError(t, db.CheckRuntimeRole(ctx, app, "DATABASE_URL", "ALLOW_PRIVILEGED_DATABASE_URL"))
	for _, sql := range []string{
		`SELECT count(*) FROM treasury.balances`,
		`UPDATE treasury.balances SET updated_at = now()`,
		`INSERT INTO treasury.events DEFAULT VALUES`,
		`DELETE FROM treasury.yield_events`,
	} {
		_, err := app.Exec(ctx, sql)
		require.ErrorContains(t, err, "permission denied", sql)
	}
	// Running the bootstrap again changes nothing and still succeeds.
	code, _, stderr = run(t, env, "db", "bootstrap")
	require.Zero(t, code, stderr)
}

// TestPrivilegedDatabaseURLRefused: outside dev, `api` and `worker` refuse a DATABASE_URL
// whose role is a superuser or a member of the treasury role, in one line saying why and how
// to fix it, unless ALLOW_PRIVILEGED_DATABASE_URL=true.
func TestPrivilegedDatabaseURLRefused(t *testing.T) {
	pg := testharness.Postgres(t)
	temporal := testharness.TemporalAddr(t)
	secret := "JWT_SECRET=" + strings.Repeat("s", 40)
	cases := []struct {
		name, url, want string
		cmd             string
	}{
		{"api as superuser", pg.AdminURL, "is a superuser", "api"},
		{"api as treasury member", pg.TreasuryURL, "is a member of orchestrator_treasury", "api"},
		{"api as owner", pg.OwnerURL, "owns the tables", "api"},
		{"worker as superuser", pg.AdminURL, "is a superuser", "worker"},
		{"worker as treasury member", pg.TreasuryURL, "is a member of orchestrator_treasury", "worker"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := []string{"DATABASE_URL=" + c.url, "TREASURY_DATABASE_URL=" + pg.TreasuryURL, secret, "TEMPORAL_ADDRESS=" + temporal, "TASK_QUEUES=treasury"}
			code, _, stderr := run(t, env, c.cmd)
			require.Equal(t, 1, code, stderr)
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			require.True(t, strings.HasPrefix(stderr, "orchestrator: DATABASE_URL: role "), stderr)
			require.Contains(t, stderr, c.want)
			require.Contains(t, stderr, "connect as orchestrator_app")
			require.Contains(t, stderr, "ALLOW_PRIVILEGED_DATABASE_URL=true")
			if u, _ := url.Parse(c.url); u != nil && u.User != nil {
				if pw, ok := u.User.Password(); ok && pw != "" {
					require.NotContains(t, stderr, pw)
				}
			}
		})
	}
}

// The override: with ALLOW_PRIVILEGED_DATABASE_URL=true the same superuser URL starts.
func TestPrivilegedDatabaseURLOverride(t *testing.T) {
	pg := testharness.Postgres(t)
	addr := freeAddr(t)
	p := start(t, []string{"DATABASE_URL=" + pg.AdminURL, "TREASURY_DATABASE_URL=" + pg.TreasuryURL,
		"JWT_SECRET=" + strings.Repeat("s", 40), "HTTP_ADDR=" + addr, "ALLOW_PRIVILEGED_DATABASE_URL=true"}, "api")
	p.waitHTTP(t, "http://"+addr+"/health", 200, 30*time.Second)
}
