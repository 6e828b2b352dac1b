// Package pitrtest starts what a point-in-time recovery test needs, all real: the in-process
// S3 store serving TLS with a certificate made for the test, and a throwaway PostgreSQL
// cluster archiving its WAL into it with pgBackRest, the orchestrator's roles bootstrapped and
// its database migrated.
package pitrtest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/s3server"
	"github.com/creatorvault/orchestrator/pitr"
)

// Bucket is the test store's bucket.
const Bucket = "orchestrator-backups"

// Fixture is a cluster archiving into a TLS object store.
type Fixture struct {
	// Dir holds everything (removed at the end); Env is the environment the orchestrator
	// reads (PITR_*, S3_*, AWS_*), CAFile the store's CA.
	Dir, CAFile string
	Env         map[string]string
	Engine      *pitr.Engine
	Cluster     *pgcluster.Cluster
	// Password is the cluster's postgres password; Roles the orchestrator's logins on the
	// database "orchestrator"; AdminURL an administrator's URL of it.
	Password string
	Roles    db.RoleURLs
	AdminURL string
}

// Lookup reads env like os.LookupEnv.
func Lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// SetEnv sets the fixture's environment for the rest of t (t.Setenv), as a worker reads it.
func (f *Fixture) SetEnv(t testing.TB) {
	for k, v := range f.Env {
		t.Setenv(k, v)
	}
}

// EnvList is env as KEY=value strings, for a child process.
func (f *Fixture) EnvList() []string {
	var out []string
	for k, v := range f.Env {
		out = append(out, k+"="+v)
	}
	return out
}

// Start starts the store and the archiving cluster, with the stanza created, checked and a
// full backup made.
func Start(t testing.TB, ctx context.Context) *Fixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "pitr-test-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755)) // the clusters' user reads the configuration and CA
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	f := &Fixture{Dir: dir}
	endpoint := f.tlsStore(t)
	creds := objstore.DevCredentials()
	f.Env = map[string]string{
		"PITR_CIPHER_PASS": "correct horse battery staple, test only " + strconv.FormatInt(time.Now().UnixNano(), 36),
		"PITR_STANZA":      "orchestrator", "PITR_REPO_PREFIX": "pgbackrest",
		"PITR_PG_DATA": filepath.Join(dir, "pg"), "PITR_PG_SOCKET_DIR": filepath.Join(dir, "sock"),
		"PITR_DIR": filepath.Join(dir, "pgbackrest"), "PITR_S3_CA_FILE": f.CAFile, "AWS_CA_BUNDLE": f.CAFile,
		"S3_ENDPOINT": endpoint, "S3_BUCKET": Bucket, "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
	}
	cfg, err := pitr.LoadConfig(Lookup(f.Env))
	require.NoError(t, err)
	e, err := pitr.New(cfg)
	require.NoError(t, err)
	sock := cfg.PGSocketDir
	require.NoError(t, os.MkdirAll(sock, 0o755))
	require.NoError(t, pgcluster.GiveToOwner(sock))
	require.NoError(t, e.WriteConfig())
	c, err := pgcluster.StartCluster(ctx, cfg.PGData,
		pgcluster.ClusterOptions{Settings: append(e.ServerSettings(), "unix_socket_directories="+sock)})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	require.Equal(t, cfg.PGData, c.Dir, "the cluster stays where pgBackRest is told it is")
	pw, err := os.ReadFile(c.Dir + ".password")
	require.NoError(t, err)
	f.Password = strings.TrimSpace(string(pw))
	f.Env["PITR_PG_PORT"], f.Env["PITR_PG_PASSWORD"] = strconv.Itoa(c.Port), f.Password
	cfg, err = pitr.LoadConfig(Lookup(f.Env))
	require.NoError(t, err)
	f.Engine, err = pitr.New(cfg)
	require.NoError(t, err)
	require.NoError(t, f.Engine.WriteConfig())
	f.Cluster = c

	srv, err := pgcluster.Resolve(ctx, pgcluster.ResolveOptions{URL: c.URL("postgres")})
	require.NoError(t, err)
	f.AdminURL, err = srv.CreateDatabase(ctx, "orchestrator", "")
	require.NoError(t, err)
	roles, passwords, err := db.DevRoleURLs(f.AdminURL)
	require.NoError(t, err)
	require.NoError(t, db.Bootstrap(ctx, f.AdminURL, db.BootstrapOptions{Passwords: passwords}))
	f.Roles = roles
	owner, err := db.Open(ctx, roles.Owner)
	require.NoError(t, err)
	defer owner.Close()
	require.NoError(t, db.MigrateUp(ctx, owner, nil))
	_, err = owner.Exec(ctx, `CREATE TABLE pitr_marks (n int PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())`)
	require.NoError(t, err)

	require.NoError(t, f.Engine.StanzaCreate(ctx))
	require.NoError(t, f.Engine.Check(ctx))
	require.NoError(t, f.Engine.Backup(ctx, pitr.Full))
	return f
}

// tlsStore starts the in-process S3 store serving TLS with a certificate made here for
// localhost (pgBackRest checks DNS names), keeps its CA file and makes the bucket.
func (f *Fixture) tlsStore(t testing.TB) string {
	t.Helper()
	cert, caFile, err := s3server.LocalCert(filepath.Join(f.Dir, "tls"), 24*time.Hour)
	require.NoError(t, err)
	f.CAFile = caFile
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	srv, err := s3server.StartTLS("127.0.0.1:0", "", cert)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	u, err := url.Parse(srv.URL())
	require.NoError(t, err)
	endpoint := "https://localhost:" + u.Port()

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	creds := objstore.DevCredentials()
	client := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(endpoint), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, ""),
		HTTPClient:  &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}})
	require.NoError(t, objstore.EnsureBucket(context.Background(), client, Bucket))
	return endpoint
}
