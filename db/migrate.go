package db

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrator applies the embedded migrations. Concurrent migrators (an API and a worker starting
// together) take turns through a PostgreSQL advisory lock.
type Migrator struct {
	db       *sql.DB
	provider *goose.Provider
}

// MigrationStatus is one migration's state.
type MigrationStatus struct {
	Version int64
	Name    string
	Applied bool
}

// NewMigrator prepares the migrations for the database behind pool.
func NewMigrator(pool *pgxpool.Pool, logger *slog.Logger) (*Migrator, error) {
	sqlDB := stdlib.OpenDBFromPool(pool)
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return nil, err
	}
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return nil, err
	}
	// Out of order: deployed databases applied 00015 before 00010–00014 existed, so those are
	// applied after it (in version order) instead of being refused as missing.
	opts := []goose.ProviderOption{goose.WithSessionLocker(locker), goose.WithAllowOutofOrder(true)}
	if logger != nil {
		opts = append(opts, goose.WithSlog(logger))
	}
	p, err := goose.NewProvider(goose.DialectPostgres, sqlDB, sub, opts...)
	if err != nil {
		_ = sqlDB.Close()
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return &Migrator{db: sqlDB, provider: p}, nil
}

// Up applies every pending migration and returns how many it applied.
func (m *Migrator) Up(ctx context.Context) (int, error) {
	res, err := m.provider.Up(ctx)
	if err != nil {
		return len(res), fmt.Errorf("migrate up: %w", err)
	}
	return len(res), nil
}

// UpTo applies the pending migrations up to and including version (for tests and staged
// upgrades) and returns how many it applied.
func (m *Migrator) UpTo(ctx context.Context, version int64) (int, error) {
	res, err := m.provider.UpTo(ctx, version)
	if err != nil {
		return len(res), fmt.Errorf("migrate up to %d: %w", version, err)
	}
	return len(res), nil
}

// Apply applies the one migration version, whatever is applied around it (for tests that
// rebuild a database as an earlier release left it).
func (m *Migrator) Apply(ctx context.Context, version int64) error {
	if _, err := m.provider.ApplyVersion(ctx, version, true); err != nil {
		return fmt.Errorf("migrate apply %d: %w", version, err)
	}
	return nil
}

// Down rolls the newest applied migration back.
func (m *Migrator) Down(ctx context.Context) (*MigrationStatus, error) {
	res, err := m.provider.Down(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate down: %w", err)
	}
	return &MigrationStatus{Version: res.Source.Version, Name: res.Source.Path}, nil
}

// Status lists every migration and whether it is applied.
func (m *Migrator) Status(ctx context.Context) ([]MigrationStatus, error) {
	st, err := m.provider.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("migration status: %w", err)
	}
	out := make([]MigrationStatus, 0, len(st))
	for _, s := range st {
		out = append(out, MigrationStatus{Version: s.Source.Version, Name: s.Source.Path, Applied: s.State == goose.StateApplied})
	}
	return out, nil
}

// Close releases the migrator's connection handle (not the pool).
func (m *Migrator) Close() error { return m.db.Close() }

// MigrateUp applies every pending migration to the database behind pool.
func MigrateUp(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger) error {
	m, err := NewMigrator(pool, logger)
	if err != nil {
		return err
	}
	defer func() { _ = m.Close() }()
	_, err = m.Up(ctx)
	return err
}
