package workflows

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/pitr"
)

func drillEnv(t *testing.T, restoreTakes time.Duration, restoreErr error) (*testsuite.TestWorkflowEnvironment, *[]activities.DrillRecord) {
	t.Helper()
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Drill
	env.RegisterActivity(a)
	env.OnActivity(a.ResolveBackup, mock.Anything, "").Return("b7", nil).Once()
	env.OnActivity(a.Restore, mock.Anything, mock.Anything).After(restoreTakes).
		Return(activities.DrillRestoreResult{StoredBytes: 100, DumpBytes: 300, Tables: 4}, restoreErr).Once()
	env.OnActivity(a.DropScratch, mock.Anything, mock.Anything).Return(nil).Once()
	var records []activities.DrillRecord
	env.OnActivity(a.Record, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.DrillRecord) error {
		records = append(records, r)
		return nil
	})
	return env, &records
}

func TestDrillPasses(t *testing.T) {
	env, records := drillEnv(t, 5*time.Minute, nil)
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{RTOTarget: 30 * time.Minute})
	require.NoError(t, env.GetWorkflowError())
	var rep DrillResult
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, DrillPass, rep.Outcome)
	require.Equal(t, "b7", rep.BackupID)
	require.False(t, rep.Breached)
	require.True(t, rep.Verified)
	require.InDelta(t, 300, rep.RTOSeconds, 2)
	require.Empty(t, rep.Recommendations)
	require.Len(t, *records, 1)
	require.Equal(t, DrillPass, (*records)[0].Outcome)
	env.AssertExpectations(t)
}

// With a tiny target the timer fires first: the breach is recorded, the drill goes on and
// measures the real RTO, and the report says so.
func TestDrillRTOExceeded(t *testing.T) {
	env, records := drillEnv(t, 10*time.Minute, nil)
	var sawBreach bool
	env.RegisterDelayedCallback(func() {
		// Between the timer (1 minute) and the end of the restore (10 minutes).
		sawBreach = true
	}, 5*time.Minute)
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{RTOTarget: time.Minute})
	require.NoError(t, env.GetWorkflowError())
	var rep DrillResult
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.True(t, sawBreach)
	require.Equal(t, DrillRTOExceeded, rep.Outcome)
	require.True(t, rep.Breached)
	require.NotNil(t, rep.BreachedAt)
	require.InDelta(t, 60, rep.BreachedAt.Sub(rep.StartedAt).Seconds(), 2)
	require.InDelta(t, 600, rep.RTOSeconds, 2)
	require.True(t, rep.Verified)
	require.NotEmpty(t, rep.Recommendations)
	require.Contains(t, rep.Recommendations[0], "exceeds")
	require.Equal(t, DrillRTOExceeded, (*records)[0].Outcome)
	env.AssertExpectations(t)
}

// A failed restore fails the drill, and the scratch database is still dropped.
func TestDrillFailsAndStillDrops(t *testing.T) {
	env, records := drillEnv(t, time.Minute, temporal.NewNonRetryableApplicationError("SHA-256 mismatch", "drill_backup_unusable", nil))
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{})
	require.NoError(t, env.GetWorkflowError())
	var rep DrillResult
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, DrillFail, rep.Outcome)
	require.Contains(t, rep.Error, "SHA-256 mismatch")
	require.False(t, rep.Verified)
	require.Equal(t, DrillFail, (*records)[0].Outcome)
	env.AssertExpectations(t) // DropScratch ran
}

// pitrDrillEnv is drillEnv with the PITR drill's activities: markers, archive wait and the
// restore to a moment on the pitr queue.
func pitrDrillEnv(t *testing.T, env *testsuite.TestWorkflowEnvironment, restoreTakes time.Duration, res activities.PITRDrillResult, restoreErr error) *[]activities.PITRDrillInput {
	t.Helper()
	var a *activities.Drill
	var p *activities.PITR
	env.RegisterActivity(p)
	t0 := time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC)
	env.OnActivity(a.WriteMarker, mock.Anything, activities.WriteMarkerInput{DrillID: "default-test-workflow-id", Seq: 1}).
		Return(activities.DrillMarker{Seq: 1, Database: "orchestrator", Commit: pitr.Commit{Time: t0, Segment: "000000010000000000000007"}}, nil).Once()
	env.OnActivity(a.WriteMarker, mock.Anything, activities.WriteMarkerInput{DrillID: "default-test-workflow-id", Seq: 2}).
		Return(activities.DrillMarker{Seq: 2, Database: "orchestrator", Commit: pitr.Commit{Time: t0.Add(2 * time.Second), Segment: "000000010000000000000008"}}, nil).Once()
	env.OnActivity(a.WaitArchived, mock.Anything, activities.WaitArchivedInput{
		Commit: pitr.Commit{Time: t0.Add(2 * time.Second), Segment: "000000010000000000000008"}, Max: pitrArchiveWait}).
		Return(pitr.Lag{Archived: true, Seconds: 42}, nil).Once()
	var inputs []activities.PITRDrillInput
	env.OnActivity(p.DrillRestore, mock.Anything, mock.Anything).After(restoreTakes).
		Return(func(_ context.Context, in activities.PITRDrillInput) (activities.PITRDrillResult, error) {
			inputs = append(inputs, in)
			return res, restoreErr
		}).Once()
	return &inputs
}

