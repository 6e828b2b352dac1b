package main

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// The restore command, from S3 alone, into a new database; then the refusals.
func TestRestoreCommand(t *testing.T) {
	ctx := context.Background()
	fresh := testharness.FreshPG(t)
	src := fresh.BackupURL // pg_dump as the read-only orchestrator_backup (BACKUP_DATABASE_URL)
	owner, err := db.Open(ctx, fresh.OwnerURL)
	require.NoError(t, err)
	defer owner.Close()
	_, err = owner.Exec(ctx, `CREATE TABLE cli_notes (id serial PRIMARY KEY, body text, at timestamptz DEFAULT now());
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

	// The serving check logs in as DATABASE_URL's and TREASURY_DATABASE_URL's users, with the
	// passwords the restore's bootstrap sets from them.
	env := []string{"S3_ENDPOINT=" + s.Config.Endpoint, "S3_BUCKET=" + s.Bucket,
		"DATABASE_URL=" + fresh.URL, "TREASURY_DATABASE_URL=" + fresh.TreasuryURL}
	code, out, errOut := run(t, env, "restore", "--backup", "latest", "--target", target, "--identity", idFile)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "restoring backup "+m.ID)
	require.Contains(t, out, "fingerprint matches")
	require.Contains(t, out, "restored and serving")

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

	oneLine := func(errOut string) {
		t.Helper()
		require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, errOut)
	}
	code, _, errOut = run(t, env, "restore", "--backup", "bk-never-made", "--target", target, "--identity", idFile)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "backup bk-never-made: no manifest")
	oneLine(errOut)

	// A passphrase-mode backup restores with --passphrase-file into a database --create makes;
	// a wrong passphrase is one line and creates nothing.
	_, err = backup.Run(ctx, st, backup.Options{ID: "cli-pass", DatabaseURL: src, Passphrase: "a long dev passphrase"})
	require.NoError(t, err)
	passFile := filepath.Join(t.TempDir(), "pass")
	require.NoError(t, os.WriteFile(passFile, []byte("a long dev passphrase\n"), 0o600))
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	require.NoError(t, os.WriteFile(wrongFile, []byte("not it\n"), 0o600))
	created := "test_cli_restore_created"
	_ = pg.Server.DropDatabase(ctx, created)
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), created) })
	createdURL := pg.Server.DatabaseURL(created)
	code, _, errOut = run(t, env, "restore", "--backup", "cli-pass", "--target", createdURL, "--create", "--passphrase-file", wrongFile)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "this passphrase does not open the backup")
	oneLine(errOut)
	code, out, errOut = run(t, env, "restore", "--backup", "cli-pass", "--target", createdURL, "--create", "--passphrase-file", passFile)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "fingerprint matches")
	require.Contains(t, out, "restored and serving")

	code, _, errOut = run(t, env, "restore", "--target", createdURL, "--identity", idFile, "--passphrase-file", passFile)
	require.Equal(t, 1, code)
	oneLine(errOut)
}

// `restore --with-temporal` brings back the dev server's SQLite state (copied by the backup
// with SQLite's online backup API) beside the application's data, and refuses, before
// touching anything, a backup without Temporal state or a state file that exists. `backup
// list` resolves backups from the manifests in the store: the catalog, which knew none of
// them, is reconciled and the drift printed once.
func TestRestoreWithTemporalAndBackupList(t *testing.T) {
	ctx := context.Background()
	fresh := testharness.FreshPG(t)
	s := testharness.NewS3(t)
	st := backup.Store{S3: s.Client, Bucket: s.Bucket}
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	require.NoError(t, os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600))

	// A stand-in for the embedded server's state file, written through the same driver.
	dir := t.TempDir()
	state := filepath.Join(dir, "temporal.db")
	lite, err := sql.Open("sqlite", "file:"+state)
	require.NoError(t, err)
	_, err = lite.ExecContext(ctx, `CREATE TABLE executions (workflow_id TEXT PRIMARY KEY, state BLOB);
		WITH RECURSIVE g(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM g WHERE n < 40)
		INSERT INTO executions SELECT 'bailout-' || n, randomblob(64) FROM g`)
	require.NoError(t, err)
	require.NoError(t, lite.Close())
	recipients := []string{id.Recipient().String()}
	_, err = backup.Run(ctx, st, backup.Options{ID: "cli-plain", DatabaseURL: fresh.BackupURL, Recipients: recipients})
	require.NoError(t, err)
	m, err := backup.Run(ctx, st, backup.Options{ID: "cli-temporal", DatabaseURL: fresh.BackupURL, Recipients: recipients,
		Temporal: []backup.TemporalSource{{SQLiteFile: state}}})
	require.NoError(t, err)
	require.Len(t, m.Parts, 1)

	pg := testharness.Postgres(t)
	name := "test_cli_temporal_target"
	_ = pg.Server.DropDatabase(ctx, name)
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })
	target := pg.Server.DatabaseURL(name)
	env := []string{"S3_ENDPOINT=" + s.Config.Endpoint, "S3_BUCKET=" + s.Bucket,
		"DATABASE_URL=" + fresh.URL, "TREASURY_DATABASE_URL=" + fresh.TreasuryURL}
	restored := filepath.Join(t.TempDir(), "temporal.db")
	exists := func() bool {
		var ok bool
		require.NoError(t, pg.Pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok))
		return ok
	}

	code, _, errOut := run(t, env, "restore", "--backup", "cli-plain", "--target", target, "--create", "--identity", idFile,
		"--with-temporal", "--temporal-file", restored)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "holds no Temporal state")
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, errOut)
	require.False(t, exists(), "refused before the database was created")

	require.NoError(t, os.WriteFile(restored, []byte("a live server's file"), 0o600))
	code, _, errOut = run(t, env, "restore", "--backup", "cli-temporal", "--target", target, "--create", "--identity", idFile,
		"--with-temporal", "--temporal-file", restored)
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "already exists")
	require.False(t, exists(), "refused before the database was created")
	require.NoError(t, os.Remove(restored))

	code, out, errOut := run(t, env, "restore", "--backup", "latest", "--target", target, "--create", "--identity", idFile,
		"--with-temporal", "--temporal-file", restored)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "restoring backup cli-temporal")
	require.Contains(t, out, "Temporal state restored: temporal-sqlite")
	require.Contains(t, out, "restored and serving")
	lite, err = sql.Open("sqlite", "file:"+restored+"?mode=ro")
	require.NoError(t, err)
	defer lite.Close()
	var n int
	require.NoError(t, lite.QueryRowContext(ctx, `SELECT count(*) FROM executions`).Scan(&n))
	require.Equal(t, 40, n)

	// backup list: the source's catalog never saw these backups; the store decides.
	code, out, errOut = run(t, env, "backup", "list")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, errOut, "catalog drift: 2 complete in the store but not in the catalog")
	require.Contains(t, out, "cli-temporal")
	require.Contains(t, out, "cli-plain")
	code, _, errOut = run(t, env, "backup", "list")
	require.Equal(t, 0, code, errOut)
	require.NotContains(t, errOut, "drift", "reconciled once, the catalog agrees")
}
