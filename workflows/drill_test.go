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
