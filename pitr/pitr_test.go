package pitr

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/s3server"
)

const testBucket = "orchestrator-backups"

// tlsStore starts the in-process S3 store serving TLS with a certificate made here for
// localhost, and returns its endpoint and the CA file that verifies it.
func tlsStore(t *testing.T, dir string) (endpoint, caFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "localhost"},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
	caFile = filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	srv, err := s3server.StartTLS("127.0.0.1:0", "", cert)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	u, err := url.Parse(srv.URL())
	require.NoError(t, err)
	endpoint = "https://localhost:" + u.Port()

	// The bucket, made with the real S3 client trusting that CA.
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	creds := objstore.DevCredentials()
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}})
	require.NoError(t, objstore.EnsureBucket(context.Background(), client, testBucket))
	return endpoint, caFile
}

// archivingCluster is a throwaway cluster archiving into the repository, with the
// orchestrator's database migrated and its roles bootstrapped.
type archivingCluster struct {
	c        *pgcluster.Cluster
	password string
	roles    db.RoleURLs
	admin    string
}

func testEnv(endpoint, caFile, dir string) map[string]string {
	creds := objstore.DevCredentials()
	return map[string]string{
		"PITR_CIPHER_PASS": "correct horse battery staple, test only", "PITR_STANZA": "orchestrator",
		"PITR_REPO_PREFIX": "pgbackrest", "PITR_PG_DATA": filepath.Join(dir, "pg"), "PITR_PG_SOCKET_DIR": filepath.Join(dir, "sock"),
		"PITR_DIR": filepath.Join(dir, "pgbackrest"), "PITR_S3_CA_FILE": caFile, "S3_ENDPOINT": endpoint, "S3_BUCKET": testBucket,
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
	}
}

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func startArchiving(t *testing.T, ctx context.Context, e *Engine, dir string) (*Engine, *archivingCluster) {
	t.Helper()
	sock := filepath.Join(dir, "sock")
	require.NoError(t, os.MkdirAll(sock, 0o755))
	require.NoError(t, pgcluster.GiveToOwner(sock))
	require.NoError(t, e.WriteConfig())
	c, err := pgcluster.StartCluster(ctx, e.Config().PGData,
		pgcluster.ClusterOptions{Settings: append(e.ServerSettings(), "unix_socket_directories="+sock)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	require.Equal(t, e.Config().PGData, c.Dir, "the cluster stays where pgBackRest is told it is")
	cfg := e.Config()
	cfg.PGPort = c.Port
	pw, err := os.ReadFile(c.Dir + ".password")
	require.NoError(t, err)
	cfg.PGPassword = strings.TrimSpace(string(pw))
	e, err = New(cfg)
	require.NoError(t, err)
	require.NoError(t, e.WriteConfig())

	srv, err := pgcluster.Resolve(ctx, pgcluster.ResolveOptions{URL: c.URL("postgres")})
	require.NoError(t, err)
	admin, err := srv.CreateDatabase(ctx, "orchestrator", "")
	require.NoError(t, err)
	roles, passwords, err := db.DevRoleURLs(admin)
	require.NoError(t, err)
	require.NoError(t, db.Bootstrap(ctx, admin, db.BootstrapOptions{Passwords: passwords}))
	owner, err := db.Open(ctx, roles.Owner)
	require.NoError(t, err)
	require.NoError(t, db.MigrateUp(ctx, owner, nil))
	_, err = owner.Exec(ctx, `CREATE TABLE pitr_marks (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`)
	owner.Close()
	require.NoError(t, err)
	return e, &archivingCluster{c: c, password: cfg.PGPassword, roles: roles, admin: admin}
}

// TestRestoreToAMoment is the test: a cluster archiving with the real pgBackRest into
// the TLS object store; a full and a differential backup; rows written over time; a restore to
// a moment in the middle into a new data directory, started and serving-checked, holds exactly
// the rows committed before the moment. Bad moments, another stanza and a missing key fail in
// one line before anything is written.
func TestRestoreToAMoment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "pitr-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755)) // the clusters' user reaches the repository's config and CA
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	endpoint, caFile := tlsStore(t, dir)
	env := testEnv(endpoint, caFile, dir)
	cfg, err := LoadConfig(lookup(env))
	require.NoError(t, err)
	e, err := New(cfg)
	require.NoError(t, err)
	e, src := startArchiving(t, ctx, e, dir)

	require.NoError(t, e.StanzaCreate(ctx))
	require.NoError(t, e.Check(ctx))
	require.NoError(t, e.Backup(ctx, Full))
	require.NoError(t, e.Backup(ctx, Diff))

	conn, err := pgx.Connect(ctx, src.admin)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	// Rows a gap apart; the moment is in the middle of the gap after row `before`.
	const rows, before = 10, 5
	gap := 2 * time.Second
	if s := os.Getenv("PITR_TEST_SPAN"); s != "" { // e.g. 1m, as the issue words it
		span, err := time.ParseDuration(s)
		require.NoError(t, err)
		gap = span / rows
	}
	var moment time.Time
	for n := 1; n <= rows; n++ {
		if n > 1 {
			time.Sleep(gap)
		}
		if n == before+1 {
			moment = time.Now().Add(-gap / 2)
		}
		_, err := conn.Exec(ctx, `INSERT INTO pitr_marks (n) VALUES ($1)`, n)
		require.NoError(t, err)
	}
	require.NoError(t, e.Check(ctx), "check switches WAL and waits until the last rows are archived")
	time.Sleep(1100 * time.Millisecond) // the newest segment's upload time is whole seconds

	info, err := e.Info(ctx)
	require.NoError(t, err)
	require.Equal(t, 0, info.Status.Code, info.Status.Message)
	require.Equal(t, "aes-256-cbc", info.Cipher)
	bs := info.Sorted()
	require.Len(t, bs, 2)
	require.Equal(t, Full, bs[0].Type)
	require.Equal(t, Diff, bs[1].Type)
	require.Equal(t, bs[0].Label, bs[1].Prior)
	require.Positive(t, bs[0].Info.Repository.Size)
	require.NoError(t, e.Expire(ctx), "retention keeps 2 full, 7 diff: nothing to expire")

	// Bad input: one clear line, nothing touched.
	target := filepath.Join(dir, "restored")
	oldest := bs[0].Started().Add(-time.Hour)
	_, err = e.Restore(ctx, RestoreOptions{At: oldest, DataDir: target, Password: src.password})
	require.ErrorContains(t, err, "is before the oldest physical backup")
	requireOneLine(t, err, env)
	require.NoDirExists(t, target)
	_, err = e.Restore(ctx, RestoreOptions{At: time.Now().Add(time.Hour), DataDir: target, Password: src.password})
	require.ErrorContains(t, err, "is after the newest archived WAL")
	requireOneLine(t, err, env)
	require.NoDirExists(t, target)
	other := e.Config()
	other.Stanza = "another"
	eOther, err := New(other)
	require.NoError(t, err)
	_, err = eOther.Restore(ctx, RestoreOptions{At: moment, DataDir: target, Password: src.password})
	require.ErrorContains(t, err, "stanza")
	requireOneLine(t, err, env)
	require.NoDirExists(t, target)
	noKey := map[string]string{}
	for k, v := range env {
		noKey[k] = v
	}
	delete(noKey, "PITR_CIPHER_PASS")
	_, err = LoadConfig(lookup(noKey))
	require.ErrorIs(t, err, ErrNoCipherPass)
	requireOneLine(t, err, env)

	// The restore to the moment, started and checked as the application's roles.
	res, err := e.Restore(ctx, RestoreOptions{At: moment, DataDir: target, Password: src.password,
		RuntimeURL: src.roles.App, TreasuryURL: src.roles.Treasury, KeepRunning: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = res.Cluster.Stop() })
	require.True(t, res.Serving.OK, "serving check: %v", res.Serving.Failed())
	require.Equal(t, bs[1].Label, res.Backup.Label, "the newest backup before the moment is the start")
	require.False(t, res.LastTransaction.IsZero())
	require.False(t, res.LastTransaction.After(moment), "last transaction %s is after the moment %s", res.LastTransaction, moment)
	restored, err := pgx.Connect(ctx, res.Cluster.URL("orchestrator"))
	require.NoError(t, err)
	defer restored.Close(context.Background())
	got, err := pgx.CollectRows(must(restored.Query(ctx, `SELECT n FROM pitr_marks ORDER BY n`)), pgx.RowTo[int])
	require.NoError(t, err)
	require.Equal(t, []int{1, 2, 3, 4, 5}, got, "exactly the rows committed before %s", moment.Format(time.RFC3339Nano))
	t.Logf("restored to %s from %s %s: last transaction %s, restore %.1fs, recovery %.1fs",
		res.Target.Format(time.RFC3339Nano), res.Backup.Type, res.Backup.Label, res.LastTransaction.Format(time.RFC3339Nano),
		res.RestoreSeconds, res.RecoverySeconds)
	// A second restore into the same (now used) directory is refused.
	_, err = e.Restore(ctx, RestoreOptions{At: moment, DataDir: target, Password: src.password})
	require.ErrorContains(t, err, "is not empty")
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// requireOneLine checks a bad-input error is one line and shows no secret.
func requireOneLine(t *testing.T, err error, env map[string]string) {
	t.Helper()
	require.Error(t, err)
	require.NotContains(t, err.Error(), "\n")
	for _, k := range []string{"PITR_CIPHER_PASS", "AWS_SECRET_ACCESS_KEY"} {
		require.NotContains(t, err.Error(), env[k], "%s leaked", k)
	}
}

func TestLoadConfig(t *testing.T) {
	env := testEnv("https://s3.example.net:9443", "/etc/ca.pem", "/srv/x")
	c, err := LoadConfig(lookup(env))
	require.NoError(t, err)
	require.Equal(t, "s3.example.net", c.S3Host)
	require.Equal(t, 9443, c.S3Port)
	require.Equal(t, "/pgbackrest", c.RepoPath)
	require.True(t, c.S3PathStyle)

	env["S3_ENDPOINT"] = "http://minio:9000"
	_, err = LoadConfig(lookup(env))
	require.ErrorContains(t, err, "only over TLS")

	env["S3_ENDPOINT"] = "https://minio:9000"
	env["PITR_CIPHER_PASS"] = "x\nrepo1-cipher-type=none"
	_, err = LoadConfig(lookup(env))
	require.ErrorContains(t, err, "line break")
	require.NotContains(t, err.Error(), "cipher-type=none")

	delete(env, "PITR_CIPHER_PASS")
	_, err = LoadConfig(lookup(env))
	require.ErrorIs(t, err, ErrNoCipherPass)
}
