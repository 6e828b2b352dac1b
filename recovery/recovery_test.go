package recovery_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/recovery"
)

func TestMain(m *testing.M) { testharness.Main(m) }

// source is a migrated database with rows in every kind of table, ephemeral ones included,
// backed up (as the read-only orchestrator_backup, like BACKUP_DATABASE_URL) into a fresh
// bucket.
type source struct {
	pg *testharness.PG
	st backup.Store
}

func newSource(t *testing.T) source {
	t.Helper()
	ctx := context.Background()
	pg := testharness.FreshPG(t)
	_, err := pg.Pool.Exec(ctx, `
		INSERT INTO ws_sessions (id, user_id, instance_id) VALUES (gen_random_uuid(), gen_random_uuid(), gen_random_uuid());
		INSERT INTO rate_limits (bucket, window_start, hits) VALUES ('comments:someone', now(), 3)`)
	require.NoError(t, err)
	s := testharness.NewS3(t)
	return source{pg: pg, st: backup.Store{S3: s.Client, Bucket: s.Bucket}}
}

func x25519(t *testing.T) (*age.X25519Identity, []age.Identity) {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	return id, []age.Identity{id}
}

func backupOf(t *testing.T, src source, id string, o backup.Options) *backup.Manifest {
	t.Helper()
	o.ID, o.DatabaseURL = id, src.pg.BackupURL
	m, err := backup.Run(context.Background(), src.st, o)
	require.NoError(t, err)
	return m
}

// targetName is a database name of this test on the shared server, dropped at the end.
func targetName(t *testing.T) (string, string) {
	t.Helper()
	pg := testharness.Postgres(t)
	name := "test_recovery_" + time.Now().Format("150405") + "_" + randomSuffix()
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })
	return name, pg.Server.DatabaseURL(name)
}

var suffixN int

func randomSuffix() string {
	suffixN++
	return string(rune('a'+suffixN%26)) + time.Now().Format("05.000000")[3:]
}

func databaseExists(t *testing.T, adminURL, name string) bool {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), adminURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var ok bool
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&ok))
	return ok
}

func count(t *testing.T, url, table string) int {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM `+table).Scan(&n))
	return n
}

// The 3 am restore: a new PostgreSQL cluster that has never seen the application
// (no roles). The old way (no bootstrap, --no-owner) restores data that matches the
// fingerprint yet does not serve; the restore now bootstraps the roles, keeps the owners
// and grants, clears the ephemeral rows, and the serving check passes as the runtime role
// and the treasury login.
func TestRestoreOntoAFreshClusterServes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	src := newSource(t)
	pub, ids := x25519(t)
	// Temporal's PostgreSQL database (TEMPORAL_BACKUP_DATABASE_URLS) goes into the same backup.
	temporalName, temporalURL := targetName(t)
	pg := testharness.Postgres(t)
	_, err := pg.Server.CreateDatabase(ctx, temporalName, "")
	require.NoError(t, err)
	tconn, err := pgx.Connect(ctx, temporalURL)
	require.NoError(t, err)
	_, err = tconn.Exec(ctx, `CREATE TABLE executions (workflow_id text PRIMARY KEY, state bytea);
		INSERT INTO executions SELECT 'bailout-' || g, sha256(g::text::bytea) FROM generate_series(1, 25) g`)
	require.NoError(t, err)
	require.NoError(t, tconn.Close(ctx))
	m := backupOf(t, src, "fresh-cluster-1", backup.Options{Recipients: []string{pub.Recipient().String()},
		Temporal: []backup.TemporalSource{{DatabaseURL: temporalURL}}})
	require.Len(t, m.Parts, 1)
	require.Equal(t, backup.PartPostgres, m.Parts[0].Kind)

	dir, err := os.MkdirTemp("", "recovery-cluster-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	c, err := pgcluster.StartCluster(ctx, filepath.Join(dir, "pg"), pgcluster.ClusterOptions{Ephemeral: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	target := c.URL("orchestrator")

	// The old restore: no bootstrap, no owners. The data arrives, the application cannot use it.
	_, err = recovery.Restore(ctx, recovery.Options{Store: src.st, Manifest: m, TargetURL: target, Create: true, NoOwner: true,
		Identities: ids, RuntimeTemplate: "postgres://orchestrator_app:pw@db.new/orchestrator",
		TreasuryTemplate: "postgres://orchestrator_treasury_login:pw@db.new/orchestrator",
		Bootstrap:        func(context.Context, string) error { return nil }})
	require.ErrorIs(t, err, db.ErrNotServing)
	require.False(t, databaseExists(t, c.URL("postgres"), "orchestrator"), "a failed restore drops the database it created")

	// DATABASE_URL and TREASURY_DATABASE_URL as production will have them on the new server:
	// the bootstrap sets these passwords, and the serving check logs in with them.
	runtimeTmpl := "postgres://orchestrator_app:app-pw-" + randomSuffix() + "@db.new/orchestrator"
	treasuryTmpl := "postgres://orchestrator_treasury_login:treasury-pw-" + randomSuffix() + "@db.new/orchestrator"
	res, err := recovery.Restore(ctx, recovery.Options{Store: src.st, Manifest: m, TargetURL: target, Create: true, Identities: ids, Jobs: 2,
		RuntimeTemplate: runtimeTmpl, TreasuryTemplate: treasuryTmpl,
		WithTemporal: true, TemporalServerURL: c.URL("postgres")})
	require.NoError(t, err)
	require.True(t, res.Created)
	require.Equal(t, []string{temporalName}, res.Temporal)
	require.Equal(t, 25, count(t, c.URL(temporalName), "executions"))
	require.True(t, res.Serving.OK, res.Serving.Failed())
	require.Empty(t, res.Restore.Mismatches)
	require.GreaterOrEqual(t, len(res.Serving.Checks), 10)
	roles := map[string]bool{}
	for _, ch := range res.Serving.Checks {
		roles[ch.Role] = true
	}
	require.True(t, roles[recovery.RuntimeRole] && roles[recovery.TreasuryLoginRole], "probes ran as both roles: %v", roles)

	// Owners as the source had them, not the restoring administrator.
	var schemaOwner, tableOwner string
	conn, err := pgx.Connect(ctx, target)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	require.NoError(t, conn.QueryRow(ctx, `SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'treasury'`).Scan(&schemaOwner))
	require.NoError(t, conn.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE tablename = 'users'`).Scan(&tableOwner))
	require.Equal(t, "orchestrator_owner", schemaOwner)
	require.Equal(t, "orchestrator_owner", tableOwner)
	// Ephemeral rows stay out; the restored catalog knows the backup it came from.
	require.Zero(t, count(t, target, "ws_sessions"))
	require.Zero(t, count(t, target, "rate_limits"))
	var status string
	require.NoError(t, conn.QueryRow(ctx, `SELECT status FROM backups WHERE id = $1`, m.ID).Scan(&status))
	require.Equal(t, "complete", status)
}

