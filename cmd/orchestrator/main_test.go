package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "orchestrator-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "orchestrator")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		panic("build orchestrator: " + err.Error() + "\n" + string(out))
	}
	defer os.RemoveAll(dir)
	testharness.Main(m)
}

// run runs the binary with only the given environment (plus PATH and HOME).
func run(t *testing.T, env []string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	cmd.Dir = t.TempDir()
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), o.String(), e.String()
	}
	require.NoError(t, err)
	return 0, o.String(), e.String()
}

// TestBadConfigurationIsOneLine: each mistake exits non-zero with one line naming the
// variable and the problem.
func TestBadConfigurationIsOneLine(t *testing.T) {
	db := testharness.Postgres(t).URL
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unparsable DATABASE_URL", []string{"DATABASE_URL=postgres://u:hunter2@host:badport/db"}, []string{"migrate", "status"}, "DATABASE_URL: "},
		{"no DATABASE_URL", nil, []string{"worker"}, "DATABASE_URL: not set"},
		{"unreachable Temporal", []string{"DATABASE_URL=" + db, "TEMPORAL_ADDRESS=127.0.0.1:1"}, []string{"worker"}, "TEMPORAL_ADDRESS: cannot reach Temporal at 127.0.0.1:1"},
		{"malformed TEMPORAL_ADDRESS", []string{"TEMPORAL_ADDRESS=nowhere"}, []string{"worker"}, "TEMPORAL_ADDRESS: want host:port"},
		{"api without JWT secret", []string{"DATABASE_URL=" + db}, []string{"api"}, "JWT_SECRET: not set"},
		{"short JWT secret", []string{"JWT_SECRET=short"}, []string{"api"}, "JWT_SECRET: must be at least 32 bytes"},
		{"bad token user", nil, []string{"token", "--user", "bob"}, "--user must be a user id"},
		{"token beyond its lifetime limit", nil, []string{"token", "--user", "0b7c2a44-1f8e-4c1e-9a57-1c6e2f3d4b5a", "--ttl", "2000h"}, "--ttl must be positive and at most OPERATOR_TOKEN_MAX_TTL (720h0m0s)"},
		{"unknown command", nil, []string{"frobnicate"}, "unknown command"},
		{"unknown drill kind", []string{"TEMPORAL_ADDRESS=127.0.0.1:1"}, []string{"drill", "run", "--kind", "physical"}, "--kind=physical: want logical, pitr or both"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, stderr := run(t, c.env, c.args...)
			require.NotZero(t, code)
			require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
			require.True(t, strings.HasPrefix(stderr, "orchestrator: "), stderr)
			require.Contains(t, stderr, c.want)
			require.NotContains(t, stderr, "hunter2")
		})
	}
}

func TestMigrateCommands(t *testing.T) {
	env := []string{"MIGRATE_DATABASE_URL=" + testharness.FreshPG(t).OwnerURL}
	code, out, stderr := run(t, env, "migrate", "status")
	require.Zero(t, code, stderr)
	require.Contains(t, out, "applied")
	require.NotContains(t, out, "pending")

	code, out, stderr = run(t, env, "migrate", "down")
	require.Zero(t, code, stderr)
	require.Contains(t, out, "rolled back")
	code, out, _ = run(t, env, "migrate", "status")
	require.Zero(t, code)
	require.Contains(t, out, "pending")

	code, out, stderr = run(t, env, "migrate", "up")
	require.Zero(t, code, stderr)
	require.Contains(t, out, "applied 1 migration(s)")
}

func TestTokenAndDemoSeed(t *testing.T) {
	_, url := testharness.FreshDB(t)
	secret := "JWT_SECRET=" + strings.Repeat("s", 40)
	code, out, stderr := run(t, []string{secret}, "token", "--user", "0b7c2a44-1f8e-4c1e-9a57-1c6e2f3d4b5a", "--role", "admin")
	require.Zero(t, code, stderr)
	require.Equal(t, 2, strings.Count(out, "."), "a JWT: %s", out)

	envFile := filepath.Join(t.TempDir(), "demo.env")
	for range 2 {
		code, out, stderr = run(t, []string{"DATABASE_URL=" + url, secret}, "demo", "seed", "--anchor", "2026-11-25", "--env-file", envFile)
		require.Zero(t, code, stderr)
		require.Contains(t, out, "seeded the demo dataset ending 2026-11-25")
	}
	b, err := os.ReadFile(envFile)
	require.NoError(t, err)
	require.Contains(t, string(b), "export ADMIN_TOKEN=")
}
