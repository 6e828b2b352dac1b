package workers

import (
	"context"
	"testing"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/pitr/pitrtest"
	"github.com/creatorvault/orchestrator/workflows"
)

// TestPhysicalBackupWorkflowAndSchedules: with PITR on, the weekly full and daily diff
// Schedules exist with overlap skip, and the workflow, run by the pitr worker against the real
// pgBackRest and an archiving cluster, checks the stanza, makes a differential backup on the
// fixture's full one and expires.
func TestPhysicalBackupWorkflowAndSchedules(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	f := pitrtest.Start(t, ctx)
	f.SetEnv(t)
	c := testharness.Temporal(t)
	cfg, err := config.LoadFrom(func(k string) (string, bool) {
		if k == "PITR_CIPHER_PASS" {
			return f.Env[k], true
		}
		return "", false
	})
	require.NoError(t, err)
	require.True(t, cfg.PITR.Enabled)
	require.NoError(t, ApplySchedules(ctx, c, cfg))
	for id, sunday := range map[string]bool{"pitr-full-weekly": true, "pitr-diff-daily": false} {
		d, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		require.NoError(t, err, id)
		require.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, d.Schedule.Policy.Overlap, id)
		action, ok := d.Schedule.Action.(*client.ScheduleWorkflowAction)
		require.True(t, ok, id)
		require.Equal(t, workflows.PITRTaskQueue, action.TaskQueue, id)
		require.NotEmpty(t, d.Info.NextActionTimes, id)
		for _, next := range d.Info.NextActionTimes {
			next = next.UTC()
			require.Equal(t, sunday, next.Weekday() == time.Sunday, "%s runs at %s", id, next)
			require.Equal(t, 3, next.Hour(), id)
		}
	}
	// Dev with PITR off removes them (twice: nothing left is not an error).
	require.NoError(t, RemovePITRSchedules(ctx, c))
	require.NoError(t, RemovePITRSchedules(ctx, c))
	for _, id := range pitrScheduleIDs {
		_, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		var nf *serviceerror.NotFound
		require.ErrorAs(t, err, &nf, id)
	}

	app, err := db.Open(ctx, f.Roles.App)
	require.NoError(t, err)
	defer app.Close()
	deps := Deps{Client: c, Config: cfg, Logger: testharness.Logger(t), Pool: app}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(wctx, deps, []string{workflows.PITRTaskQueue}) }()
	defer func() { stop(); <-done }()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "pitr-diff-" + t.Name(), TaskQueue: workflows.PITRTaskQueue},
		workflows.PhysicalBackupWorkflow, workflows.PhysicalBackupInput{Kind: "diff"})
	require.NoError(t, err)
	var res workflows.PhysicalBackupResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, "diff", res.Backup.Kind)
	require.NotEmpty(t, res.Backup.Prior, "a diff depends on the full backup")
	require.Equal(t, 2, res.Backup.Backups)
	require.True(t, res.Expired)
	require.Positive(t, res.Backup.RepoBytes)
	// Watched: the worker reports the backup it made and the archiver of DATABASE_URL's server.
	require.Equal(t, float64(res.Backup.Stopped.Unix()),
		metricValue(t, "orchestrator_pitr_backup_last_success_timestamp_seconds", map[string]string{"kind": "diff"}))
	require.Positive(t, metricValue(t, "orchestrator_pitr_backup_last_success_timestamp_seconds", map[string]string{"kind": "full"}))
	require.Equal(t, 1.0, metricValue(t, "orchestrator_pitr_archiving", nil))
	require.Positive(t, metricValue(t, "orchestrator_pitr_archived_files_total", nil))
	testharness.WriteHistory(t, c, "pitr-diff-"+t.Name(), "pitr_backup_history.json")
}
