//go:build !nodev

package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/creatorvault/orchestrator/demo"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/devserver"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/s3server"
	"github.com/creatorvault/orchestrator/workers"
)

// DevOptions place the embedded parts of `orchestrator dev`.
type DevOptions struct {
	// DataDir keeps all state: Temporal's SQLite file, the object store, a throwaway
	// PostgreSQL cluster, generated dev secrets.
	DataDir string
	// TemporalPort and UIPort are the Temporal frontend and Web UI ports.
	TemporalPort int
	UIPort       int
	// S3Addr is where the in-process object store listens.
	S3Addr string
	// S3TLSAddr is where it also serves HTTPS, for pgBackRest (default: any free port).
	S3TLSAddr string
	// Out receives the banner with URLs and demo tokens.
	Out io.Writer
	// Database is the database used on a server dev found or started; default orchestrator.
	Database string
	// PGProbeAddr is the local server tried when DATABASE_URL is unset; default
	// 127.0.0.1:5432.
	PGProbeAddr string
	// Ready, if set, is called once everything serves.
	Ready func(DevInfo)
}

// DevInfo says where the running parts are.
type DevInfo struct {
	APIURL      string
	UIURL       string
	PGSource    pgcluster.Source
	DatabaseURL string
	// ClusterDir is the throwaway cluster's directory, when one runs.
	ClusterDir string
	// PITROff is why point-in-time recovery is off ("" when dev archives its cluster's WAL).
	PITROff string
}

// DefaultDevOptions are `make run`'s: state under ./.data, Temporal on 7233, its UI on 8233,
// the object store on 9000.
func DefaultDevOptions() DevOptions {
	return DevOptions{DataDir: ".data", TemporalPort: 7233, UIPort: 8233, S3Addr: "127.0.0.1:9000", Database: "orchestrator", Out: os.Stdout}
}

