package pitr_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/pitr"
	"github.com/creatorvault/orchestrator/pitr/pitrtest"
)

func testEnv(endpoint, caFile, dir string) map[string]string {
	return map[string]string{
		"PITR_CIPHER_PASS": "correct horse battery staple, test only", "PITR_PG_DATA": filepath.Join(dir, "pg"),
		"PITR_S3_CA_FILE": caFile, "S3_ENDPOINT": endpoint, "S3_BUCKET": pitrtest.Bucket,
	}
}

var lookup = pitrtest.Lookup

// TestRestoreToAMoment is the test: a cluster archiving with the real pgBackRest into
// the TLS object store; a full and a differential backup; rows written over time; a restore to
// a moment in the middle into a new data directory, started and serving-checked, holds exactly
// the rows committed before the moment. Bad moments, another stanza and a missing key fail in
// one line before anything is written.
func TestRestoreToAMoment(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	f := pitrtest.Start(t, ctx)
	e, env, dir := f.Engine, f.Env, f.Dir
	require.NoError(t, e.Backup(ctx, pitr.Diff))

	conn, err := pgx.Connect(ctx, f.AdminURL)
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
	require.Equal(t, pitr.Full, bs[0].Type)
	require.Equal(t, pitr.Diff, bs[1].Type)
	require.Equal(t, bs[0].Label, bs[1].Prior)
	require.Positive(t, bs[0].Info.Repository.Size)
	require.NoError(t, e.Expire(ctx), "retention keeps 2 full, 7 diff: nothing to expire")
	// The backups are bundled (repo1-bundle): the small files are in bundle objects, not one
	// object each; the restore below proves a bundled backup restores to a moment.
	for _, b := range bs {
		require.Contains(t, repoLs(t, f, "backup/"+e.Config().Stanza+"/"+b.Label), "bundle", "backup %s is bundled", b.Label)
	}

	// Bad input: one clear line, nothing touched.
	target := filepath.Join(dir, "restored")
	oldest := bs[0].Started().Add(-time.Hour)
	_, err = e.Restore(ctx, pitr.RestoreOptions{At: oldest, DataDir: target, Password: f.Password})
	require.ErrorContains(t, err, "is before the oldest physical backup")
	requireOneLine(t, err, env)
	require.NoDirExists(t, target)
	_, err = e.Restore(ctx, pitr.RestoreOptions{At: time.Now().Add(time.Hour), DataDir: target, Password: f.Password})
	require.ErrorContains(t, err, "is after the newest archived WAL")
	requireOneLine(t, err, env)
	require.NoDirExists(t, target)
	other := e.Config()
	other.Stanza = "another"
	eOther, err := pitr.New(other)
	require.NoError(t, err)
	_, err = eOther.Restore(ctx, pitr.RestoreOptions{At: moment, DataDir: target, Password: f.Password})
	require.ErrorContains(t, err, "stanza")
	requireOneLine(t, err, env)
	require.NoDirExists(t, target)
	noKey := map[string]string{}
	for k, v := range env {
		noKey[k] = v
	}
	delete(noKey, "PITR_CIPHER_PASS")
	_, err = pitr.LoadConfig(lookup(noKey))
	require.ErrorIs(t, err, pitr.ErrNoCipherPass)
	requireOneLine(t, err, env)

	// The restore to the moment, started and checked as the application's roles.
	res, err := e.Restore(ctx, pitr.RestoreOptions{At: moment, DataDir: target, Password: f.Password,
		RuntimeURL: f.Roles.App, TreasuryURL: f.Roles.Treasury, KeepRunning: true})
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
	_, err = e.Restore(ctx, pitr.RestoreOptions{At: moment, DataDir: target, Password: f.Password})
	require.ErrorContains(t, err, "is not empty")
}

// repoLs lists a directory of the repository with pgBackRest's repo-ls, as the clusters' user.
func repoLs(t *testing.T, f *pitrtest.Fixture, dir string) map[string]any {
	t.Helper()
	c := f.Engine.Config()
	cmd := exec.Command(c.Bin, "--config="+f.Engine.ConfigPath(), "--stanza="+c.Stanza, "repo-ls", "--output=json", dir)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + c.Dir}
	require.NoError(t, pgcluster.RunAsOwner(cmd))
	out, err := cmd.Output()
	require.NoError(t, err, "pgbackrest repo-ls %s", dir)
	var entries map[string]any
	require.NoError(t, json.Unmarshal(out, &entries))
	return entries
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
	c, err := pitr.LoadConfig(lookup(env))
	require.NoError(t, err)
	require.Equal(t, "s3.example.net", c.S3Host)
	require.Equal(t, 9443, c.S3Port)
	require.Equal(t, "/pgbackrest", c.RepoPath)
	require.True(t, c.S3PathStyle)

	env["S3_ENDPOINT"] = "http://minio:9000"
	_, err = pitr.LoadConfig(lookup(env))
	require.ErrorContains(t, err, "only over TLS")
	env["PITR_S3_ENDPOINT"] = "https://localhost:9443" // pgBackRest's own endpoint wins
	c, err = pitr.LoadConfig(lookup(env))
	require.NoError(t, err)
	require.Equal(t, "localhost", c.S3Host)
	require.Equal(t, 9443, c.S3Port)
	delete(env, "PITR_S3_ENDPOINT")

	env["S3_ENDPOINT"] = "https://minio:9000"
	env["PITR_CIPHER_PASS"] = "x\nrepo1-cipher-type=none"
	_, err = pitr.LoadConfig(lookup(env))
	require.ErrorContains(t, err, "line break")
	require.NotContains(t, err.Error(), "cipher-type=none")

	delete(env, "PITR_CIPHER_PASS")
	_, err = pitr.LoadConfig(lookup(env))
	require.ErrorIs(t, err, pitr.ErrNoCipherPass)
}
