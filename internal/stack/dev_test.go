//go:build !nodev

package stack

import (
	"bytes"
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
	"github.com/creatorvault/orchestrator/pitr"
)

// runDev starts `orchestrator dev` in the background and returns its info and a stop
// function that waits for it to finish.
func runDev(t *testing.T, opts DevOptions, databaseURL string, tune ...func(*config.Config)) (DevInfo, func() error) {
	t.Helper()
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.DatabaseURL = databaseURL
	cfg.HTTPAddr = "127.0.0.1:0"
	for _, f := range tune {
		f(cfg)
	}
	opts.TemporalPort = 0
	opts.UIPort = freePort(t)
	opts.S3Addr = "127.0.0.1:0"
	if opts.Out == nil {
		opts.Out = io.Discard
	}
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
	vars := demoEnv(t, dataDir)
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

	var banner bytes.Buffer
	opts.Out = &banner
	info, stop := runDev(t, opts, url)
	require.Equal(t, want, info.PGSource)
	checkUp(t, info, dataDir)
	// A server dev does not own: PITR is off, and the banner says why.
	require.Contains(t, info.PITROff, "which dev does not own")
	require.Contains(t, banner.String(), "PITR         off: PostgreSQL is ")
	require.NoError(t, stop())
	opts.Out = nil

	info, stop = runDev(t, opts, url)
	checkUp(t, info, dataDir)
	require.NoError(t, stop())
}