// RunDev runs the whole system in this process until ctx ends: PostgreSQL (found or started),
// the object store, the Temporal server and UI, the workers and the API. Parts the
// environment configures (DATABASE_URL, S3_ENDPOINT, TEMPORAL_ADDRESS) are used instead of
// embedded ones. Everything stops in reverse order; a throwaway PostgreSQL stops with it.
func RunDev(ctx context.Context, cfg *config.Config, logger *slog.Logger, opts DevOptions) (err error) {
	started := time.Now()
	var stack cleanup
	defer func() { err = errors.Join(err, stack.run(logger)) }()

	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory %s: %w", opts.DataDir, err)
	}
	if len(cfg.Auth.JWTSecret) == 0 {
		secret, err := devSecret(filepath.Join(opts.DataDir, "jwt-secret"))
		if err != nil {
			return err
		}
		cfg.Auth.JWTSecret = secret
	}

	// Object store: S3_ENDPOINT, else in-process. It starts first: a throwaway cluster
	// archives into it from its first segment.
	s3opts := objstore.Options{}
	var store *s3server.Server
	if cfg.S3.Endpoint == "" {
		if store, err = s3server.Start(opts.S3Addr, filepath.Join(opts.DataDir, "s3")); err != nil {
			return err
		}
		stack.add("object store", store.Close)
		cfg.S3.Endpoint, cfg.S3.PathStyle, cfg.S3.Region = store.URL(), true, config.DefaultAWSRegion
		s3opts.StaticCredentials = objstore.DevCredentials()
	}
	s3c, err := objstore.NewClient(ctx, cfg.S3, s3opts)
	if err != nil {
		return err
	}
	if err := objstore.EnsureBucket(ctx, s3c, cfg.S3.Bucket); err != nil {
		return err
	}
	tlsAddr := opts.S3TLSAddr
	if tlsAddr == "" {
		tlsAddr = "127.0.0.1:0"
	}

	// PostgreSQL: DATABASE_URL, else the local server, else a throwaway cluster, which
	// archives its WAL when PITR can be on (planned only when that cluster starts).
	var pitrDev *devPITR
	pg, err := pgcluster.Resolve(ctx, pgcluster.ResolveOptions{
		URL: cfg.DatabaseURL, ProbeAddr: opts.PGProbeAddr, ClusterDir: filepath.Join(opts.DataDir, "pg"), Logger: logger,
		ClusterSettings: func() []string {
			pitrDev = planDevPITR(cfg, opts.DataDir, tlsAddr, store)
			return pitrDev.Settings
		},
	})
	if err != nil {
		return err
	}
	stack.add("postgres", pg.Close)
	if pitrDev == nil {
		pitrDev = &devPITR{Off: notOwned(pg.Source)}
	}
	pitrDev.start(ctx, cfg, pg, logger)
	adminURL := cfg.DatabaseURL
	if pg.Source != pgcluster.SourceURL {
		if opts.Database == "" {
			opts.Database = "orchestrator"
		}
		if adminURL, err = pg.EnsureDatabase(ctx, opts.Database); err != nil {
			return err
		}
	}
	roles, err := devRoles(ctx, cfg, adminURL)
	if err != nil {
		return err
	}
	migrator, err := db.Open(ctx, roles.Owner)
	if err != nil {
		return fmt.Errorf("PostgreSQL as %s: %w", db.OwnerRole, err)
	}
	err = db.MigrateUp(ctx, migrator, nil)
	migrator.Close()
	if err != nil {
		return err
	}
	pool, err := db.OpenMax(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return err
	}
	stack.add("postgres pool", func() error { pool.Close(); return nil })
	tpool, err := db.Open(ctx, cfg.Treasury.DatabaseURL)
	if err != nil {
		return err
	}
	stack.add("postgres treasury pool", func() error { tpool.Close(); return nil })
	dataset, err := SeedDemoOnce(ctx, pool, time.Now())
	if err != nil {
		return err
	}

	// Each domain's dev defaults (local Horizon, demo keys, demo backup identity).
	banner := []string{pitrDev.banner(opts.DataDir)}
	for _, setup := range []devSetup{devTreasuryIntegrity, devTreasury, devBackup} {
		lines, err := setup(ctx, cfg, opts.DataDir, &stack)
		if err != nil {
			return err
		}
		banner = append(banner, lines...)
	}

	// Temporal: TEMPORAL_ADDRESS if set, else embedded with its Web UI.
	uiURL := ""
	if _, set := os.LookupEnv("TEMPORAL_ADDRESS"); !set {
		ts, err := devserver.Start(ctx, devserver.Options{
			DatabaseFile: filepath.Join(opts.DataDir, "temporal.db"),
			LogFile:      filepath.Join(opts.DataDir, "temporal.log"),
			FrontendPort: opts.TemporalPort,
			UIPort:       opts.UIPort,
			Namespaces:   []string{cfg.TemporalNamespace},
		})
		if err != nil {
			return err
		}
		stack.add("temporal server", ts.Stop)
		cfg.TemporalAddress, uiURL = ts.FrontendAddr(), ts.UIURL()
	}
	tc, err := DialTemporal(ctx, cfg, logger)
	if err != nil {
		return err
	}
	stack.add("temporal client", func() error { tc.Close(); return nil })
	if err := workers.EnsureSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		return err
	}
	if err := workers.ApplySchedules(ctx, tc, cfg); err != nil {
		return err
	}
	if !cfg.PITR.Enabled {
		// An earlier dev run on its own cluster may have made them; they could only fail now.
		if err := workers.RemovePITRSchedules(ctx, tc); err != nil {
			logger.Warn("pitr: cannot remove the PITR Schedules while PITR is off", "error", err)
		}
	}
	pitrDev.firstBackup(ctx, tc, logger)

	l, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: cannot listen on %s: %w", cfg.HTTPAddr, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return workers.Run(gctx, workerDeps(cfg, logger, tc, pool, tpool, s3c), cfg.TaskQueues) })
	g.Go(func() error {
		return serveListener(gctx, l, newAPIHandler(gctx, cfg, logger, pool, tpool, tc), logger)
	})

	apiURL := "http://" + l.Addr().String()
	envFile := filepath.Join(opts.DataDir, "demo.env")
	if err := WriteDemoEnv(envFile, dataset, cfg.Auth.JWTSecret); err != nil {
		return err
	}
	if err := appendDevEnv(envFile, cfg); err != nil {
		return err
	}
	if err := pitrDev.appendEnv(envFile); err != nil {
		return err
	}
	if err := appendDemoSignIns(ctx, envFile, pool, dataset, cfg, opts.DataDir); err != nil {
		return err
	}
	printBanner(opts.Out, pg.Source, apiURL, uiURL, cfg, banner, time.Since(started))
	dataset.WriteTour(opts.Out, apiURL, envFile)
	if opts.Ready != nil {
		opts.Ready(DevInfo{APIURL: apiURL, UIURL: uiURL, PGSource: pg.Source, DatabaseURL: cfg.DatabaseURL, ClusterDir: pg.ClusterDir(), PITROff: pitrDev.Off})
	}
	return g.Wait()
}

