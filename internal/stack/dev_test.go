package stack

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestMain(m *testing.M) { testharness.Main(m) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runDev starts `orchestrator dev` in the background and returns its info and a stop
// function that waits for it to finish.
func runDev(t *testing.T, opts DevOptions, databaseURL string) (DevInfo, func() error) {
	t.Helper()
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.DatabaseURL = databaseURL
	cfg.HTTPAddr = "127.0.0.1:0"
	opts.TemporalPort = 0
	opts.UIPort = freePort(t)
	opts.S3Addr = "127.0.0.1:0"
	opts.Out = io.Discard
	ready := make(chan DevInfo, 1)
	opts.Ready = func(i DevInfo) { ready <- i }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunDev(ctx, cfg, testharness.Logger(t), opts) }()
	select {
	case info := <-ready:
		return info, func() error { cancel(); return <-done }
	case err := <-done:
		cancel()
		t.Fatalf("dev did not start: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("dev did not start within 2 minutes")
	}
	return DevInfo{}, nil
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func checkUp(t *testing.T, info DevInfo, dataDir string) {
	t.Helper()
	code, body := get(t, info.APIURL+"/ready")
	require.Equal(t, http.StatusOK, code, body)
	code, body = get(t, info.UIURL)
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, strings.ToLower(body), "<html")
	env, err := os.ReadFile(filepath.Join(dataDir, "demo.env"))
	require.NoError(t, err)
	require.Contains(t, string(env), "export GOLD_TOKEN=")
	require.FileExists(t, filepath.Join(dataDir, "temporal.db"))
	// Production-shaped: the API and workers run as the runtime role.
	require.Contains(t, info.DatabaseURL, "://"+db.AppRole)
	require.Contains(t, string(env), "export TREASURY_DATABASE_URL=")
	// The tour signs in as Gabe with the demo password (README "Five-minute tour").
	vars := map[string]string{}
	for _, line := range strings.Split(string(env), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && strings.HasPrefix(line, "export ") {
			vars[k], _, _ = strings.Cut(v, "  #")
		}
	}
	require.Equal(t, "gold@demo.example", vars["GOLD_EMAIL"])
	require.NotEmpty(t, vars["DEMO_PASSWORD"])
	login := fmt.Sprintf(`{"email":%q,"password":%q}`, vars["GOLD_EMAIL"], vars["DEMO_PASSWORD"])
	resp, err := http.Post(info.APIURL+"/api/v1/auth/login", "application/json", strings.NewReader(login))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.Contains(t, string(b), `"refresh_token"`)
}

// TestDevOnTheLocalServer: with a server on the probe address (or DATABASE_URL, when the
// tests were given one), dev uses it, comes up, and restarts on the same state.
func TestDevOnTheLocalServer(t *testing.T) {
	pg := testharness.Postgres(t)
	dataDir := t.TempDir()
	name := "test_dev_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })
	opts := DevOptions{DataDir: dataDir, Database: name}
	url, want := "", pgcluster.SourceLocal
	if pg.Server.Source != pgcluster.SourceLocal {
		url, want = pg.AdminURL, pgcluster.SourceURL
	}

	info, stop := runDev(t, opts, url)
	require.Equal(t, want, info.PGSource)
	checkUp(t, info, dataDir)
	require.NoError(t, stop())

	info, stop = runDev(t, opts, url)
	checkUp(t, info, dataDir)
	require.NoError(t, stop())
}

// TestDevWithoutAServer: nothing on the probe address, no DATABASE_URL: dev starts a
// throwaway cluster under its data directory, and stops it on the way out.
func TestDevWithoutAServer(t *testing.T) {
	dataDir, err := os.MkdirTemp("", "devtest-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dataDir) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed := l.Addr().String()
	require.NoError(t, l.Close())

	info, stop := runDev(t, DevOptions{DataDir: dataDir, PGProbeAddr: closed}, "")
	require.Equal(t, pgcluster.SourceThrowaway, info.PGSource)
	require.Equal(t, filepath.Join(dataDir, "pg"), info.ClusterDir)
	checkUp(t, info, dataDir)
	pidFile, err := os.ReadFile(filepath.Join(info.ClusterDir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	require.NoError(t, err)

	require.NoError(t, stop())
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH }, 30*time.Second, 50*time.Millisecond,
		"no postgres is left behind")
}
