// Package recovery turns a backup into a working system: on a server that may never have seen
// the application it checks everything it can before touching anything, creates the target
// database, runs the role bootstrap, restores with the owners and grants the source had,
// clears ephemeral rows, reconciles the backup catalog with the object store, restores
// Temporal's state when asked, and ends with a serving check as the application's own roles.
// `orchestrator restore` and every fire drill go through Restore.
package recovery

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
)

// Roles a restored database is served by (made by the role bootstrap).
const (
	RuntimeRole       = db.AppRole
	TreasuryLoginRole = db.TreasuryLoginRole
)

// Options configure one restore.
type Options struct {
	Store backup.Store
	// Manifest is the backup to restore (backup.Resolve).
	Manifest *backup.Manifest
	// TargetURL connects an administrator (a role that may create roles and databases) to
	// the database to restore into.
	TargetURL string
	// Create creates the target database when it does not exist.
	Create bool
	// Clean restores into a database that is not empty.
	Clean bool
	// NoOwner restores as the administrator instead of with the source's owners and grants
	// (for backups made before the role bootstrap existed).
	NoOwner    bool
	Identities []age.Identity
	Jobs       int
	PGBinDir   string
	// RuntimeURL and TreasuryURL are how the serving check logs in; empty means the target's
	// server and database as RuntimeRole and TreasuryLoginRole (no password: trust or a
	// password file), or the user and password of RuntimeTemplate and TreasuryTemplate.
	RuntimeURL, TreasuryURL           string
	RuntimeTemplate, TreasuryTemplate string
	// WithTemporal restores the backup's Temporal parts too: SQLite into TemporalFile, each
	// PostgreSQL database into the database of its name on TemporalServerURL.
	WithTemporal      bool
	TemporalFile      string
	TemporalServerURL string
	// Progress, when set, reports each phase's bytes.
	Progress func(phase string, done, total int64)
	// Passwords are further login roles' passwords (role → password) the bootstrap sets, on
	// top of those of the serving check's URLs (the CLI adds MIGRATE_DATABASE_URL's and
	// BACKUP_DATABASE_URL's).
	Passwords map[string]string
	// Bootstrap makes the application's roles on the target's server; nil means Bootstrap
	// with Passwords and the passwords of the serving check's URLs.
	Bootstrap func(ctx context.Context, adminURL string) error
}

// Step is one timed step of a restore.
type Step struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// Result reports a restore.
type Result struct {
	Restore  *backup.RestoreResult `json:"-"`
	Created  bool                  `json:"created"`
	Cleared  []string              `json:"cleared"`
	Temporal []string              `json:"temporal,omitempty"`
	Drift    db.CatalogDrift       `json:"catalog_drift"`
	Serving  db.ServingReport      `json:"serving"`
	// ErasuresReapplied counts the registered erasures the backup did not hold as completed.
	ErasuresReapplied int    `json:"erasures_reapplied"`
	Steps             []Step `json:"steps"`
}

func (r *Result) step(name string, start time.Time) {
	r.Steps = append(r.Steps, Step{Name: name, Seconds: time.Since(start).Seconds()})
}

