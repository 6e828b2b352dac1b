// Package testharness gives tests the real parts: a fresh PostgreSQL database per test
// package (found the way `make run` finds a server: DATABASE_URL, else 127.0.0.1:5432, else a
// throwaway cluster), the embedded Temporal server, and the in-process S3 store spoken to
// through the real aws-sdk-go-v2 client.
//
// A package opts in with
//
//	func TestMain(m *testing.M) { testharness.Main(m) }
//
// Parts start on first use and stop when the package's tests end. When a part cannot start
// the test fails and says why; nothing is ever skipped.
package testharness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/devserver"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/s3server"
)

var (
	mu       sync.Mutex
	cleanups []func()
)

func atEnd(f func()) {
	mu.Lock()
	defer mu.Unlock()
	cleanups = append(cleanups, f)
}

// Main runs the package's tests, then stops every part they started and drops their
// databases.
func Main(m *testing.M) {
	code := m.Run()
	mu.Lock()
	fs := cleanups
	cleanups = nil
	mu.Unlock()
	for i := len(fs) - 1; i >= 0; i-- {
		fs[i]()
	}
	os.Exit(code)
}

// ---- PostgreSQL ----

// PG is the package's PostgreSQL: a server and a migrated database on it, with the roles
// exactly as `orchestrator db bootstrap` makes them.
type PG struct {
	// Server is where the databases live; its URL is an administrator's.
	Server *pgcluster.Server
	// URL is the package database's connection string as the runtime role orchestrator_app
	// (what DATABASE_URL is in production).
	URL string
	// Pool is connected to the package database as the runtime role.
	Pool *pgxpool.Pool
	// TreasuryURL and TreasuryPool connect as the treasury login
	// (orchestrator_treasury_login, TREASURY_DATABASE_URL).
	TreasuryURL  string
	TreasuryPool *pgxpool.Pool
	// OwnerURL connects as the owner and migrator (orchestrator_owner).
	OwnerURL string
	// BackupURL connects as the read-only orchestrator_backup (pg_dump).
	BackupURL string
	// AdminURL connects to the package database as the server's administrator.
	AdminURL string
	// template is a migrated database nobody connects to, cloned by FreshDB.
	template string
}

var (
	pgOnce sync.Once
	pgVal  *PG
	pgErr  error
)

// Postgres returns the package's migrated database, shared by its tests.
func Postgres(tb testing.TB) *PG {
	tb.Helper()
	pgOnce.Do(func() { pgVal, pgErr = startPostgres() })
	if pgErr != nil {
		tb.Fatalf("PostgreSQL for tests: %v", pgErr)
	}
	return pgVal
}

// Pool is the package database as the runtime role orchestrator_app: DML on the
// application's tables, nothing on schema treasury.
func Pool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return Postgres(tb).Pool
}

// TreasuryPool is the package database as the treasury login: what db.NewTreasury needs.
func TreasuryPool(tb testing.TB) *pgxpool.Pool {
	tb.Helper()
	return Postgres(tb).TreasuryPool
}

func startPostgres() (*PG, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := ResolveServer(ctx, os.Getenv("DATABASE_URL"), pgcluster.DefaultProbeAddr)
	if err != nil {
		return nil, err
	}
	name := "test_" + packageTag() + "_" + randomHex(4)
	tmpl := name + "_tmpl"
	tmplURL, err := srv.CreateDatabase(ctx, tmpl, "")
	if err != nil {
		return nil, err
	}
	atEnd(func() { _ = srv.DropDatabase(context.Background(), tmpl) })
	roles, err := bootstrap(ctx, tmplURL)
	if err != nil {
		return nil, err
	}
	if err := migrateURL(ctx, roles.Owner); err != nil {
		return nil, err
	}
	pg := &PG{Server: srv, template: tmpl}
	if err := pg.clone(ctx, name); err != nil {
		return nil, err
	}
	atEnd(func() { _ = srv.DropDatabase(context.Background(), name) })
	if pg.Pool, err = db.Open(ctx, pg.URL); err != nil {
		return nil, err
	}
	atEnd(pg.Pool.Close)
	if pg.TreasuryPool, err = db.Open(ctx, pg.TreasuryURL); err != nil {
		return nil, err
	}
	atEnd(pg.TreasuryPool.Close)
	return pg, nil
}

