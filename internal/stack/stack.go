// Package stack assembles whole processes: `orchestrator api`, `orchestrator worker` (each
// configured from the environment, for production) and `orchestrator dev` (everything in one
// process on embedded defaults). Each builds its clients once and runs its servers under an
// errgroup that stops them all when the context ends.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.temporal.io/sdk/client"
	tlog "go.temporal.io/sdk/log"
	"golang.org/x/sync/errgroup"

	"github.com/creatorvault/orchestrator/api"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/workers"
	"github.com/creatorvault/orchestrator/workflows"
)

// RunAPI serves the HTTP API until ctx ends. Temporal is dialled lazily: the API starts while
// Temporal is down, and /ready says so.
func RunAPI(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	if err := cfg.RequireJWTSecret(); err != nil {
		return err
	}
	pool, tpool, err := openPools(ctx, cfg, true)
	if err != nil {
		return err
	}
	defer pool.Close()
	defer tpool.Close()
	tc, err := client.NewLazyClient(clientOptions(cfg, logger))
	if err != nil {
		return fmt.Errorf("TEMPORAL_ADDRESS: %w", err)
	}
	defer tc.Close()
	return serveAPI(ctx, cfg, logger, pool, tpool, tc)
}

// openPools opens the runtime role's pool (DATABASE_URL) and, when the process needs the
// treasury, the treasury login's (TREASURY_DATABASE_URL, else DATABASE_URL). It refuses
// roles in the wrong place: a DATABASE_URL that could reach the treasury (unless
// ALLOW_PRIVILEGED_DATABASE_URL), a treasury URL that is not the treasury's.
func openPools(ctx context.Context, cfg *config.Config, treasury bool) (*pgxpool.Pool, *pgxpool.Pool, error) {
	pool, err := db.OpenMax(ctx, cfg.DatabaseURL, cfg.DatabaseMaxConns)
	if err != nil {
		return nil, nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if !cfg.Database.AllowPrivileged {
		if err := db.CheckRuntimeRole(ctx, pool, "DATABASE_URL", "ALLOW_PRIVILEGED_DATABASE_URL"); err != nil {
			pool.Close()
			return nil, nil, err
		}
	}
	if !treasury {
		return pool, nil, nil
	}
	turl, tvar := cfg.Treasury.DatabaseURL, "TREASURY_DATABASE_URL"
	if turl == "" {
		turl, tvar = cfg.DatabaseURL, "TREASURY_DATABASE_URL (unset, so DATABASE_URL)"
	}
	tpool, err := db.Open(ctx, turl)
	if err != nil {
		pool.Close()
		return nil, nil, fmt.Errorf("%s: %w", tvar, err)
	}
	if err := db.CheckTreasuryRole(ctx, tpool, tvar); err != nil {
		tpool.Close()
		pool.Close()
		return nil, nil, err
	}
	return pool, tpool, nil
}

// RunWorker runs the Temporal workers until ctx ends. It fails at once when Temporal cannot
// be reached, naming TEMPORAL_ADDRESS.
func RunWorker(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	if err := cfg.RequireDatabase(); err != nil {
		return err
	}
	tc, err := DialTemporal(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer tc.Close()
	pool, tpool, err := openPools(ctx, cfg, workers.Serves(cfg.TaskQueues, workflows.TreasuryQueue))
	if err != nil {
		return err
	}
	defer pool.Close()
	if tpool != nil {
		defer tpool.Close()
	}
	s3c, err := objstore.NewClient(ctx, cfg.S3, objstore.Options{})
	if err != nil {
		return err
	}
	if workers.Serves(cfg.TaskQueues, workflows.BackupTaskQueue) {
		// A new MinIO has no bucket; where the credentials may not create one (AWS with a
		// bucket made by the operator) the backups say so when they run.
		if err := objstore.EnsureBucket(ctx, s3c, cfg.S3.Bucket); err != nil {
			logger.Warn("S3_BUCKET: cannot make sure the bucket exists", "bucket", cfg.S3.Bucket, "error", err)
		}
	}
	if err := workers.EnsureSearchAttributes(ctx, tc, cfg.TemporalNamespace); err != nil {
		logger.Warn("search attributes", "error", err)
	}
	if err := workers.ApplySchedules(ctx, tc, cfg); err != nil {
		return err
	}
	g, ctx := errgroup.WithContext(ctx)
	if cfg.MetricsAddr != "" {
		g.Go(func() error { return serveHTTP(ctx, cfg.MetricsAddr, opsHandler(), logger) })
	}
	g.Go(func() error {
		return workers.Run(ctx, workerDeps(cfg, logger, tc, pool, tpool, s3c), cfg.TaskQueues)
	})
	return g.Wait()
}

// DialTemporal connects to TEMPORAL_ADDRESS and checks that the frontend answers.
func DialTemporal(ctx context.Context, cfg *config.Config, logger *slog.Logger) (client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tc, err := client.DialContext(ctx, clientOptions(cfg, logger))
	if err != nil {
		return nil, fmt.Errorf("TEMPORAL_ADDRESS: cannot reach Temporal at %s: %w", cfg.TemporalAddress, err)
	}
	return tc, nil
}

func clientOptions(cfg *config.Config, logger *slog.Logger) client.Options {
	return client.Options{
		HostPort:  cfg.TemporalAddress,
		Namespace: cfg.TemporalNamespace,
		Logger:    tlog.NewStructuredLogger(logger.With("component", "temporal-sdk")),
	}
}

func workerDeps(cfg *config.Config, logger *slog.Logger, tc client.Client, pool, tpool *pgxpool.Pool, s3c *s3.Client) workers.Deps {
	return workers.Deps{Client: tc, Pool: pool, TreasuryPool: tpool, S3: s3c, Config: cfg, Logger: logger}
}

func serveAPI(ctx context.Context, cfg *config.Config, logger *slog.Logger, pool, tpool *pgxpool.Pool, tc client.Client) error {
	return serveHTTP(ctx, cfg.HTTPAddr, newAPIHandler(ctx, cfg, logger, pool, tpool, tc), logger)
}

func newAPIHandler(ctx context.Context, cfg *config.Config, logger *slog.Logger, pool, tpool *pgxpool.Pool, tc client.Client) http.Handler {
	return api.NewRouter(api.Deps{Pool: pool, TreasuryPool: tpool, Temporal: tc, Config: cfg, Logger: logger, Context: ctx})
}

// opsHandler serves a worker's /health and /metrics.
func opsHandler() http.Handler {
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/health", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	r.GET("/metrics", gin.WrapH(promhttp.Handler()))
	return r
}

// serveHTTP serves h on addr until ctx ends, then shuts down gracefully: no new connections,
// requests in flight get up to 10 seconds.
func serveHTTP(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR: cannot listen on %s: %w", addr, err)
	}
	return serveListener(ctx, l, h, logger)
}

// httpTimeouts bound every connection of the servers this package runs: a client gets 10 s
// for its headers and a minute for its whole request, a handler two minutes for its answer,
// and an idle keep-alive connection two minutes. A WebSocket sets its own deadlines once
// upgraded (gorilla clears these). A variable so tests can shorten them.
var httpTimeouts = struct{ header, read, write, idle time.Duration }{
	header: 10 * time.Second, read: time.Minute, write: 2 * time.Minute, idle: 2 * time.Minute,
}

func serveListener(ctx context.Context, l net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpTimeouts.header,
		ReadTimeout:       httpTimeouts.read,
		WriteTimeout:      httpTimeouts.write,
		IdleTimeout:       httpTimeouts.idle,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		logger.Warn("HTTP shutdown", "addr", l.Addr().String(), "error", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
