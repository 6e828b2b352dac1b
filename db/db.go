// Package db owns the PostgreSQL side: the connection pool, the embedded numbered migrations
// (applied with pressly/goose), and the queries of each domain, one file per domain.
package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a row asked for does not exist (or is not the caller's to see).
var ErrNotFound = errors.New("not found")

// DefaultMaxConns is the pool size of an API instance (DATABASE_MAX_CONNS): enough for a
// request per core to wait on PostgreSQL several times over, few enough that a handful of
// instances and workers stay far below the server's max_connections (100 by default). The
// WebSocket hub's LISTEN connection is not part of the pool.
const DefaultMaxConns = 16

// Open connects a pool to url and checks that the server answers. The pool holds at most
// DefaultMaxConns connections unless url sets pool_max_conns.
func Open(ctx context.Context, url string) (*pgxpool.Pool, error) {
	return OpenMax(ctx, url, 0)
}

// OpenMax is Open with a pool of at most maxConns connections (0: pool_max_conns from url,
// else DefaultMaxConns).
func OpenMax(ctx context.Context, url string, maxConns int) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, errors.New("DATABASE_URL: not a valid PostgreSQL connection string")
	}
	switch {
	case maxConns > 0:
		cfg.MaxConns = int32(min(maxConns, 10_000))
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig connects a pool from a parsed configuration and checks that the server answers.
func OpenConfig(ctx context.Context, cfg *pgxpool.Config) (*pgxpool.Pool, error) {
	cfg.MaxConnIdleTime = 5 * time.Minute
	if cfg.ConnConfig.RuntimeParams == nil {
		cfg.ConnConfig.RuntimeParams = map[string]string{}
	}
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
		cfg.ConnConfig.RuntimeParams["application_name"] = "orchestrator"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("PostgreSQL pool: %w", err)
	}
	pingCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("cannot reach PostgreSQL at %s:%d: %w", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	return pool, nil
}

// pgCode returns the SQLSTATE of a PostgreSQL error, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// SQLSTATE codes the queries turn into domain errors.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
	codeCheckViolation      = "23514"
)