// A drill of kind both restores the logical backup, then proves the PITR: the target is the
// moment just after marker 1's commit, marker 1 must be there and marker 2 not; the report
// carries the archive lag as RPO and the PITR restore's RTO.
func TestDrillBothLayers(t *testing.T) {
	env, records := drillEnv(t, 5*time.Minute, nil)
	good := activities.PITRDrillResult{Backup: "20260301-030000F", Markers: []int{1}, MarkerFound: true, LaterMarkerAbsent: true,
		RestoreSeconds: 100, RecoverySeconds: 20, Serving: &activities.ServingReport{OK: true}}
	inputs := pitrDrillEnv(t, env, 3*time.Minute, good, nil)
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{RTOTarget: 30 * time.Minute, Kind: DrillBoth})
	require.NoError(t, env.GetWorkflowError())
	var rep DrillResult
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, DrillPass, rep.Outcome, rep.Error)
	require.Equal(t, DrillBoth, rep.Kind)
	require.True(t, rep.Verified)
	require.InDelta(t, 300, rep.RTOSeconds, 2, "the drill's RTO is the logical restore's")
	require.NotNil(t, rep.PITR)
	require.True(t, rep.PITR.Verified)
	require.InDelta(t, 180, rep.PITR.RTOSeconds, 2)
	require.Equal(t, 42.0, rep.PITR.RPOSeconds)
	require.True(t, rep.PITR.RPOArchived)
	require.Equal(t, 60, rep.PITR.RPOTargetSeconds)
	require.Equal(t, "20260301-030000F", rep.PITR.Backup)
	require.Len(t, *inputs, 1)
	in := (*inputs)[0]
	require.Equal(t, time.Date(2026, 3, 1, 3, 0, 0, 0, time.UTC), in.At, "restored to just after marker 1")
	require.Equal(t, 1, in.Present)
	require.Equal(t, 2, in.Absent)
	require.Equal(t, "orchestrator", in.Database)
	require.Len(t, *records, 1)
	require.Equal(t, DrillPass, (*records)[0].Outcome)
	env.AssertExpectations(t)
}

// A PITR-only drill whose restore finds the later marker fails, says why, and skips the
// logical restore.
func TestDrillPITRMarkerMismatchFails(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Drill
	env.RegisterActivity(a)
	var records []activities.DrillRecord
	env.OnActivity(a.Record, mock.Anything, mock.Anything).Return(func(_ context.Context, r activities.DrillRecord) error {
		records = append(records, r)
		return nil
	})
	bad := activities.PITRDrillResult{Markers: []int{1, 2}, MarkerFound: true}
	pitrDrillEnv(t, env, time.Minute, bad, temporal.NewNonRetryableApplicationError("drill: markers [1 2]: want 1 there and 2 not", "drill_pitr_mismatch", nil, bad))
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{Kind: DrillPITR})
	require.NoError(t, env.GetWorkflowError())
	var rep DrillResult
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, DrillFail, rep.Outcome)
	require.Contains(t, rep.Error, "want 1 there and 2 not")
	require.Empty(t, rep.BackupID, "no logical backup was restored")
	require.False(t, rep.PITR.Verified)
	require.True(t, rep.PITR.MarkerFound)
	require.False(t, rep.PITR.LaterMarkerAbsent)
	require.InDelta(t, 60, rep.RTOSeconds, 2, "a PITR-only drill's RTO is the PITR restore's")
	require.Len(t, records, 1)
	require.Contains(t, rep.Recommendations[1], "restore to a moment failed")
	env.AssertExpectations(t)
}

// An unknown kind fails the drill at once, recorded, with nothing restored.
func TestDrillUnknownKind(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Drill
	env.RegisterActivity(a)
	env.OnActivity(a.Record, mock.Anything, mock.Anything).Return(nil).Once()
	env.ExecuteWorkflow(DrillWorkflow, DrillInput{Kind: "physical"})
	var rep DrillResult
	require.NoError(t, env.GetWorkflowResult(&rep))
	require.Equal(t, DrillFail, rep.Outcome)
	require.Contains(t, rep.Error, `unknown kind "physical"`)
	env.AssertExpectations(t)
}
