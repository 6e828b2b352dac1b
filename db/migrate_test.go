package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
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

// TestMigrateFromTheLandedHead: a deployed database ran 00001–00009 and 00015 (the release
// before the roles); `migrate up` applies 00010–00014 after it, then the rest.
func TestMigrateFromTheLandedHead(t *testing.T) {
	ctx := context.Background()
	pool, err := db.Open(ctx, testharness.FreshPG(t).OwnerURL)
	require.NoError(t, err)
	defer pool.Close()
	m, err := db.NewMigrator(pool, nil)
	require.NoError(t, err)
	defer m.Close()
	st, err := m.Status(ctx)
	require.NoError(t, err)
	for range st {
		_, err := m.Down(ctx)
		require.NoError(t, err)
	}

	_, err = m.UpTo(ctx, 9)
	require.NoError(t, err)
	require.NoError(t, m.Apply(ctx, 15))
	n, err := m.Up(ctx)
	require.NoError(t, err, "the migrations numbered below the deployed 00015 are applied, not refused")
	require.Equal(t, len(st)-10, n)
	st, err = m.Status(ctx)
	require.NoError(t, err)
	for _, s := range st {
		require.True(t, s.Applied, "%s", s.Name)
	}
}

// The runtime role works the sign-in tables but cannot delete an erasure's record (the proof
// the request was honoured).
func TestAuthTablesGrants(t *testing.T) {
	ctx := t.Context()
	pool, _ := testharness.FreshDB(t)
	var role string
	require.NoError(t, pool.QueryRow(ctx, `SELECT current_user`).Scan(&role))
	require.Equal(t, db.AppRole, role)
	user := uuid.New()
	_, err := pool.Exec(ctx, `INSERT INTO users (id, role, display_name) VALUES ($1, 'fan', 'G')`, user)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO credentials (user_id, email, password_hash) VALUES ($1, 'g@example.com', 'x')`, user)
	require.NoError(t, err)
	_, err = db.EraseUser(ctx, pool, user, time.Now())
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `DELETE FROM erasures WHERE user_id = $1`, user)
	require.ErrorContains(t, err, "permission denied")
	_, err = pool.Exec(ctx, `TRUNCATE erasures`)
	require.ErrorContains(t, err, "permission denied")
}