// Both encryption modes restore: X25519 recipients with --identity, scrypt with
// --passphrase-file; the other mode's secret, or a wrong one, is refused before anything
// is created.
func TestEveryBackupModeRestores(t *testing.T) {
	ctx := context.Background()
	src := newSource(t)
	pub, ids := x25519(t)
	passFile := filepath.Join(t.TempDir(), "passphrase")
	require.NoError(t, os.WriteFile(passFile, []byte("correct horse battery staple\n"), 0o600))
	passIDs, err := backup.ReadPassphraseFile(passFile)
	require.NoError(t, err)
	wrongFile := filepath.Join(t.TempDir(), "wrong")
	require.NoError(t, os.WriteFile(wrongFile, []byte("incorrect horse\n"), 0o600))
	wrongIDs, err := backup.ReadPassphraseFile(wrongFile)
	require.NoError(t, err)
	_, otherIDs := x25519(t)

	cases := []struct {
		name  string
		opts  backup.Options
		ids   []age.Identity
		wrong []age.Identity
	}{
		{"x25519", backup.Options{Recipients: []string{pub.Recipient().String()}}, ids, otherIDs},
		{"passphrase", backup.Options{Passphrase: "correct horse battery staple"}, passIDs, wrongIDs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := backupOf(t, src, "mode-"+tc.name, tc.opts)
			require.Equal(t, tc.name == "passphrase", m.Passphrase)
			name, target := targetName(t)

			_, err := recovery.Restore(ctx, recovery.Options{Store: src.st, Manifest: m, TargetURL: target, Create: true, Identities: tc.wrong})
			require.ErrorContains(t, err, "does not open the backup")
			require.False(t, databaseExists(t, testharness.Postgres(t).URL, name), "a wrong secret creates nothing")

			res, err := recovery.Restore(ctx, recovery.Options{Store: src.st, Manifest: m, TargetURL: target, Create: true, Identities: tc.ids,
				RuntimeTemplate: src.pg.URL, TreasuryTemplate: src.pg.TreasuryURL})
			require.NoError(t, err)
			require.True(t, res.Serving.OK, res.Serving.Failed())
			require.Equal(t, len(m.Tables), len(res.Restore.Tables))
		})
	}
}

