package stack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workflows"
)

// workerChildEnv makes this test binary run `orchestrator worker` (RunWorker with the
// configuration from the environment) instead of its tests: a worker in a process of its
// own, which a test can SIGKILL.
const workerChildEnv = "STACK_TEST_WORKER_PROCESS"

func init() {
	if os.Getenv(workerChildEnv) != "1" {
		return
	}
	cfg, err := config.Load()
	if err == nil {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		err = RunWorker(ctx, cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// startWorkerProcess starts a worker process with env added to this process's environment.
func startWorkerProcess(t *testing.T, env []string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(append(os.Environ(), workerChildEnv+"=1"), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	})
	return cmd
}

// scrape reads the value of a metric line (name{labels} value) from a worker's /metrics.
func scrape(t *testing.T, addr, series string) (float64, bool) {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			require.NoError(t, err)
			return v, true
		}
	}
	return 0, false
}

// A worker process is SIGKILLed while its backup's part is on its way to the object store;
// a new worker process takes over when Temporal notices (heartbeat timeout) and retries:
// exactly one complete backup, no unfinished multipart upload left (listed with the S3
// API), the catalog shows the killed attempt as interrupted, and the new worker's /metrics
// reports the backup.
func TestBackupWorkerProcessKilledMidUpload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c := testharness.Temporal(t)
	pg := testharness.FreshPG(t)
	owner, err := pgxpool.New(ctx, pg.OwnerURL)
	require.NoError(t, err)
	defer owner.Close()
	// About 25 MB of random bytes: a backup of several 8 MiB parts (the default part size).
	_, err = owner.Exec(ctx, `
		CREATE TABLE kill_blob (k int PRIMARY KEY, b bytea);
		INSERT INTO kill_blob SELECT g, decode(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
			|| md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex')
		FROM generate_series(1, 200000) g;`)
	require.NoError(t, err)

	s := testharness.NewS3(t)
	proxy := testharness.NewS3Proxy(t, s.Config.Endpoint)
	st := backup.Store{S3: s.Client, Bucket: s.Bucket}
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	creds := objstore.DevCredentials()
	env := []string{
		"DATABASE_URL=" + pg.URL,
		"BACKUP_DATABASE_URL=" + pg.BackupURL,
		"TEMPORAL_ADDRESS=" + testharness.TemporalAddr(t),
		"TASK_QUEUES=" + workflows.BackupTaskQueue,
		"S3_ENDPOINT=" + proxy.URL(),
		"S3_BUCKET=" + s.Bucket,
		"S3_FORCE_PATH_STYLE=true",
		"AWS_REGION=" + config.DefaultAWSRegion,
		"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey,
		"BACKUP_RECIPIENTS=" + id.Recipient().String(),
		"LOG_LEVEL=warn",
	}

	seen := proxy.HoldParts()
	first := startWorkerProcess(t, env)
	const backupID = "bk-worker-killed"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "backup-" + backupID, TaskQueue: workflows.BackupTaskQueue},
		workflows.BackupWorkflow, workflows.BackupInput{BackupID: backupID, Kind: "manual"})
	require.NoError(t, err)
	select {
	case <-seen:
	case <-time.After(90 * time.Second):
		t.Fatal("no part upload reached the object store")
	}
	require.NoError(t, first.Process.Kill())
	_ = first.Wait()
	ups, err := backup.Unfinished(ctx, st)
	require.NoError(t, err)
	require.Len(t, ups, 1, "the killed worker left its multipart upload unfinished")
	proxy.Release()

	startWorkerProcess(t, append(env, "METRICS_ADDR="+metricsAddr))
	var res workflows.BackupResult
	require.NoError(t, run.Get(ctx, &res), "the new worker completes the backup")
	require.Equal(t, backupID, res.BackupID)

	// One complete backup, nothing unfinished.
	list, err := s.Client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(s.Bucket)})
	require.NoError(t, err)
	var manifests []string
	for _, o := range list.Contents {
		if strings.HasSuffix(aws.ToString(o.Key), ".manifest.json") {
			manifests = append(manifests, aws.ToString(o.Key))
		}
	}
	require.Equal(t, []string{st.ManifestKey(backupID)}, manifests)
	ups, err = backup.Unfinished(ctx, st)
	require.NoError(t, err)
	require.Empty(t, ups, "the retry aborted the killed attempt's multipart upload")
	m, err := backup.ReadManifest(ctx, st, backupID)
	require.NoError(t, err)
	obj, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(m.Object)})
	require.NoError(t, err)
	n, err := io.Copy(io.Discard, obj.Body)
	obj.Body.Close()
	require.NoError(t, err)
	require.Equal(t, m.StoredBytes, n)

	// The catalog shows the killed attempt.
	row, err := db.GetBackup(ctx, pg.Pool, backupID)
	require.NoError(t, err)
	require.Equal(t, "complete", row.Status)
	require.Len(t, row.Attempts, 2)
	require.Equal(t, "interrupted", row.Attempts[0].Outcome)
	require.Equal(t, db.InterruptedAttempt, row.Attempts[0].Error)
	require.Equal(t, "complete", row.Attempts[1].Outcome)

	// The new worker's /metrics reports it.
	v, ok := scrape(t, metricsAddr, "orchestrator_backup_last_success_timestamp_seconds")
	require.True(t, ok, "the worker serves the backup metrics")
	require.InDelta(t, float64(m.FinishedAt.UnixNano())/1e9, v, 1e-3)
	v, ok = scrape(t, metricsAddr, "orchestrator_backup_last_success_size_bytes")
	require.True(t, ok)
	require.Equal(t, float64(m.StoredBytes), v)
	v, ok = scrape(t, metricsAddr, `orchestrator_backup_last_success_info{kind="manual"}`)
	require.True(t, ok)
	require.Equal(t, 1.0, v)
}
