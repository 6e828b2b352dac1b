package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// minioVersion is the MinIO server the issue names; .ci/run installs it with go install.
const minioVersion = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// startMinIO runs a real MinIO server as a separate process on loopback (MinIO is AGPL: it is
// run as a tool, never imported) and returns a client and a fresh bucket. gofakes3 keeps parts
// in memory and ignores x-amz-checksum-*, so streaming and checksums are checked here.
func startMinIO(t testing.TB) Store {
	t.Helper()
	st, _ := startMinIOProcess(t)
	return st
}

// startMinIOProcess is startMinIO, also returning the server's process (the benchmark reads
// its CPU time).
func startMinIOProcess(t testing.TB) (Store, *os.Process) {
	t.Helper()
	bin := minioBinary(t)
	port := freePort(t)
	console := freePort(t)
	dir := t.TempDir()
	const user, secret = "orchestrator-test", "orchestrator-test-secret"
	cmd := exec.Command(bin, "server", dir, "--quiet",
		"--address", fmt.Sprintf("127.0.0.1:%d", port), "--console-address", fmt.Sprintf("127.0.0.1:%d", console))
	cmd.Env = append(os.Environ(), "MINIO_ROOT_USER="+user, "MINIO_ROOT_PASSWORD="+secret, "MINIO_BROWSER=off")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(endpoint + "/minio/health/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("MinIO did not become ready in 60 s: %s", out.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	cfg := config.S3{Endpoint: endpoint, Bucket: "bk-" + randHex(6), Region: config.DefaultAWSRegion, PathStyle: true}
	ctx := context.Background()
	c, err := objstore.NewClient(ctx, cfg, objstore.Options{StaticCredentials: &aws.Credentials{AccessKeyID: user, SecretAccessKey: secret}})
	require.NoError(t, err)
	// Ready is not always initialised: on a busy machine the first bucket call can still be
	// answered 503 Service Unavailable (seen in TestBackupAgainstMinIO).
	for {
		err := objstore.EnsureBucket(ctx, c, cfg.Bucket)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || !strings.Contains(err.Error(), "StatusCode: 503") {
			t.Fatalf("MinIO bucket: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return Store{S3: c, Bucket: cfg.Bucket, PartSize: 5 << 20, Concurrency: 2}, cmd.Process
}

// minioBinary finds the minio server on PATH or in GOPATH/bin, or installs the pinned version
// with go install into the user's cache (a few minutes, once per machine), so `make test` needs
// nothing installed by hand.
func minioBinary(t testing.TB) string {
	t.Helper()
	if bin, err := exec.LookPath("minio"); err == nil {
		return bin
	}
	gopath := os.Getenv("GOPATH")
	if gopath == "" {
		home, _ := os.UserHomeDir()
		gopath = filepath.Join(home, "go")
	}
	if bin := filepath.Join(gopath, "bin", "minio"); fileExists(bin) {
		return bin
	}
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	gobin := filepath.Join(cache, "orchestrator-tools", "minio-"+strings.TrimPrefix(minioVersion, "github.com/minio/minio@"))
	bin := filepath.Join(gobin, "minio")
	if fileExists(bin) {
		return bin
	}
	t.Logf("installing the MinIO server for this test: go install %s (a few minutes, once)", minioVersion)
	cmd := exec.Command("go", "install", minioVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the MinIO server is needed for this test and could not be installed (go install %s): %v\n%s", minioVersion, err, out)
	}
	return bin
}

// sampleEvery calls fn every interval on a goroutine of its own until the returned function
// is called, which returns once fn no longer runs.
func sampleEvery(interval time.Duration, fn func()) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				fn()
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port
}

// TestBackupAgainstMinIO streams a backup several times larger than the upload's buffers to a
// real S3 server: the object is a real multipart upload, its stored SHA-256 matches the
// manifest, the Go heap stays bounded well below the object's size (no whole dump in memory),
// nothing is left unfinished, and the restore from MinIO reproduces the fingerprint.
func TestBackupAgainstMinIO(t *testing.T) {
	ctx := context.Background()
	st := startMinIO(t)
	pg := testharness.FreshPG(t)
	pool := ownerPool(t, pg)
	seed(t, pool)
	url := pg.BackupURL
	// About 100 MB of incompressible bytes: zstd cannot shrink it, so the stored object is
	// many parts long and larger than what the pipeline may hold in memory.
	_, err := pool.Exec(ctx, `CREATE TABLE bk_blobs (id int PRIMARY KEY, body bytea NOT NULL);
		INSERT INTO bk_blobs SELECT g, decode(string_agg(md5(g::text || ':' || r::text || random()::text), ''), 'hex')
		FROM generate_series(1, 1536) g, generate_series(1, 4096) r GROUP BY g`)
	require.NoError(t, err)

	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	opts := Options{ID: "minio-" + randHex(4), DatabaseURL: url, Recipients: []string{id.Recipient().String()}}

	// Sample the heap while the backup runs. A low GC target keeps garbage from passing for
	// live data, so the growth measured is what the pipeline holds.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := sampleEvery(5*time.Millisecond, func() {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		if m.HeapInuse > peak.Load() {
			peak.Store(m.HeapInuse)
		}
	})
	m, err := Run(ctx, st, opts)
	stop()
	require.NoError(t, err)
	require.Greater(t, m.StoredBytes, int64(96<<20), "the object should be many parts long")
	growth := int64(peak.Load()) - int64(base.HeapInuse)
	t.Logf("stored %d bytes; heap in use grew by at most %d bytes", m.StoredBytes, growth)
	// Measured here: about 40 MiB whatever the object's size (zstd's encoder windows and the
	// upload's part buffers; about 65 MiB under the race detector); it must stay below the
	// object's size, which it would pass if the pipeline held the dump.
	require.Less(t, growth, m.StoredBytes*9/10, "the pipeline must stream, not hold the dump")

	head, err := st.S3.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(m.Object)})
	require.NoError(t, err)
	require.Equal(t, m.StoredBytes, aws.ToInt64(head.ContentLength))
	require.Contains(t, aws.ToString(head.ETag), "-", "a multipart upload's ETag names its part count")

	obj, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(m.Object)})
	require.NoError(t, err)
	h := sha256.New()
	n, err := io.Copy(h, obj.Body)
	_ = obj.Body.Close()
	require.NoError(t, err)
	require.Equal(t, m.StoredBytes, n)
	require.Equal(t, m.SHA256, hex.EncodeToString(h.Sum(nil)), "the manifest's SHA-256 is the stored ciphertext's")

	left, err := Unfinished(ctx, st)
	require.NoError(t, err)
	require.Empty(t, left, "no multipart upload left behind")

	target := emptyDB(t)
	res, err := Restore(ctx, st, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{id}})
	require.NoError(t, err)
	require.NotNil(t, res)
	got, err := Fingerprint(ctx, target)
	require.NoError(t, err)
	require.Empty(t, Compare(m.Tables, got), "the restored data matches the manifest's fingerprint")
}