// Bad input: one clear error each, and the target is left as it was.
func TestBadInputLeavesTheTargetUntouched(t *testing.T) {
	ctx := context.Background()
	src := newSource(t)
	pub, ids := x25519(t)
	m := backupOf(t, src, "bad-input-1", backup.Options{Recipients: []string{pub.Recipient().String()}})

	// A target that is not empty, without Clean.
	busy := testharness.FreshPG(t)
	busyURL := busy.AdminURL
	_, err := busy.Pool.Exec(ctx, `INSERT INTO rate_limits (bucket, window_start, hits) VALUES ('keep-me', now(), 1)`)
	require.NoError(t, err)
	before, err := backup.Fingerprint(ctx, busyURL)
	require.NoError(t, err)
	_, err = recovery.Restore(ctx, recovery.Options{Store: src.st, Manifest: m, TargetURL: busyURL, Identities: ids})
	require.ErrorContains(t, err, "is not empty")
	require.ErrorContains(t, err, "--clean")
	after, err := backup.Fingerprint(ctx, busyURL)
	require.NoError(t, err)
	require.Empty(t, backup.Compare(before, after), "the non-empty target is untouched")

	// A database that does not exist, without Create.
	name, target := targetName(t)
	_, err = recovery.Restore(ctx, recovery.Options{Store: src.st, Manifest: m, TargetURL: target, Identities: ids})
	require.ErrorContains(t, err, "does not exist on the target server; pass --create")
	require.False(t, databaseExists(t, testharness.Postgres(t).URL, name))

	// A backup id that does not exist.
	_, err = backup.Resolve(ctx, src.st, "bk-never-made", time.Time{})
	require.ErrorIs(t, err, backup.ErrNoManifest)
	require.Equal(t, "backup bk-never-made: no manifest: the backup is incomplete or does not exist", err.Error())

	// A manifest from a newer orchestrator.
	newer := *m
	newer.ID, newer.Version = "from-the-future", backup.ManifestVersion+1
	body, err := json.Marshal(newer)
	require.NoError(t, err)
	_, err = src.st.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(src.st.Bucket), Key: aws.String(src.st.ManifestKey(newer.ID)), Body: bytes.NewReader(body)})
	require.NoError(t, err)
	_, err = backup.Resolve(ctx, src.st, newer.ID, time.Time{})
	require.ErrorIs(t, err, backup.ErrNewerFormat)
	require.ErrorContains(t, err, "upgrade orchestrator")
	// It hides no other backup from the catalog (and is not marked missing), but which backup
	// is the latest is unknown while it cannot be read: name one.
	drift, err := recovery.ReconcileCatalog(ctx, src.pg.Pool, src.st)
	require.NoError(t, err)
	require.Equal(t, []string{m.ID}, drift.Added)
	require.Equal(t, []string{newer.ID}, drift.Unreadable)
	require.Contains(t, drift.String(), "cannot read [from-the-future]")
	_, err = backup.Resolve(ctx, src.st, "latest", time.Time{})
	require.ErrorIs(t, err, backup.ErrNewerFormat)
	require.ErrorContains(t, err, "name a backup with --backup <id>")
	got, err := backup.Resolve(ctx, src.st, m.ID, time.Time{})
	require.NoError(t, err)
	require.Equal(t, m.ID, got.ID)

	// A wrong identity, with Create: nothing is created.
	_, wrong := x25519(t)
	_, err = recovery.Restore(ctx, recovery.Options{Store: src.st, Manifest: m, TargetURL: target, Create: true, Identities: wrong})
	require.ErrorContains(t, err, "this identity does not open the backup")
	require.ErrorContains(t, err, "nothing was restored")
	require.False(t, databaseExists(t, testharness.Postgres(t).URL, name))
}

// The catalog is a cache of the store: a backup the catalog lacks is added, one whose
// manifest is gone is marked missing, and the drift is reported.
func TestCatalogReconcilesWithTheStore(t *testing.T) {
	ctx := context.Background()
	src := newSource(t)
	pub, _ := x25519(t)
	m := backupOf(t, src, "in-store-only", backup.Options{Recipients: []string{pub.Recipient().String()}, Kind: "nightly"})
	pool, _ := testharness.FreshDB(t)
	require.NoError(t, db.StartBackup(ctx, pool, "gone-from-store", "nightly", "backups/gone-from-store.dump.zst.age", time.Now().Add(-time.Hour)))
	fin := time.Now()
	require.NoError(t, db.CompleteBackup(ctx, pool, db.Backup{ID: "gone-from-store", FinishedAt: &fin}))

	drift, err := recovery.ReconcileCatalog(ctx, pool, src.st)
	require.NoError(t, err)
	require.Equal(t, []string{m.ID}, drift.Added)
	require.Equal(t, []string{"gone-from-store"}, drift.Missing)
	got, err := db.GetBackup(ctx, pool, m.ID)
	require.NoError(t, err)
	require.Equal(t, "complete", got.Status)
	require.Equal(t, "nightly", got.Kind)
	require.Equal(t, m.SHA256, got.SHA256)
	gone, err := db.GetBackup(ctx, pool, "gone-from-store")
	require.NoError(t, err)
	require.Equal(t, "missing", gone.Status)

	drift, err = recovery.ReconcileCatalog(ctx, pool, src.st)
	require.NoError(t, err)
	require.True(t, drift.Empty(), "a second reconcile finds nothing: %s", drift)
}
