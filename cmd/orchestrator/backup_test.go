package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// The restore command, from S3 alone, into a new database; then the refusals.
func TestRestoreCommand(t *testing.T) {
	ctx := context.Background()
	pool, src := testharness.FreshAdminDB(t)
	_, err := pool.Exec(ctx, `CREATE TABLE cli_notes (id serial PRIMARY KEY, body text, at timestamptz DEFAULT now());
		INSERT INTO cli_notes (body) SELECT 'note ' || g FROM generate_series(1, 120) g`)
	require.NoError(t, err)
	s := testharness.NewS3(t)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	require.NoError(t, os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600))
	st := backup.Store{S3: s.Client, Bucket: s.Bucket}
	m, err := backup.Run(ctx, st, backup.Options{ID: "cli-1", DatabaseURL: src, Recipients: []string{id.Recipient().String()}})
	require.NoError(t, err)

	pg := testharness.Postgres(t)
	name := "test_cli_restore_target"
	_ = pg.Server.DropDatabase(ctx, name)
	target, err := pg.Server.CreateDatabase(ctx, name, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })

	env := []string{"S3_ENDPOINT=" + s.Config.Endpoint, "S3_BUCKET=" + s.Bucket}
	code, out, errOut := run(t, env, "restore", "--backup", "latest", "--target", target, "--identity", idFile)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "restoring backup "+m.ID)
	require.Contains(t, out, "fingerprint matches")

	// Not empty any more: refused with one line.
	code, _, errOut = run(t, env, "restore", "--backup", m.ID, "--target", target, "--identity", idFile)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "not empty")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1)

	code, _, errOut = run(t, env, "restore", "--at", "yesterday-ish", "--target", target, "--identity", idFile)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "--at must be")

	code, _, errOut = run(t, env, "restore", "--backup", "latest", "--at", "2001-01-01", "--target", target, "--identity", idFile)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "no complete backup at or before")
}
