package workers

import (
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
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/pitr/pitrtest"
	"github.com/creatorvault/orchestrator/workflows"
)

// TestDrillBothLayersEndToEnd: with PITR configured the quarterly drill is of both kinds. On
// the embedded Temporal server, with the backup, drill and pitr workers, the real pg_dump and
// pgBackRest, an archiving cluster and the TLS object store: a logical backup, then a drill
// that restores it, writes two markers into the production database two seconds apart, waits
// for the second's WAL to be archived (the RPO, no WAL switch forced), restores the physical
// backup and WAL to the moment just after the first on a scratch server, finds the first
// marker and not the second, serving-checks it as the application's roles and removes it.
func TestDrillBothLayersEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	f := pitrtest.Start(t, ctx)
	f.SetEnv(t)
	c := testharness.Temporal(t)
	s := testharness.NewS3(t)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	require.NoError(t, os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600))
	cfg, err := config.LoadFrom(pitrtest.Lookup(map[string]string{"PITR_CIPHER_PASS": f.Env["PITR_CIPHER_PASS"]}))
	require.NoError(t, err)
	require.True(t, cfg.PITR.Enabled)
	cfg.DatabaseURL, cfg.Treasury.DatabaseURL, cfg.Backup.DatabaseURL, cfg.S3 = f.Roles.App, f.Roles.Treasury, f.Roles.Backup, s.Config
	cfg.Backup.Recipients, cfg.Backup.IdentityFile = []string{id.Recipient().String()}, idFile
	cfg.Backup.DrillDatabaseURL, cfg.Backup.DrillAllowProductionServer = f.AdminURL, true
	cfg.Backup.DrillRestoreJobs = 2
	require.NoError(t, EnsureSearchAttributes(ctx, c, "default"))
	require.NoError(t, ApplySchedules(ctx, c, cfg))
	d, err := c.ScheduleClient().GetHandle(ctx, "drill-quarterly").Describe(ctx)
	require.NoError(t, err)
	var scheduled workflows.DrillInput
	action := d.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(action.Args[0].(*commonpb.Payload), &scheduled))
	require.Equal(t, workflows.DrillBoth, scheduled.Kind, "with PITR configured the quarterly drill proves both layers")

	pool, err := db.Open(ctx, f.Roles.App)
	require.NoError(t, err)
	defer pool.Close()
	deps := Deps{Client: c, Pool: pool, S3: s.Client, Config: cfg, Logger: testharness.Logger(t)}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(wctx, deps, []string{workflows.BackupTaskQueue, workflows.DrillTaskQueue, workflows.PITRTaskQueue})
	}()
	defer func() { stop(); <-done }()

	brun, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "pitr-drill-backup-" + t.Name(), TaskQueue: workflows.BackupTaskQueue},
		workflows.BackupWorkflow, workflows.BackupInput{Kind: "manual"})
	require.NoError(t, err)
	var bres workflows.BackupResult
	require.NoError(t, brun.Get(ctx, &bres))

	drillID := "e2e-drill-both-" + t.Name()
	drun, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: drillID, TaskQueue: workflows.DrillTaskQueue},
		workflows.DrillWorkflow, scheduled)
	require.NoError(t, err)
	var rep workflows.DrillResult
	require.NoError(t, drun.Get(ctx, &rep))
	require.Equal(t, workflows.DrillPass, rep.Outcome, rep.Error)
	require.Equal(t, workflows.DrillBoth, rep.Kind)
	require.Equal(t, bres.BackupID, rep.BackupID)
	require.True(t, rep.Verified, "the logical restore ran and verified")
	p := rep.PITR
	require.NotNil(t, p)
	require.True(t, p.Verified, p.Error)
	require.True(t, p.MarkerFound, "marker 1, committed before the target, is restored")
	require.True(t, p.LaterMarkerAbsent, "marker 2, committed after the target, is not")
	require.Equal(t, p.MarkerAt, p.TargetAt)
	require.True(t, p.LaterMarkerAt.After(p.TargetAt))
	require.False(t, p.LastTransaction.After(p.TargetAt), "last replayed transaction %s after the target %s", p.LastTransaction, p.TargetAt)
	require.NotEmpty(t, p.Backup)
	require.True(t, p.RPOArchived, "marker 2's WAL reached the repository")
	require.GreaterOrEqual(t, p.RPOSeconds, 0.0)
	require.NotNil(t, p.Serving)
	require.True(t, p.Serving.OK, p.Serving.Failed())
	t.Logf("PITR drill: RPO (archive lag) %.1fs, RTO %ds, logical RTO %ds; steps %+v", p.RPOSeconds, p.RTOSeconds, rep.RTOSeconds, p.Steps)

	// Both markers stay in production as the drill's evidence; the scratch server is gone.
	got, err := db.DrillMarkers(ctx, pool, drillID)
	require.NoError(t, err)
	require.Equal(t, []int{1, 2}, got)
	require.NoDirExists(t, activities.DrillDataDir(f.Env["PITR_DIR"], drillID))
	drills, err := db.ListDrills(ctx, pool, 10)
	require.NoError(t, err)
	require.Equal(t, "pass", drills[0].Outcome)
	require.Contains(t, string(drills[0].Report), `"marker_found": true`)
	md, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(activities.DrillReportKey(drillID, "md"))})
	require.NoError(t, err)
	mdBody, err := io.ReadAll(md.Body)
	require.NoError(t, err)
	require.Contains(t, string(mdBody), "## Point-in-time recovery")
	require.Contains(t, string(mdBody), "Marker 1 there: true; marker 2 absent: true")
	require.Contains(t, string(mdBody), "RPO (archive lag): ")
	testharness.WriteHistory(t, c, drillID, "drill_pitr_history.json")
}