// clone creates database name from the migrated template, bootstraps it (a database's own
// owner and grants are not copied from its template) and fills in the URLs.
func (pg *PG) clone(ctx context.Context, name string) error {
	adminURL, err := pg.Server.CreateDatabase(ctx, name, pg.template)
	if err != nil {
		return err
	}
	roles, err := bootstrap(ctx, adminURL)
	if err != nil {
		_ = pg.Server.DropDatabase(context.Background(), name)
		return err
	}
	pg.AdminURL, pg.URL, pg.TreasuryURL, pg.OwnerURL, pg.BackupURL = adminURL, roles.App, roles.Treasury, roles.Owner, roles.Backup
	return nil
}

// bootstrap runs `orchestrator db bootstrap` on the database adminURL points at and returns
// the login roles' URLs (db.DevRoleURLs: passwords derived from the administrator's).
func bootstrap(ctx context.Context, adminURL string) (db.RoleURLs, error) {
	roles, passwords, err := db.DevRoleURLs(adminURL)
	if err != nil {
		return roles, err
	}
	return roles, db.Bootstrap(ctx, adminURL, db.BootstrapOptions{Passwords: passwords})
}

// ResolveServer finds a server like `make run` does (url, else probe, else a throwaway
// cluster in a temporary directory that is removed at the end).
func ResolveServer(ctx context.Context, url, probe string) (*pgcluster.Server, error) {
	if url == "" {
		if s, err := pgcluster.Resolve(ctx, pgcluster.ResolveOptions{ProbeAddr: probe}); err == nil {
			return s, nil
		}
		dir, err := os.MkdirTemp("", "orchestrator-test-pg-")
		if err != nil {
			return nil, err
		}
		atEnd(func() { _ = os.RemoveAll(dir) })
		c, err := pgcluster.StartCluster(ctx, filepath.Join(dir, "pg"), pgcluster.ClusterOptions{Ephemeral: true})
		if err != nil {
			return nil, fmt.Errorf("no server at %s and no throwaway cluster: %w", probe, err)
		}
		atEnd(func() { _ = c.Stop() })
		url = c.URL("postgres")
	}
	return pgcluster.Resolve(ctx, pgcluster.ResolveOptions{URL: url})
}

func migrateURL(ctx context.Context, url string) error {
	pool, err := db.Open(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	return db.MigrateUp(ctx, pool, nil)
}

// FreshDB returns a new migrated database of its own, dropped when the test ends, connected
// as the runtime role (the URL is the runtime role's too): for tests that need an empty
// database or must not see other tests' rows. FreshPG gives the other roles' URLs.
func FreshDB(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	pg := FreshPG(tb)
	return pg.Pool, pg.URL
}

// FreshPG is FreshDB with every role's URL and a treasury pool.
func FreshPG(tb testing.TB) *PG {
	tb.Helper()
	pg := Postgres(tb)
	ctx := context.Background()
	name := "test_" + packageTag() + "_" + randomHex(6)
	fresh := &PG{Server: pg.Server, template: pg.template}
	if err := fresh.clone(ctx, name); err != nil {
		tb.Fatalf("fresh database: %v", err)
	}
	tb.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })
	var err error
	if fresh.Pool, err = db.Open(ctx, fresh.URL); err != nil {
		tb.Fatalf("fresh database: %v", err)
	}
	tb.Cleanup(fresh.Pool.Close)
	if fresh.TreasuryPool, err = db.Open(ctx, fresh.TreasuryURL); err != nil {
		tb.Fatalf("fresh database: %v", err)
	}
	tb.Cleanup(fresh.TreasuryPool.Close)
	return fresh
}

