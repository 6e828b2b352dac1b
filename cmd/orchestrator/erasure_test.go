package main

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// Backups are immutable, so an erasure after a backup would come back with its restore. The
// erasure register (in the object store, outside the restored data) makes `restore` erase
// again: back up, erase a user, restore the older backup: the user's data is gone again.
func TestRestoreReappliesErasures(t *testing.T) {
	ctx := context.Background()
	fresh := testharness.FreshPG(t)
	pool := fresh.Pool
	s := testharness.NewS3(t)
	reg := db.ErasureRegister{S3: s.Client, Bucket: s.Bucket}
	early, victim, other := uuid.New(), uuid.New(), uuid.New()
	for _, u := range []uuid.UUID{early, victim, other} {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		_, err := pool.Exec(ctx, `INSERT INTO users (id, role, display_name) VALUES ($1, 'fan', $2)`, u, "Person "+u.String())
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO credentials (user_id, email, password_hash) VALUES ($1, $2, 'x')`, u, u.String()+"@example.com")
		require.NoError(t, err)
		_, err = pool.Exec(ctx, `INSERT INTO user_keys (user_id, public_key) VALUES ($1, $2)`, u, key)
		require.NoError(t, err)
	}
	erase := func(u uuid.UUID) {
		t.Helper()
		_, err := db.EraseUser(ctx, pool, u, time.Now())
		require.NoError(t, err)
		require.NoError(t, reg.Record(ctx, db.RegisteredErasure{UserID: u, RequestedAt: time.Now().UTC()}))
	}
	// Erased before the backup: the backup holds the completed erasure.
	erase(early)

	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	require.NoError(t, os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600))
	m, err := backup.Run(ctx, backup.Store{S3: s.Client, Bucket: s.Bucket},
		backup.Options{ID: "erasure-1", DatabaseURL: fresh.BackupURL, Recipients: []string{id.Recipient().String()}})
	require.NoError(t, err)

	// Erased after the backup: the backup still holds the person.
	erase(victim)

	pg := testharness.Postgres(t)
	name := "test_cli_restore_erasure"
	_ = pg.Server.DropDatabase(ctx, name)
	target, err := pg.Server.CreateDatabase(ctx, name, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })

	env := []string{"S3_ENDPOINT=" + s.Config.Endpoint, "S3_BUCKET=" + s.Bucket,
		"DATABASE_URL=" + fresh.URL, "TREASURY_DATABASE_URL=" + fresh.TreasuryURL}
	code, out, errOut := run(t, env, "restore", "--backup", m.ID, "--target", target, "--identity", idFile)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "re-applied 1 erasure(s)", "the early erasure is complete in the backup; the later one is applied again")
	require.Contains(t, out, "restored and serving")

	restored, err := pgxpool.New(ctx, target)
	require.NoError(t, err)
	defer restored.Close()
	count := func(sql string, args ...any) int {
		t.Helper()
		var n int
		require.NoError(t, restored.QueryRow(ctx, sql, args...).Scan(&n))
		return n
	}
	for _, u := range []uuid.UUID{early, victim} {
		require.Zero(t, count(`SELECT count(*) FROM credentials WHERE user_id = $1`, u), "credentials of %s", u)
		require.Zero(t, count(`SELECT count(*) FROM user_keys WHERE user_id = $1`, u))
		require.Equal(t, 1, count(`SELECT count(*) FROM users WHERE id = $1 AND display_name = $2 AND erased_at IS NOT NULL`, u, db.ErasedDisplayName))
		require.Equal(t, 1, count(`SELECT count(*) FROM erasures WHERE user_id = $1 AND completed_at IS NOT NULL`, u))
	}
	require.Equal(t, 1, count(`SELECT count(*) FROM credentials WHERE user_id = $1`, other), "everyone else is restored as backed up")
	require.Equal(t, 1, count(`SELECT count(*) FROM users WHERE id = $1 AND erased_at IS NULL AND display_name <> $2`, other, db.ErasedDisplayName))
}
