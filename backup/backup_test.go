package backup

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

const secretMarker = "PLAINTEXT-CANARY-7f3a"

// seed adds tables of several types to the database.
func seed(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		CREATE TABLE bk_people (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), name text NOT NULL,
			born date, balance numeric(20,7), score double precision, tags text[], meta jsonb,
			seen timestamptz DEFAULT now(), photo bytea);
		INSERT INTO bk_people (name, born, balance, score, tags, meta, photo)
		SELECT '`+secretMarker+`-' || g, date '1990-01-01' + g, g * 1.25, g / 7.0, ARRAY['a' || g, 'b'],
			jsonb_build_object('n', g, 'note', 'row ' || g), decode(md5(g::text), 'hex')
		FROM generate_series(1, 500) g;
		CREATE SCHEMA bk_other;
		CREATE TABLE bk_other."Mixed Case" (k bigserial PRIMARY KEY, iv interval, ok boolean);
		INSERT INTO bk_other."Mixed Case" (iv, ok) SELECT make_interval(hours => g), g % 2 = 0 FROM generate_series(1, 50) g;
		CREATE TABLE bk_empty (x int);
		-- What the role bootstrap's default privileges give schema public's tables.
		GRANT USAGE ON SCHEMA bk_other TO orchestrator_backup;
		GRANT SELECT ON ALL TABLES IN SCHEMA bk_other TO orchestrator_backup;
		GRANT SELECT ON ALL SEQUENCES IN SCHEMA bk_other TO orchestrator_backup;`)
	require.NoError(t, err)
}

// ownerPool connects to a test database as its owner, who may create tables.
func ownerPool(t testing.TB, pg *testharness.PG) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), pg.OwnerURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

type fixture struct {
	store Store
	// srcURL backs the database up as orchestrator_backup (BACKUP_DATABASE_URL); ownerURL
	// writes to it.
	srcURL, ownerURL string
	identity         *age.X25519Identity
	opts             Options
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	pg := testharness.FreshPG(t)
	seed(t, ownerPool(t, pg))
	url := pg.BackupURL
	s := testharness.NewS3(t)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	return fixture{
		store:    Store{S3: s.Client, Bucket: s.Bucket},
		srcURL:   url,
		ownerURL: pg.OwnerURL,
		identity: id,
		opts:     Options{ID: "b-" + randHex(4), DatabaseURL: url, Recipients: []string{id.Recipient().String()}},
	}
}

// emptyDB creates an empty database (no migrations) dropped at the end of the test.
func emptyDB(t *testing.T) string {
	t.Helper()
	pg := testharness.Postgres(t)
	name := "test_bk_target_" + randHex(5)
	url, err := pg.Server.CreateDatabase(context.Background(), name, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })
	return url
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func getObject(t *testing.T, st Store, key string) []byte {
	t.Helper()
	out, err := st.S3.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)})
	require.NoError(t, err)
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return b
}

func putObject(t *testing.T, st Store, key string, b []byte) {
	t.Helper()
	_, err := st.S3.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key), Body: bytes.NewReader(b)})
	require.NoError(t, err)
}

func tableCount(t *testing.T, url string) int {
	t.Helper()
	tables, err := Fingerprint(context.Background(), url)
	require.NoError(t, err)
	return len(tables)
}

func TestBackupRoundTrip(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var progressed int64
	f.opts.Progress = func(n int64) { progressed = n }
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)
	require.Equal(t, f.opts.ID, m.ID)
	require.Positive(t, m.DumpBytes)
	require.Equal(t, m.StoredBytes, progressed)
	require.NotEmpty(t, m.SHA256)
	byName := map[string]Table{}
	for _, tb := range m.Tables {
		byName[tb.Name] = tb
	}
	require.EqualValues(t, 500, byName["public.bk_people"].Rows)
	require.EqualValues(t, 50, byName[`bk_other."Mixed Case"`].Rows)
	require.EqualValues(t, 0, byName["public.bk_empty"].Rows)

	obj := getObject(t, f.store, m.Object)
	require.EqualValues(t, m.StoredBytes, len(obj))
	require.False(t, bytes.Contains(obj, []byte(secretMarker)), "ciphertext must not contain plaintext")
	require.True(t, bytes.HasPrefix(obj, []byte("age-encryption.org/v1")))

	got, err := ReadManifest(ctx, f.store, m.ID)
	require.NoError(t, err)
	require.Equal(t, m.SHA256, got.SHA256)

	target := emptyDB(t)
	res, err := Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}})
	require.NoError(t, err)
	require.Empty(t, res.Mismatches)
	require.Len(t, res.Tables, len(m.Tables))

	// Into a non-empty target: refused without clean, done with clean.
	_, err = Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}})
	require.ErrorContains(t, err, "not empty")
	_, err = Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}, Clean: true, Jobs: 2})
	require.NoError(t, err)

	// A change in the restored data is caught by the fingerprint.
	pool, err := pgxpool.New(ctx, target)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, "UPDATE bk_people SET score = score + 1 WHERE name LIKE '%-7'")
	require.NoError(t, err)
	diffs := Compare(m.Tables, mustFingerprint(t, target))
	require.Equal(t, []string{"public.bk_people: content differs"}, diffs)
}

func mustFingerprint(t *testing.T, url string) []Table {
	t.Helper()
	tables, err := Fingerprint(context.Background(), url)
	require.NoError(t, err)
	return tables
}

func TestBackupPassphrase(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.opts.Recipients = nil
	f.opts.Passphrase = "correct horse battery staple"
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)
	require.True(t, m.Passphrase)
	id, err := age.NewScryptIdentity(f.opts.Passphrase)
	require.NoError(t, err)
	_, err = Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: emptyDB(t), Identities: []age.Identity{id}})
	require.NoError(t, err)
}

func TestRestoreRefusesBadObjects(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)
	orig := getObject(t, f.store, m.Object)
	other, err := age.GenerateX25519Identity()
	require.NoError(t, err)

	flipped := bytes.Clone(orig)
	flipped[len(flipped)/2] ^= 0x01
	cases := []struct {
		name   string
		object []byte
		ids    []age.Identity
		want   string
	}{
		{"flipped byte", flipped, []age.Identity{f.identity}, "SHA-256"},
		{"truncated", orig[:len(orig)-100], []age.Identity{f.identity}, "truncated"},
		{"wrong identity", orig, []age.Identity{other}, "cannot decrypt"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			putObject(t, f.store, m.Object, tc.object)
			target := emptyDB(t)
			_, err := Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: tc.ids})
			require.ErrorContains(t, err, tc.want)
			require.ErrorContains(t, err, "nothing was restored")
			require.Zero(t, tableCount(t, target), "the target must not be touched")
		})
	}

	t.Run("missing manifest", func(t *testing.T) {
		_, err := Restore(ctx, f.store, RestoreOptions{ID: "no-such-backup", TargetURL: emptyDB(t), Identities: []age.Identity{f.identity}})
		require.ErrorIs(t, err, ErrNoManifest)
	})
}

// requireNothingStored asserts that f's failed backup left nothing complete-looking: no
// manifest, no object and no unfinished multipart upload.
func requireNothingStored(t *testing.T, f fixture) {
	t.Helper()
	ctx := context.Background()
	_, err := ReadManifest(ctx, f.store, f.opts.ID)
	require.ErrorIs(t, err, ErrNoManifest)
	_, err = f.store.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(f.store.Bucket), Key: aws.String(f.store.ObjectKey(f.opts.ID))})
	require.Error(t, err, "no object may exist")
	ups, err := Unfinished(ctx, f.store)
	require.NoError(t, err)
	require.Empty(t, ups)
}

// A pg_dump that dies half-way (after writing enough for several multipart parts) leaves no
// manifest, no object and no unfinished multipart upload.
func TestFailedDumpLeavesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := "#!/bin/sh\nhead -c 12000000 /dev/urandom\necho 'pg_dump: error: connection lost' >&2\nexit 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pg_dump"), []byte(script), 0o755))
	f.opts.PGBinDir = dir
	f.store.PartSize = 5 << 20
	_, err := Run(ctx, f.store, f.opts)
	require.ErrorContains(t, err, "pg_dump failed")
	require.ErrorContains(t, err, "connection lost")

	requireNothingStored(t, f)

	// A retry with the real pg_dump under the same id yields one complete backup.
	f.opts.PGBinDir = ""
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)
	_, err = ReadManifest(ctx, f.store, m.ID)
	require.NoError(t, err)
}

// An unreachable S3 fails the backup with a clear error and writes nothing.
func TestS3Unreachable(t *testing.T) {
	f := newFixture(t)
	s := testharness.NewS3(t)
	bad := s3.NewFromConfig(aws.Config{Region: "us-east-1", Credentials: f.store.S3.Options().Credentials, RetryMaxAttempts: 1}, func(o *s3.Options) {
		o.BaseEndpoint = aws.String("http://127.0.0.1:1")
		o.UsePathStyle = true
	})
	_ = s
	_, err := Run(context.Background(), Store{S3: bad, Bucket: f.store.Bucket}, f.opts)
	require.Error(t, err)
	require.ErrorContains(t, err, "connection refused")
}

func TestResolveAndOrphanedUpload(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// An upload left by a worker killed mid-way (it could not abort it).
	_, err := f.store.S3.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(f.store.Bucket), Key: aws.String(f.store.ObjectKey(f.opts.ID))})
	require.NoError(t, err)
	ups, err := Unfinished(ctx, f.store)
	require.NoError(t, err)
	require.Len(t, ups, 1)

	first, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)
	ups, err = Unfinished(ctx, f.store)
	require.NoError(t, err)
	require.Empty(t, ups, "the retry aborts the orphaned upload")

	f.opts.ID = "b-second"
	second, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)

	m, err := Resolve(ctx, f.store, "latest", time.Time{})
	require.NoError(t, err)
	require.Equal(t, second.ID, m.ID)
	m, err = Resolve(ctx, f.store, "latest", first.FinishedAt)
	require.NoError(t, err)
	require.Equal(t, first.ID, m.ID)
	_, err = Resolve(ctx, f.store, "latest", first.StartedAt.Add(-time.Hour))
	require.ErrorContains(t, err, "no complete backup at or before")
	m, err = Resolve(ctx, f.store, first.ID, time.Time{})
	require.NoError(t, err)
	require.Equal(t, first.ID, m.ID)

	require.NoError(t, Delete(ctx, f.store, first.ID))
	_, err = ReadManifest(ctx, f.store, first.ID)
	require.ErrorIs(t, err, ErrNoManifest)
}
