package workers

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workflows"
)

// End to end on the embedded Temporal server: a database with several tables and types →
// backup → the stored object holds none of the plaintext → a drill restores, verifies and
// reports the RTO; the scratch database is gone afterwards.
func TestBackupAndDrillEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testharness.Temporal(t)
	pg := testharness.FreshPG(t)
	pool := pg.Pool
	const marker = "E2E-PLAINTEXT-CANARY"
	owner, err := db.Open(ctx, pg.OwnerURL) // tables are the owner's, as migrations make them
	require.NoError(t, err)
	defer owner.Close()
	_, err = owner.Exec(ctx, `
		CREATE TABLE e2e_items (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), label text, n numeric, at timestamptz DEFAULT now(), doc jsonb);
		INSERT INTO e2e_items (label, n, doc) SELECT '`+marker+`-' || g, g * 3.5, jsonb_build_object('g', g) FROM generate_series(1, 300) g;
		CREATE TABLE e2e_flags (k int PRIMARY KEY, on_off boolean, raw bytea);
		INSERT INTO e2e_flags SELECT g, g % 3 = 0, decode(md5(g::text), 'hex') FROM generate_series(1, 40) g;`)
	require.NoError(t, err)
	s := testharness.NewS3(t)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	require.NoError(t, os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600))

	// Every domain's defaults (ApplySchedules applies all schedules), then this test's parts.
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.DatabaseURL, cfg.Treasury.DatabaseURL, cfg.Backup.DatabaseURL, cfg.S3 = pg.URL, pg.TreasuryURL, pg.BackupURL, s.Config
	cfg.Backup.Recipients, cfg.Backup.IdentityFile = []string{id.Recipient().String()}, idFile
	cfg.Backup.DrillDatabaseURL = pg.AdminURL // drills create scratch databases: an administrator
	cfg.Backup.DrillRestoreJobs = 2
	// A stand-in for Temporal's PostgreSQL database (TEMPORAL_BACKUP_DATABASE_URLS).
	temporalDB := "test_wk_temporal_" + time.Now().Format("150405.000000")[7:]
	temporalURL, err := pg.Server.CreateDatabase(ctx, temporalDB, "")
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), temporalDB) })
	cfg.Backup.TemporalDatabaseURLs = []string{temporalURL}
	cfg.Backup.DrillAllowProductionServer = true // the tests have one server
	require.NoError(t, EnsureSearchAttributes(ctx, c, "default"))
	require.NoError(t, ApplySchedules(ctx, c, cfg))
	require.NoError(t, ApplySchedules(ctx, c, cfg), "applying schedules again changes nothing")
	deps := Deps{Client: c, Pool: pool, S3: s.Client, Config: cfg, Logger: testharness.Logger(t)}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(wctx, deps, []string{workflows.BackupTaskQueue, workflows.DrillTaskQueue}) }()
	defer func() { stop(); <-done }()

	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-backup-" + t.Name(), TaskQueue: workflows.BackupTaskQueue},
		workflows.BackupWorkflow, workflows.BackupInput{Kind: "manual"})
	require.NoError(t, err)
	var bres workflows.BackupResult
	require.NoError(t, run.Get(ctx, &bres))
	require.NotEmpty(t, bres.BackupID)
	require.Positive(t, bres.StoredBytes)

	row, err := db.GetBackup(ctx, pool, bres.BackupID)
	require.NoError(t, err)
	require.Equal(t, "complete", row.Status)
	m, err := backup.ReadManifest(ctx, backup.Store{S3: s.Client, Bucket: s.Bucket}, bres.BackupID)
	require.NoError(t, err)
	require.Len(t, m.Parts, 1, "Temporal's database is a part of the nightly backup")
	require.Equal(t, temporalDB, m.Parts[0].Name)
	require.Equal(t, bres.SHA256, row.SHA256)
	require.GreaterOrEqual(t, metricValue(t, "orchestrator_backup_last_success_timestamp_seconds", nil), float64(row.FinishedAt.Unix()))
	require.Positive(t, metricValue(t, "orchestrator_backup_last_success_size_bytes", nil))
	obj, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(row.ObjectKey)})
	require.NoError(t, err)
	body, err := io.ReadAll(obj.Body)
	require.NoError(t, err)
	require.False(t, bytes.Contains(body, []byte(marker)), "the stored object must contain none of the plaintext")

	drun, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-drill-" + t.Name(), TaskQueue: workflows.DrillTaskQueue},
		workflows.DrillWorkflow, workflows.DrillInput{RTOTarget: 30 * time.Minute})
	require.NoError(t, err)
	var rep workflows.DrillResult
	require.NoError(t, drun.Get(ctx, &rep))
	require.Equal(t, workflows.DrillPass, rep.Outcome, rep.Error)
	require.Equal(t, workflows.DrillLogical, rep.Kind, "without PITR a drill is logical")
	require.Nil(t, rep.PITR)
	require.Equal(t, bres.BackupID, rep.BackupID)
	require.True(t, rep.Verified)
	require.Less(t, rep.RTOSeconds, 120)
	require.NotNil(t, rep.Serving, "the drill ends with a serving check")
	require.True(t, rep.Serving.OK, rep.Serving.Failed())
	require.Equal(t, 2, rep.RestoreJobs, "DRILL_RESTORE_JOBS")

	drills, err := db.ListDrills(ctx, pool, 10)
	require.NoError(t, err)
	require.Len(t, drills, 1)
	require.Equal(t, "pass", drills[0].Outcome)
	// The worker's /metrics (the process's default registry, which METRICS_ADDR serves).
	require.EqualValues(t, rep.RTOSeconds, metricValue(t, "orchestrator_drill_rto_seconds", nil))
	require.EqualValues(t, 30*60, metricValue(t, "orchestrator_drill_rto_target_seconds", nil))
	require.Zero(t, metricValue(t, "orchestrator_drill_last_failed", nil))
	breachesBefore := metricValue(t, "orchestrator_drill_rto_breaches_total", nil)
	testharness.WriteHistory(t, c, run.GetID(), "backup_history.json")
	row, err = db.GetBackup(ctx, pool, bres.BackupID)
	require.NoError(t, err)
	require.NotNil(t, row.VerifiedAt)
	// RTO breach: with a tiny target the timer fires first, the drill still verifies and
	// the report says so.
	drun, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-drill-breach-" + t.Name(), TaskQueue: workflows.DrillTaskQueue},
		workflows.DrillWorkflow, workflows.DrillInput{BackupID: bres.BackupID, RTOTarget: time.Millisecond})
	require.NoError(t, err)
	require.NoError(t, drun.Get(ctx, &rep))
	require.Equal(t, workflows.DrillRTOExceeded, rep.Outcome, rep.Error)
	require.True(t, rep.Breached)
	require.True(t, rep.Verified)
	require.Equal(t, breachesBefore+1, metricValue(t, "orchestrator_drill_rto_breaches_total", nil))
	require.GreaterOrEqual(t, metricValue(t, "orchestrator_backup_last_verified_timestamp_seconds", nil), float64(row.StartedAt.Unix()))
	require.NotEmpty(t, rep.Recommendations)
	testharness.WriteHistory(t, c, drun.GetID(), "drill_history.json")
	md, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(activities.DrillReportKey(rep.DrillID, "md"))})
	require.NoError(t, err)
	mdBody, err := io.ReadAll(md.Body)
	require.NoError(t, err)
	require.Contains(t, string(mdBody), "Outcome: **rto_exceeded**")
	require.Contains(t, string(mdBody), "## Recommendations")
	require.Contains(t, string(mdBody), "Serving check as the runtime role and the treasury login: passed")
	chart, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(activities.DrillChartKey)})
	require.NoError(t, err)
	chartBody, err := io.ReadAll(chart.Body)
	require.NoError(t, err)
	require.True(t, bytes.HasPrefix(chartBody, []byte("\x89PNG")), "the RTO chart is a PNG")

	var n int
	require.NoError(t, testharness.Pool(t).QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname LIKE ANY($1)`,
		[]string{activities.ScratchName(drills[0].ID, "") + "%", activities.ScratchName(rep.DrillID, "") + "%"}).Scan(&n))
	require.Zero(t, n, "the scratch database is dropped")
}