// Restore restores o.Manifest's backup into o.TargetURL and proves the result serves the
// application. Bad input (a wrong identity or passphrase, a missing database without
// Create, a non-empty target without Clean, a Temporal destination in use) is reported
// before anything is changed; a failure after the target database was created drops it.
func Restore(ctx context.Context, o Options) (res *Result, err error) {
	m := o.Manifest
	if m == nil {
		return nil, errors.New("restore: no backup")
	}
	res = &Result{Cleared: []string{}}
	if err := backup.CheckIdentity(ctx, o.Store, m, o.Identities); err != nil {
		return nil, err
	}
	if o.WithTemporal {
		if err := checkTemporal(ctx, o); err != nil {
			return nil, err
		}
	}
	bootstrap := o.Bootstrap
	if bootstrap == nil {
		passwords, err := bootstrapPasswords(o)
		if err != nil {
			return nil, err
		}
		bootstrap = func(ctx context.Context, adminURL string) error { return Bootstrap(ctx, adminURL, passwords) }
	}
	target, err := inspectTarget(ctx, o.TargetURL)
	if err != nil {
		return nil, err
	}
	switch {
	case !target.exists && !o.Create:
		return nil, fmt.Errorf("restore: database %q does not exist on the target server; pass --create to create it", target.name)
	case target.exists && target.relations > 0 && !o.Clean:
		return nil, fmt.Errorf("restore: the target database %q is not empty (%d relations); restore into a new database or pass --clean", target.name, target.relations)
	}

	start := time.Now()
	if !target.exists {
		if err := target.create(ctx); err != nil {
			return nil, err
		}
		res.Created = true
		defer func() {
			if err != nil {
				_ = target.drop(context.WithoutCancel(ctx))
			}
		}()
	}
	if err := bootstrap(ctx, o.TargetURL); err != nil {
		return nil, fmt.Errorf("restore: role bootstrap: %w", err)
	}
	res.step("create database and bootstrap roles", start)

	res.Restore, err = backup.Restore(ctx, o.Store, backup.RestoreOptions{
		ID: m.ID, TargetURL: o.TargetURL, Identities: o.Identities, Clean: o.Clean, NoOwner: o.NoOwner,
		Jobs: o.Jobs, PGBinDir: o.PGBinDir, Progress: o.Progress,
	})
	if res.Restore != nil {
		res.Steps = append(res.Steps,
			Step{"download and check SHA-256", res.Restore.Download.Seconds()},
			Step{"pg_restore", res.Restore.Restore.Seconds()},
			Step{"fingerprint", res.Restore.Verify.Seconds()})
	}
	if err != nil {
		return res, err
	}

	start = time.Now()
	if res.Drift, err = settle(ctx, o.TargetURL, o.Store); err != nil {
		return res, err
	}
	res.Cleared = append(res.Cleared, db.EphemeralTables...)
	res.step("clear ephemeral rows and reconcile the catalog", start)

	// Issue 18: backups are immutable, so erasures made after this one are applied again
	// before the database serves anyone.
	start = time.Now()
	if res.ErasuresReapplied, err = db.ReapplyErasuresTo(ctx, o.TargetURL,
		db.ErasureRegister{S3: o.Store.S3, Bucket: o.Store.Bucket}, time.Now()); err != nil {
		return res, fmt.Errorf("restore: re-applying erasures (erasure register): %w", err)
	}
	res.step("re-apply erasures", start)

	if o.WithTemporal {
		start = time.Now()
		if res.Temporal, err = restoreTemporal(ctx, o); err != nil {
			return res, err
		}
		res.step("restore Temporal's state", start)
	}

	start = time.Now()
	runtimeURL, treasuryURL := ServingURLs(o)
	res.Serving, err = db.ServingCheck(ctx, runtimeURL, treasuryURL)
	res.step("serving check", start)
	if err != nil {
		return res, fmt.Errorf("restore %s: %w", m.ID, err)
	}
	return res, nil
}

// settle clears the restored database's ephemeral rows and reconciles its backup catalog
// with the object store (the restored catalog is as old as the backup).
func settle(ctx context.Context, targetURL string, st backup.Store) (db.CatalogDrift, error) {
	pool, err := db.Open(ctx, targetURL)
	if err != nil {
		return db.CatalogDrift{}, fmt.Errorf("restore: %w", err)
	}
	defer pool.Close()
	if err := db.ClearEphemeral(ctx, pool); err != nil {
		return db.CatalogDrift{}, fmt.Errorf("restore: %w", err)
	}
	return ReconcileCatalog(ctx, pool, st)
}

// bootstrapPasswords are o.Passwords and the passwords of the serving check's URLs.
func bootstrapPasswords(o Options) (map[string]string, error) {
	runtimeURL, treasuryURL := ServingURLs(o)
	passwords, err := RolePasswords(runtimeURL, treasuryURL)
	if err != nil {
		return nil, err
	}
	for role, pw := range o.Passwords {
		if old, dup := passwords[role]; dup && old != pw {
			return nil, fmt.Errorf("restore: role %s has two different passwords in the URLs given", role)
		}
		passwords[role] = pw
	}
	return passwords, nil
}

// ServingURLs are the URLs the serving check logs in with.
func ServingURLs(o Options) (runtimeURL, treasuryURL string) {
	runtimeURL, treasuryURL = o.RuntimeURL, o.TreasuryURL
	if runtimeURL == "" {
		runtimeURL = asRole(o.TargetURL, o.RuntimeTemplate, RuntimeRole)
	}
	if treasuryURL == "" {
		treasuryURL = asRole(o.TargetURL, o.TreasuryTemplate, TreasuryLoginRole)
	}
	return runtimeURL, treasuryURL
}

// asRole is target's server and database as role, with the password template has for it
// (template is DATABASE_URL or TREASURY_DATABASE_URL; one of another user, e.g. an install
// from before the role bootstrap, lends no password).
func asRole(target, template, role string) string {
	u, err := url.Parse(target)
	if err != nil {
		return target
	}
	u.User = url.User(role)
	if t, err := url.Parse(template); err == nil && template != "" && t.User != nil && t.User.Username() == role {
		u.User = t.User
	}
	return u.String()
}

