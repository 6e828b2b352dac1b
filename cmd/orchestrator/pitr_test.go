package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/pitr"
	"github.com/creatorvault/orchestrator/pitr/pitrtest"
)

// TestRestorePITRCommand drives `orchestrator backup list` and `orchestrator restore --pitr`
// as an operator would, against the real pgBackRest and an archiving cluster: both layers are
// listed with their kind; bad moments and a missing key are one line with nothing touched;
// a restore to a moment prints the moment, the last transaction and the serving check.
func TestRestorePITRCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	f := pitrtest.Start(t, ctx)
	conn, err := pgx.Connect(ctx, f.AdminURL)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, `INSERT INTO pitr_marks (n) VALUES (1)`)
	require.NoError(t, err)
	time.Sleep(1500 * time.Millisecond)
	moment := time.Now()
	time.Sleep(1500 * time.Millisecond)
	_, err = conn.Exec(ctx, `INSERT INTO pitr_marks (n) VALUES (2)`)
	require.NoError(t, err)
	require.NoError(t, f.Engine.Backup(ctx, pitr.Diff))
	require.NoError(t, f.Engine.Check(ctx))

	env := append(f.EnvList(), "DATABASE_URL="+f.Roles.App, "TREASURY_DATABASE_URL="+f.Roles.Treasury)
	code, out, errOut := run(t, env, "backup", "list")
	require.Equal(t, 0, code, errOut)
	var kinds []string
	for _, line := range strings.Split(out, "\n") {
		if fs := strings.Fields(line); len(fs) > 2 && fs[1] == "physical" {
			kinds = append(kinds, fs[2])
		}
	}
	require.Equal(t, []string{"diff", "full"}, kinds, out)
	require.Contains(t, out, "LAYER")

	target := filepath.Join(f.Dir, "restored")
	for name, c := range map[string]struct {
		env  []string
		args []string
		want string
	}{
		"before the oldest backup": {env, []string{"--at", "2001-01-01T00:00:00Z"}, "is before the oldest physical backup"},
		"after the newest WAL":     {env, []string{"--at", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "is after the newest archived WAL"},
		"not RFC 3339":             {env, []string{"--at", "yesterday"}, "not an RFC 3339 moment"},
		"no encryption key":        {without(env, "PITR_CIPHER_PASS"), []string{"--at", moment.UTC().Format(time.RFC3339Nano)}, "PITR_CIPHER_PASS (or PITR_CIPHER_PASS_FILE) is not set"},
	} {
		code, _, errOut := run(t, c.env, append([]string{"restore", "--pitr", "--data-dir", target}, c.args...)...)
		require.NotEqual(t, 0, code, name)
		require.Contains(t, errOut, c.want, name)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "%s: one line: %s", name, errOut)
		require.NotContains(t, errOut, f.Env["PITR_CIPHER_PASS"], name)
		require.NoDirExists(t, target, name)
	}

	code, out, errOut = run(t, env, "restore", "--pitr", "--at", moment.UTC().Format(time.RFC3339Nano), "--data-dir", target)
	require.Equal(t, 0, code, "%s\n%s", out, errOut)
	require.Contains(t, out, "from full backup", "the diff ended after the moment")
	require.Contains(t, out, "recovered to "+moment.UTC().Format(time.RFC3339Nano))
	require.Contains(t, out, "last transaction 20")
	require.Contains(t, out, "treasury: write (rolled back)")
	require.NotContains(t, out, "FAILED")
	require.FileExists(t, filepath.Join(target, "PG_VERSION"))
	_, err = os.Stat(filepath.Join(target, "postmaster.pid"))
	require.ErrorIs(t, err, os.ErrNotExist, "the restored server was shut down")
}

func without(env []string, name string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