// ---- Temporal ----

var (
	temporalOnce   sync.Once
	temporalServer *devserver.Server
	temporalClient client.Client
	temporalErr    error
)

// Temporal returns a client of the package's embedded Temporal server (in memory, namespace
// default), started on first use.
func Temporal(tb testing.TB) client.Client {
	tb.Helper()
	temporalOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		temporalServer, temporalErr = devserver.Start(ctx, devserver.Options{})
		if temporalErr != nil {
			return
		}
		atEnd(func() { _ = temporalServer.Stop() })
		temporalClient, temporalErr = client.DialContext(ctx, client.Options{
			HostPort: temporalServer.FrontendAddr(),
			Logger:   quiet{},
		})
		if temporalErr == nil {
			atEnd(temporalClient.Close)
		}
	})
	if temporalErr != nil {
		tb.Fatalf("embedded Temporal server: %v", temporalErr)
	}
	return temporalClient
}

// TemporalAddr is the embedded server's frontend address.
func TemporalAddr(tb testing.TB) string {
	tb.Helper()
	Temporal(tb)
	return temporalServer.FrontendAddr()
}

type quiet struct{}

func (quiet) Debug(string, ...any) {}
func (quiet) Info(string, ...any)  {}
func (quiet) Warn(string, ...any)  {}
func (quiet) Error(string, ...any) {}

// ---- S3 ----

var (
	s3Once   sync.Once
	s3Server *s3server.Server
	s3Err    error
)

// S3 is an object store for one test: the package's in-process server, a client through
// aws-sdk-go-v2, and a new bucket.
type S3 struct {
	Client *s3.Client
	Bucket string
	Config config.S3
}

// NewS3 returns a client of the package's in-process S3 server and a fresh bucket.
func NewS3(tb testing.TB) S3 {
	tb.Helper()
	s3Once.Do(func() {
		s3Server, s3Err = s3server.Start("127.0.0.1:0", "")
		if s3Err == nil {
			atEnd(func() { _ = s3Server.Close() })
		}
	})
	if s3Err != nil {
		tb.Fatalf("in-process S3 server: %v", s3Err)
	}
	cfg := config.S3{Endpoint: s3Server.URL(), Bucket: "test-" + randomHex(6), Region: config.DefaultAWSRegion, PathStyle: true}
	ctx := context.Background()
	c, err := objstore.NewClient(ctx, cfg, objstore.Options{StaticCredentials: objstore.DevCredentials()})
	if err != nil {
		tb.Fatalf("S3 client: %v", err)
	}
	if err := objstore.EnsureBucket(ctx, c, cfg.Bucket); err != nil {
		tb.Fatalf("S3 bucket: %v", err)
	}
	return S3{Client: c, Bucket: cfg.Bucket, Config: cfg}
}

// ---- helpers ----

// Logger writes through t.Log, so output shows only for failing tests.
func Logger(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{tb}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ tb testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var _ io.Writer = testWriter{}

// packageTag names the test binary's package in database names.
func packageTag() string {
	base := strings.TrimSuffix(filepath.Base(os.Args[0]), ".test")
	var b strings.Builder
	for _, r := range strings.ToLower(base) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	s := b.String()
	if len(s) > 20 {
		s = s[:20]
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FreshAdminDB is a fresh migrated database connected as the server's administrator: for
// tests of tools that act on a whole database as a DBA would (pg_dump, pg_restore, seeding
// tables of their own).
func FreshAdminDB(tb testing.TB) (*pgxpool.Pool, string) {
	tb.Helper()
	pg := FreshPG(tb)
	pool, err := db.Open(context.Background(), pg.AdminURL)
	if err != nil {
		tb.Fatalf("fresh database: %v", err)
	}
	tb.Cleanup(pool.Close)
	return pool, pg.AdminURL
}