func printBanner(w io.Writer, pgSource pgcluster.Source, apiURL, uiURL string, cfg *config.Config, extra []string, took time.Duration) {
	var b strings.Builder
	fmt.Fprintf(&b, "\norchestrator dev is up (%s)\n", took.Round(time.Millisecond))
	fmt.Fprintf(&b, "  API          %s   (health %s/health, ready %s/ready, OpenAPI %s/openapi.json)\n", apiURL, apiURL, apiURL, apiURL)
	if uiURL != "" {
		fmt.Fprintf(&b, "  Temporal UI  %s\n", uiURL)
	}
	fmt.Fprintf(&b, "  Temporal     %s (namespace %s)\n", cfg.TemporalAddress, cfg.TemporalNamespace)
	fmt.Fprintf(&b, "  PostgreSQL   %s (%s)\n", redactURL(cfg.DatabaseURL), pgSource)
	fmt.Fprintf(&b, "  DB roles     API and workers as %s, treasury as %s, migrations as %s, pg_dump as %s\n",
		db.AppRole, db.TreasuryLoginRole, db.OwnerRole, db.BackupRole)
	fmt.Fprintf(&b, "  Object store %s (bucket %s)\n", cfg.S3.Endpoint, cfg.S3.Bucket)
	for _, line := range extra {
		fmt.Fprintf(&b, "  %s\n", line)
	}
	fmt.Fprintf(&b, "Press Ctrl-C to stop.\n\n")
	_, _ = io.WriteString(w, b.String())
}

// redactURL hides a connection string's password.
func redactURL(u string) string {
	at := strings.LastIndex(u, "@")
	scheme := strings.Index(u, "://")
	if at < 0 || scheme < 0 {
		return u
	}
	cred := u[scheme+3 : at]
	if user, _, ok := strings.Cut(cred, ":"); ok {
		return u[:scheme+3] + user + ":***" + u[at:]
	}
	return u
}

// SeedDemoOnce seeds the demo dataset on a database that does not have it yet, and returns
// the dataset that is there.
func SeedDemoOnce(ctx context.Context, pool *pgxpool.Pool, now time.Time) (*demo.Dataset, error) {
	seeded, err := demo.Seeded(ctx, pool)
	if err != nil {
		return nil, err
	}
	if !seeded {
		return demo.Seed(ctx, pool, now)
	}
	anchor, err := demo.Anchor(ctx, pool)
	if err != nil {
		return nil, err
	}
	return demo.Plan(anchor), nil
}