// target is the database a restore goes into.
type target struct {
	name      string
	adminURL  string // the maintenance database on the same server
	exists    bool
	relations int
}

func inspectTarget(ctx context.Context, targetURL string) (*target, error) {
	cfg, err := pgx.ParseConfig(targetURL)
	if err != nil {
		return nil, errors.New("restore: --target is not a PostgreSQL URL")
	}
	t := &target{name: cfg.Database, adminURL: pgcluster.WithDatabase(targetURL, "postgres")}
	if t.name == "" {
		return nil, errors.New("restore: --target names no database")
	}
	conn, err := pgx.Connect(ctx, t.adminURL)
	if err != nil {
		return nil, fmt.Errorf("restore: connect to the target server: %w", err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, t.name).Scan(&t.exists); err != nil {
		return nil, fmt.Errorf("restore: inspect the target server: %w", err)
	}
	if !t.exists {
		return t, nil
	}
	tc, err := pgx.Connect(ctx, targetURL)
	if err != nil {
		return nil, fmt.Errorf("restore: connect to the target: %w", err)
	}
	defer tc.Close(context.Background())
	if err := tc.QueryRow(ctx, `
		SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`).Scan(&t.relations); err != nil {
		return nil, fmt.Errorf("restore: inspect the target: %w", err)
	}
	return t, nil
}

func (t *target) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, t.adminURL)
	if err != nil {
		return fmt.Errorf("restore: connect to the target server: %w", err)
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

func (t *target) create(ctx context.Context) error {
	if err := t.exec(ctx, "CREATE DATABASE "+pgx.Identifier{t.name}.Sanitize()); err != nil {
		return fmt.Errorf("restore: create database %q: %w", t.name, err)
	}
	return nil
}

func (t *target) drop(ctx context.Context) error {
	return t.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{t.name}.Sanitize()+" WITH (FORCE)")
}

// checkTemporal refuses, before anything is touched, a Temporal restore that has nothing to
// restore or would overwrite state.
func checkTemporal(ctx context.Context, o Options) error {
	if len(o.Manifest.Parts) == 0 {
		return fmt.Errorf("restore: backup %s holds no Temporal state (made before TEMPORAL_BACKUP_DATABASE_URLS or without the dev server)", o.Manifest.ID)
	}
	for _, p := range o.Manifest.Parts {
		switch p.Kind {
		case backup.PartSQLite:
			if o.TemporalFile == "" {
				return errors.New("restore: the backup holds the dev server's SQLite state: pass --temporal-file")
			}
			if _, err := os.Stat(o.TemporalFile); err == nil {
				return fmt.Errorf("restore: %s already exists: stop the Temporal server and move it away first", o.TemporalFile)
			}
		case backup.PartPostgres:
			if o.TemporalServerURL == "" {
				return errors.New("restore: the backup holds Temporal's PostgreSQL databases: pass --temporal-target")
			}
			t, err := inspectTarget(ctx, pgcluster.WithDatabase(o.TemporalServerURL, p.Name))
			if err != nil {
				return err
			}
			if t.exists && t.relations > 0 {
				return fmt.Errorf("restore: Temporal's database %q is not empty on --temporal-target: restore onto a fresh one", p.Name)
			}
		default:
			return fmt.Errorf("restore: backup %s has a part of unknown kind %q: upgrade orchestrator", o.Manifest.ID, p.Kind)
		}
	}
	return nil
}

// restoreTemporal restores every Temporal part of the backup.
func restoreTemporal(ctx context.Context, o Options) ([]string, error) {
	var done []string
	for _, p := range o.Manifest.Parts {
		switch p.Kind {
		case backup.PartSQLite:
			if err := backup.RestorePartFile(ctx, o.Store, p, o.Identities, o.TemporalFile); err != nil {
				return done, err
			}
		case backup.PartPostgres:
			t, err := inspectTarget(ctx, pgcluster.WithDatabase(o.TemporalServerURL, p.Name))
			if err != nil {
				return done, err
			}
			if !t.exists {
				if err := t.create(ctx); err != nil {
					return done, err
				}
			}
			if err := backup.RestorePartPostgres(ctx, o.Store, p, o.Identities, pgcluster.WithDatabase(o.TemporalServerURL, p.Name), o.PGBinDir); err != nil {
				return done, err
			}
		}
		done = append(done, p.Name)
	}
	return done, nil
}
