package pgcluster

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

// TestThrowawayClusterWhenNoServer is the path of a machine without PostgreSQL running: the
// resolver starts a cluster with the machine's initdb and postgres, data survives a restart,
// and stopping leaves no server process behind.
func TestThrowawayClusterWhenNoServer(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(shallowTempDir(t), "pg")

	srv, err := Resolve(ctx, ResolveOptions{ProbeAddr: closedAddr(t), ClusterDir: dir})
	require.NoError(t, err)
	require.Equal(t, SourceThrowaway, srv.Source)
	url, err := srv.EnsureDatabase(ctx, "orchestrator")
	require.NoError(t, err)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	pid := postmasterPID(t, srv.ClusterDir())
	require.NoError(t, srv.Close())
	requireGone(t, pid)

	// Started again on the same directory: same data, new port.
	srv, err = Resolve(ctx, ResolveOptions{ProbeAddr: closedAddr(t), ClusterDir: dir})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	conn, err = pgx.Connect(ctx, srv.DatabaseURL("orchestrator"))
	require.NoError(t, err)
	defer conn.Close(ctx)
	var v int
	require.NoError(t, conn.QueryRow(ctx, `SELECT v FROM kept`).Scan(&v))
	require.Equal(t, 42, v)

	// The password is not in the URL the banner or logs would show without redaction, and
	// the cluster refuses a wrong one.
	bad := strings.Replace(srv.URL(), srv.cluster.password, "wrong", 1)
	_, err = pgx.Connect(ctx, bad)
	require.Error(t, err)
}

// TestURLSourceIsUsedAsIs checks that DATABASE_URL wins over everything.
func TestURLSourceIsUsedAsIs(t *testing.T) {
	ctx := context.Background()
	c, err := StartCluster(ctx, filepath.Join(shallowTempDir(t), "pg"), ClusterOptions{Ephemeral: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	srv, err := Resolve(ctx, ResolveOptions{URL: c.URL("postgres"), ProbeAddr: closedAddr(t)})
	require.NoError(t, err)
	require.Equal(t, SourceURL, srv.Source)
	require.Equal(t, c.URL("postgres"), srv.URL())

	_, err = Resolve(ctx, ResolveOptions{URL: "postgres://nobody@" + closedAddr(t) + "/x?connect_timeout=2"})
	require.ErrorContains(t, err, "DATABASE_URL: cannot connect")
}

// TestKilledParentLeavesNoServer: even when the process that started the cluster dies
// without cleaning up, the server follows it (parent-death signal).
func TestKilledParentLeavesNoServer(t *testing.T) {
	if os.Getenv("PGCLUSTER_CHILD_DIR") != "" {
		c, err := StartCluster(context.Background(), os.Getenv("PGCLUSTER_CHILD_DIR"), ClusterOptions{Ephemeral: true})
		if err != nil {
			os.Exit(3)
		}
		// Written then renamed, so the parent never reads a half-written file (seen in CI:
		// the parent read "" between the create and the write).
		ready := os.Getenv("PGCLUSTER_CHILD_DIR") + ".ready"
		if os.WriteFile(ready+".tmp", []byte(c.Dir), 0o600) != nil || os.Rename(ready+".tmp", ready) != nil {
			os.Exit(4)
		}
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	dir := filepath.Join(shallowTempDir(t), "pg")
	cmd := execSelf(t, "TestKilledParentLeavesNoServer", "PGCLUSTER_CHILD_DIR="+dir)
	require.NoError(t, cmd.Start())
	require.Eventually(t, func() bool { _, err := os.Stat(dir + ".ready"); return err == nil }, time.Minute, 50*time.Millisecond)
	clusterDir, err := os.ReadFile(dir + ".ready")
	require.NoError(t, err)
	require.Equal(t, dir, string(clusterDir), "a directory under the shared temp dir is used in place")
	pid := postmasterPID(t, dir)
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	requireGone(t, pid)
}

func TestFindBinary(t *testing.T) {
	p, err := FindBinary("pg_dump", 0)
	require.NoError(t, err)
	require.FileExists(t, p)
	_, err = FindBinary("no-such-pg-tool", 0)
	require.ErrorContains(t, err, "not found")
}

func TestWithDatabase(t *testing.T) {
	require.Equal(t, "postgres://u:p@h:5432/other?sslmode=disable", WithDatabase("postgres://u:p@h:5432/postgres?sslmode=disable", "other"))
	require.Equal(t, "host=h dbname=other", WithDatabase("host=h", "other"))
}

// shallowTempDir is a temporary directory directly under the shared temp dir, which the
// postgres user can reach when tests run as root (t.TempDir nests under a private one).
func shallowTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgcluster-test-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(b), "\n", 2)[0])
	require.NoError(t, err)
	return pid
}

func requireGone(t *testing.T, pid int) {
	t.Helper()
	require.Eventually(t, func() bool {
		return syscall.Kill(pid, 0) == syscall.ESRCH
	}, 30*time.Second, 50*time.Millisecond, "postgres %d still runs", pid)
}