// appendDevEnv adds the dev stack's connection settings to the tour's env file (0600), so the
// CLI commands that talk to PostgreSQL, the object store or Temporal (backup, restore, drill,
// forecast, treasury verify) work after one `source .data/demo.env`, whichever PostgreSQL the
// stack picked.
func appendDevEnv(path string, cfg *config.Config) error {
	block := "\n# The dev stack, for the CLI\n" +
		"export DATABASE_URL=" + shellQuote(cfg.DatabaseURL) + "\n" +
		"export TREASURY_DATABASE_URL=" + shellQuote(cfg.Treasury.DatabaseURL) + "\n" +
		"export MIGRATE_DATABASE_URL=" + shellQuote(cfg.Database.MigrateURL) + "\n" +
		"export BACKUP_DATABASE_URL=" + shellQuote(cfg.Backup.DatabaseURL) + "\n" +
		"export TEMPORAL_ADDRESS=" + shellQuote(cfg.TemporalAddress) + "\n" +
		"export S3_ENDPOINT=" + shellQuote(cfg.S3.Endpoint) + "\n" +
		"export S3_BUCKET=" + shellQuote(cfg.S3.Bucket) + "\n"
	return appendEnvFile(path, block)
}

// shellQuote quotes v for a POSIX shell.
func shellQuote(v string) string { return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'" }

// devSecret reads a generated secret from path, creating it (0600) on first use.
func devSecret(path string) ([]byte, error) {
	if b, err := os.ReadFile(path); err == nil {
		return []byte(strings.TrimSpace(string(b))), nil
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	secret := hex.EncodeToString(raw)
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("dev secret %s: %w", path, err)
	}
	return []byte(secret), nil
}

// devRoles makes dev production-shaped: it runs the bootstrap on the database adminURL
// names, then points the configuration at the roles it made: DATABASE_URL at the runtime
// role, TREASURY_DATABASE_URL at the treasury login, MIGRATE_DATABASE_URL at the owner,
// BACKUP_DATABASE_URL at the read-only backup role (each unless set), and drills at the
// administrator (they create scratch databases). Role passwords are derived from the
// administrator's (db.DevRoleURLs), or none where the server trusts loopback.
func devRoles(ctx context.Context, cfg *config.Config, adminURL string) (db.RoleURLs, error) {
	roles, passwords, err := db.DevRoleURLs(adminURL)
	if err != nil {
		return roles, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := db.Bootstrap(ctx, adminURL, db.BootstrapOptions{Passwords: passwords}); err != nil {
		return roles, fmt.Errorf("dev runs `db bootstrap` with the server's administrator (DATABASE_URL, when set, must be one; unset it to use the local server): %w", err)
	}
	cfg.DatabaseURL = roles.App
	cfg.Database.MigrateURL = roles.Owner
	if cfg.Treasury.DatabaseURL == "" {
		cfg.Treasury.DatabaseURL = roles.Treasury
	}
	if cfg.Backup.DatabaseURL == "" {
		cfg.Backup.DatabaseURL = roles.Backup
	}
	if cfg.Backup.DrillDatabaseURL == "" {
		cfg.Backup.DrillDatabaseURL = adminURL
	}
	return roles, nil
}

// devSetup fills in one domain's dev defaults in cfg (keys, endpoints) from state under
// dataDir, registering what it starts on stack. It returns lines for the banner.
type devSetup func(ctx context.Context, cfg *config.Config, dataDir string, stack *cleanup) ([]string, error)

// cleanup runs stop functions in reverse order of registration.
type cleanup []struct {
	name string
	fn   func() error
}

func (c *cleanup) add(name string, fn func() error) {
	*c = append(*c, struct {
		name string
		fn   func() error
	}{name, fn})
}

func (c cleanup) run(logger *slog.Logger) error {
	var errs []error
	for i := len(c) - 1; i >= 0; i-- {
		if err := c[i].fn(); err != nil {
			logger.Warn("stop "+c[i].name, "error", err)
			errs = append(errs, fmt.Errorf("stop %s: %w", c[i].name, err))
		}
	}
	return errors.Join(errs...)
}
