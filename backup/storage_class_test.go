package backup

import (
	"context"
	"net/http"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// addBlob adds about 8 MB of random bytes to the database: more than one 5 MiB part, even
// compressed.
func addBlob(t *testing.T, dbURL string) {
	t.Helper()
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, dbURL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `
		CREATE TABLE bk_blob (k int PRIMARY KEY, b bytea);
		INSERT INTO bk_blob SELECT g, decode(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
			|| md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex')
		FROM generate_series(1, 64000) g;`)
	require.NoError(t, err)
}

// S3_STORAGE_CLASS is sent with the backup object, whether it is uploaded in one request or
// in parts; without it no storage class is sent (the bucket's default applies).
func TestStorageClassOnUploads(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	s := testharness.NewS3(t)
	proxy := testharness.NewS3Proxy(t, s.Config.Endpoint)
	cfg := s.Config
	cfg.Endpoint = proxy.URL()
	c, err := objstore.NewClient(ctx, cfg, objstore.Options{StaticCredentials: objstore.DevCredentials()})
	require.NoError(t, err)

	// objectClass is the storage class sent when the object of backup id was created.
	objectClass := func(st Store, id string) (string, bool) {
		for _, r := range proxy.Requests() {
			if r.Path != "/"+st.Bucket+"/"+st.ObjectKey(id) {
				continue
			}
			if (r.Method == http.MethodPut && !r.IsUploadPart()) || (r.Method == http.MethodPost && r.Query.Has("uploads")) {
				return r.Header.Get("X-Amz-Storage-Class"), true
			}
		}
		return "", false
	}

	st := Store{S3: c, Bucket: s.Bucket, StorageClass: "STANDARD_IA", PartSize: 5 << 20}
	f.opts.ID = "b-small"
	_, err = Run(ctx, st, f.opts)
	require.NoError(t, err)
	class, ok := objectClass(st, "b-small")
	require.True(t, ok, "the object was uploaded through the proxy")
	require.Equal(t, "STANDARD_IA", class)

	plain := Store{S3: c, Bucket: s.Bucket, PartSize: 5 << 20}
	f.opts.ID = "b-default"
	_, err = Run(ctx, plain, f.opts)
	require.NoError(t, err)
	class, ok = objectClass(plain, "b-default")
	require.True(t, ok)
	require.Empty(t, class, "no S3_STORAGE_CLASS: the bucket's default")

	addBlob(t, f.ownerURL)
	f.opts.ID = "b-parts"
	m, err := Run(ctx, st, f.opts)
	require.NoError(t, err)
	require.Greater(t, m.StoredBytes, int64(5<<20), "the object is a multipart upload")
	class, ok = objectClass(st, "b-parts")
	require.True(t, ok, "CreateMultipartUpload went through the proxy")
	require.Equal(t, "STANDARD_IA", class)
}
