package workers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workflows"
)

// addRandomRows adds about 25 MB of random bytes: a backup of several 8 MiB parts (the default part size).
func addRandomRows(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `
		CREATE TABLE fault_blob (k int PRIMARY KEY, b bytea);
		INSERT INTO fault_blob SELECT g, decode(md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text)
			|| md5(random()::text) || md5(random()::text) || md5(random()::text) || md5(random()::text), 'hex')
		FROM generate_series(1, 200000) g;`)
	require.NoError(t, err)
}

// metricValue is the value of a metric of the process's default registry with the given
// labels, or 0 when it has none.
func metricValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if v, ok := labels[l.GetName()]; ok && v != l.GetValue() {
					continue next
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// checkOneCompleteBackup checks that the store holds exactly one backup, complete: one
// manifest, an object whose SHA-256 is the manifest's, and no unfinished multipart upload.
func checkOneCompleteBackup(t *testing.T, st backup.Store, id string) *backup.Manifest {
	t.Helper()
	ctx := context.Background()
	list, err := st.S3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(st.Bucket)})
	require.NoError(t, err)
	var manifests []string
	for _, o := range list.Contents {
		if strings.HasSuffix(aws.ToString(o.Key), ".manifest.json") {
			manifests = append(manifests, aws.ToString(o.Key))
		}
	}
	require.Equal(t, []string{st.ManifestKey(id)}, manifests, "exactly one complete backup")
	m, err := backup.ReadManifest(ctx, st, id)
	require.NoError(t, err)
	obj, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(m.Object)})
	require.NoError(t, err)
	defer obj.Body.Close()
	h := sha256.New()
	n, err := io.Copy(h, obj.Body)
	require.NoError(t, err)
	require.Equal(t, m.StoredBytes, n)
	require.Equal(t, m.SHA256, hex.EncodeToString(h.Sum(nil)), "the stored object is the one the manifest describes")
	ups, err := backup.Unfinished(ctx, st)
	require.NoError(t, err)
	require.Empty(t, ups, "no unfinished multipart upload is left (listed with the S3 API)")
	return m
}

// The object store (a separate process) is SIGKILLed while a backup's part is on its way:
// the activity fails cleanly (the catalog records the failed attempt and why, the failure is
// counted on /metrics), and once the store is back Temporal's retry completes the backup:
// one complete backup, nothing unfinished.
func TestBackupObjectStoreKilledMidUpload(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c := testharness.Temporal(t)
	pg := testharness.FreshPG(t)
	pool := pg.Pool
	owner, err := pgxpool.New(ctx, pg.OwnerURL)
	require.NoError(t, err)
	defer owner.Close()
	addRandomRows(t, owner)
	store := testharness.StartS3Process(t)
	proxy := testharness.NewS3Proxy(t, store.URL())
	s3cfg := config.S3{Endpoint: proxy.URL(), Bucket: "faults", Region: config.DefaultAWSRegion, PathStyle: true}
	s3c, err := objstore.NewClient(ctx, s3cfg, objstore.Options{StaticCredentials: objstore.DevCredentials()})
	require.NoError(t, err)
	require.NoError(t, objstore.EnsureBucket(ctx, s3c, s3cfg.Bucket))
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)

	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.DatabaseURL, cfg.Backup.DatabaseURL, cfg.S3 = pg.URL, pg.BackupURL, s3cfg
	cfg.Backup.Recipients = []string{id.Recipient().String()}
	require.NoError(t, EnsureSearchAttributes(ctx, c, "default"))
	deps := Deps{Client: c, Pool: pool, S3: s3c, Config: cfg, Logger: testharness.Logger(t)}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(wctx, deps, []string{workflows.BackupTaskQueue}) }()
	defer func() { stop(); <-done }()

	failuresBefore := metricValue(t, "orchestrator_backup_failures_total", map[string]string{"kind": "manual"})
	seen := proxy.HoldParts()
	const backupID = "bk-store-killed"
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "backup-" + backupID, TaskQueue: workflows.BackupTaskQueue},
		workflows.BackupWorkflow, workflows.BackupInput{BackupID: backupID, Kind: "manual"})
	require.NoError(t, err)
	select {
	case <-seen:
	case <-time.After(90 * time.Second):
		t.Fatal("no part upload reached the object store")
	}
	store.Kill()
	proxy.Release()

	// The attempt fails by itself, with the reason in the catalog.
	var first db.Backup
	require.Eventually(t, func() bool {
		first, err = db.GetBackup(ctx, pool, backupID)
		return err == nil && len(first.Attempts) == 1 && first.Attempts[0].Outcome == "failed"
	}, 90*time.Second, 200*time.Millisecond, "the attempt whose object store died fails and is recorded")
	require.Equal(t, "failed", first.Status)
	require.Contains(t, first.Attempts[0].Error, "upload")
	require.Equal(t, failuresBefore+1, metricValue(t, "orchestrator_backup_failures_total", map[string]string{"kind": "manual"}))

	store.Start()
	var res workflows.BackupResult
	require.NoError(t, run.Get(ctx, &res), "the retry succeeds once the store is back")
	require.Equal(t, backupID, res.BackupID)

	row, err := db.GetBackup(ctx, pool, backupID)
	require.NoError(t, err)
	require.Equal(t, "complete", row.Status)
	require.Len(t, row.Attempts, 2)
	require.Equal(t, []string{"failed", "complete"}, []string{row.Attempts[0].Outcome, row.Attempts[1].Outcome})
	m := checkOneCompleteBackup(t, backup.Store{S3: s3c, Bucket: s3cfg.Bucket}, backupID)
	require.Equal(t, row.SHA256, m.SHA256)
	require.InDelta(t, float64(m.FinishedAt.UnixNano())/1e9,
		metricValue(t, "orchestrator_backup_last_success_timestamp_seconds", nil), 1e-3)
}
