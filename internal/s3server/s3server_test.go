package s3server_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/s3server"
)

// TestFileBackedStoreThroughTheRealClient: objects written through aws-sdk-go-v2 are kept in
// files and survive a restart of the server.
func TestFileBackedStoreThroughTheRealClient(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	put := func(srv *s3server.Server) *s3.Client {
		c, err := objstore.NewClient(ctx, config.S3{Endpoint: srv.URL(), Region: "us-east-1", PathStyle: true}, objstore.Options{StaticCredentials: objstore.DevCredentials()})
		require.NoError(t, err)
		return c
	}
	srv, err := s3server.Start("127.0.0.1:0", dir)
	require.NoError(t, err)
	c := put(srv)
	require.NoError(t, objstore.EnsureBucket(ctx, c, "bkt"))
	require.NoError(t, objstore.EnsureBucket(ctx, c, "bkt"), "ensuring twice is fine")
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k/1"), Body: strings.NewReader("hello")})
	require.NoError(t, err)
	require.NoError(t, srv.Close())

	srv, err = s3server.Start("127.0.0.1:0", dir)
	require.NoError(t, err)
	defer srv.Close()
	c = put(srv)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k/1")})
	require.NoError(t, err)
	b, _ := io.ReadAll(out.Body)
	require.Equal(t, "hello", string(b))
}

// TestFileBackedStoreAnswersAsS3: a listing under a prefix nothing is stored under yet is an
// empty list (s3afero alone says NoSuchBucket, which pgBackRest takes for an error); a bucket
// that does not exist is still NoSuchBucket; and ServeTLS serves the same buckets over HTTPS
// with LocalCert's certificate, trusted through its file.
func TestFileBackedStoreAnswersAsS3(t *testing.T) {
	ctx := context.Background()
	srv, err := s3server.Start("127.0.0.1:0", t.TempDir())
	require.NoError(t, err)
	defer srv.Close()
	c, err := objstore.NewClient(ctx, config.S3{Endpoint: srv.URL(), Region: "us-east-1", PathStyle: true}, objstore.Options{StaticCredentials: objstore.DevCredentials()})
	require.NoError(t, err)
	require.NoError(t, objstore.EnsureBucket(ctx, c, "bkt"))
	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/1"), Body: strings.NewReader("x")})
	require.NoError(t, err)
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("bkt"), Prefix: aws.String("pgbackrest/archive/"), Delimiter: aws.String("/")})
	require.NoError(t, err)
	require.Empty(t, out.Contents)
	require.Empty(t, out.CommonPrefixes)
	_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("nope"), Prefix: aws.String("a/"), Delimiter: aws.String("/")})
	require.ErrorContains(t, err, "NoSuchBucket")

	cert, caFile, err := s3server.LocalCert(t.TempDir(), time.Hour)
	require.NoError(t, err)
	endpoint, err := srv.ServeTLS("127.0.0.1:0", cert)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(endpoint, "https://localhost:"), endpoint)
	t.Setenv("AWS_CA_BUNDLE", caFile)
	tc, err := objstore.NewClient(ctx, config.S3{Endpoint: endpoint, Region: "us-east-1", PathStyle: true}, objstore.Options{StaticCredentials: objstore.DevCredentials()})
	require.NoError(t, err)
	got, err := tc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/1")})
	require.NoError(t, err)
	b, _ := io.ReadAll(got.Body)
	require.Equal(t, "x", string(b))
	// Over HTTPS the SDK sends bodies aws-chunked with a trailing checksum: stored as sent.
	body := strings.Repeat(`{"manifest": true} `, 5000)
	_, err = tc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/2"), Body: strings.NewReader(body)})
	require.NoError(t, err)
	got, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/2")})
	require.NoError(t, err)
	b, _ = io.ReadAll(got.Body)
	require.Equal(t, body, string(b))
}
