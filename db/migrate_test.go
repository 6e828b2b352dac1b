package db_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestMain(m *testing.M) { testharness.Main(m) }

// TestMigrationsRoundTrip: every migration rolls back cleanly and applies again.
func TestMigrationsRoundTrip(t *testing.T) {
	ctx := context.Background()
	pool, err := db.Open(ctx, testharness.FreshPG(t).OwnerURL)
	require.NoError(t, err)
	defer pool.Close()
	m, err := db.NewMigrator(pool, nil)
	require.NoError(t, err)
	defer m.Close()

	st, err := m.Status(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, st)
	for _, s := range st {
		require.True(t, s.Applied, "%s", s.Name)
	}
	for range st {
		_, err := m.Down(ctx)
		require.NoError(t, err)
	}
	var tables int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') AND table_name <> 'goose_db_version'`).Scan(&tables))
	require.Zero(t, tables, "down removes everything up made")

	n, err := m.Up(ctx)
	require.NoError(t, err)
	require.Equal(t, len(st), n)
	n, err = m.Up(ctx)
	require.NoError(t, err)
	require.Zero(t, n)
}