// noServer is a data directory under the shared temporary directory (a throwaway cluster's
// user reaches it) and an address where no PostgreSQL listens.
func noServer(t *testing.T) (dataDir, closed string) {
	t.Helper()
	dataDir, err := os.MkdirTemp("", "devtest-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dataDir) })
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closed = l.Addr().String()
	require.NoError(t, l.Close())
	return dataDir, closed
}

// TestDevWithoutAServer: nothing on the probe address, no DATABASE_URL: dev starts a
// throwaway cluster under its data directory, and stops it on the way out.
func TestDevWithoutAServer(t *testing.T) {
	dataDir, closed := noServer(t)

	var banner bytes.Buffer
	since := time.Now().Add(-time.Second)
	info, stop := runDev(t, DevOptions{DataDir: dataDir, PGProbeAddr: closed, Out: &banner}, "")
	require.Equal(t, pgcluster.SourceThrowaway, info.PGSource)
	require.Equal(t, filepath.Join(dataDir, "pg"), info.ClusterDir)
	checkUp(t, info, dataDir)
	checkArchiving(t, info, dataDir, since)
	require.Contains(t, banner.String(), "PITR         on: pgBackRest archives")
	pass, err := os.ReadFile(filepath.Join(dataDir, "pitr-cipher-pass"))
	require.NoError(t, err)
	require.NotContains(t, banner.String(), strings.TrimSpace(string(pass)), "the key's file is named, the key never shown")
	pidFile, err := os.ReadFile(filepath.Join(info.ClusterDir, "postmaster.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.SplitN(string(pidFile), "\n", 2)[0])
	require.NoError(t, err)

	require.NoError(t, stop())
	require.Eventually(t, func() bool { return syscall.Kill(pid, 0) == syscall.ESRCH }, 30*time.Second, 50*time.Millisecond,
		"no postgres is left behind")

	// A restart keeps the key (the repository it made stays readable) and archives again.
	since = time.Now().Add(-time.Second)
	info, stop = runDev(t, DevOptions{DataDir: dataDir, PGProbeAddr: closed}, "")
	again, err := os.ReadFile(filepath.Join(dataDir, "pitr-cipher-pass"))
	require.NoError(t, err)
	require.Equal(t, pass, again)
	checkArchiving(t, info, dataDir, since)
	require.NoError(t, stop())
}

// checkArchiving: dev's throwaway cluster archives its WAL with pgBackRest (archive_mode and
// archive_command set by dev), the stanza's first full backup lands in the repository, and
// the API's /metrics shows the archiver and that backup.
func checkArchiving(t *testing.T, info DevInfo, dataDir string, since time.Time) {
	t.Helper()
	require.Empty(t, info.PITROff, "PITR is on with dev's own cluster")
	ctx := context.Background()
	app, err := db.Open(ctx, info.DatabaseURL)
	require.NoError(t, err)
	defer app.Close()
	var mode, command string
	var last time.Time
	require.NoError(t, app.QueryRow(ctx, `SELECT current_setting('archive_mode'), current_setting('archive_command'), coalesce(last_archived_time, '-infinity') FROM pg_stat_archiver`).
		Scan(&mode, &command, &last))
	require.Equal(t, "on", mode)
	require.Contains(t, command, "archive-push %p")
	require.True(t, last.After(since), "the stanza check at start archived a segment (last %s, start %s)", last, since)
	addr := strings.TrimPrefix(info.APIURL, "http://")
	v, ok := scrape(t, addr, "orchestrator_pitr_archiving")
	require.True(t, ok, "the pitr worker watches the archiver")
	require.Equal(t, 1.0, v)
	lag, ok := scrape(t, addr, "orchestrator_pitr_archive_lag_seconds")
	require.True(t, ok)
	require.Less(t, lag, 300.0)
	require.Eventually(t, func() bool {
		v, ok := scrape(t, addr, `orchestrator_pitr_backup_last_success_timestamp_seconds{kind="full"}`)
		return ok && v > 0
	}, 3*time.Minute, time.Second, "the first full physical backup is made and observed")

	// demo.env gives the CLI the repository: its settings read the catalog with that backup.
	env := demoEnv(t, dataDir)
	cfg, err := pitr.LoadConfig(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	require.NoError(t, err)
	e, err := pitr.New(cfg)
	require.NoError(t, err)
	require.NoError(t, e.WriteConfig())
	catalog, err := e.Info(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, catalog.Backup)
}

// demoEnv is demo.env's exports, unquoted.
func demoEnv(t *testing.T, dataDir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "demo.env"))
	require.NoError(t, err)
	vars := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && strings.HasPrefix(line, "export ") {
			v, _, _ = strings.Cut(v, "  #")
			if len(v) >= 2 && v[0] == '\'' && v[len(v)-1] == '\'' {
				v = strings.ReplaceAll(v[1:len(v)-1], `'\''`, "'")
			}
			vars[k] = v
		}
	}
	return vars
}

// TestDevPITROffWithoutPgbackrest: on a machine without pgbackrest dev still starts its
// throwaway cluster (not archiving) and says why PITR is off.
func TestDevPITROffWithoutPgbackrest(t *testing.T) {
	dataDir, closed := noServer(t)

	var banner bytes.Buffer
	info, stop := runDev(t, DevOptions{DataDir: dataDir, PGProbeAddr: closed, Out: &banner}, "", func(cfg *config.Config) {
		cfg.PITR.Overrides = map[string]string{"PITR_PGBACKREST": "pgbackrest-not-installed"}
	})
	defer func() { require.NoError(t, stop()) }()
	require.Equal(t, pgcluster.SourceThrowaway, info.PGSource)
	checkUp(t, info, dataDir)
	require.Equal(t, "pgbackrest-not-installed is not installed (Debian: apt-get install pgbackrest)", info.PITROff)
	require.Contains(t, banner.String(), "PITR         off: pgbackrest-not-installed is not installed")
	app, err := db.Open(context.Background(), info.DatabaseURL)
	require.NoError(t, err)
	defer app.Close()
	var mode string
	require.NoError(t, app.QueryRow(context.Background(), `SHOW archive_mode`).Scan(&mode))
	require.Equal(t, "off", mode)
	require.NoFileExists(t, filepath.Join(dataDir, "pitr-cipher-pass"))
}
