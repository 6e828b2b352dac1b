package workflows

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/creatorvault/orchestrator/activities"
)

func TestBackupWorkflowRunsThenPrunes(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Backup
	env.RegisterActivity(a)
	env.OnActivity(a.Run, mock.Anything, activities.BackupRunInput{BackupID: "b1", Kind: "nightly"}).
		Return(activities.BackupRunResult{BackupID: "b1", SHA256: "ab", StoredBytes: 42, Tables: 3}, nil).Once()
	env.OnActivity(a.Prune, mock.Anything).Return(activities.PruneResult{Deleted: []string{"old"}}, nil).Once()
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{BackupID: "b1", Kind: "nightly"})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res BackupResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, BackupResult{BackupID: "b1", SHA256: "ab", StoredBytes: 42, Tables: 3, Pruned: []string{"old"}}, res)
	env.AssertExpectations(t)
}

func TestBackupWorkflowRetriesThenFails(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Backup
	env.RegisterActivity(a)
	// A transient failure is retried; the retry succeeds under the same backup id.
	calls := 0
	var ids []string
	env.OnActivity(a.Run, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.BackupRunInput) (activities.BackupRunResult, error) {
		calls++
		ids = append(ids, in.BackupID)
		if calls == 1 {
			return activities.BackupRunResult{}, errors.New("s3: connection reset")
		}
		return activities.BackupRunResult{BackupID: in.BackupID}, nil
	})
	env.OnActivity(a.Prune, mock.Anything).Return(activities.PruneResult{}, nil)
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{})
	require.NoError(t, env.GetWorkflowError())
	require.Equal(t, 2, calls)
	require.Equal(t, ids[0], ids[1])
	require.Contains(t, ids[0], "bk-")

	// A business failure is not retried and prune does not run.
	env = s.NewTestWorkflowEnvironment()
	env.RegisterActivity(a)
	env.OnActivity(a.Run, mock.Anything, mock.Anything).
		Return(activities.BackupRunResult{}, temporal.NewNonRetryableApplicationError("no recipient", "backup_config", nil)).Once()
	env.ExecuteWorkflow(BackupWorkflow, BackupInput{BackupID: "b2"})
	require.ErrorContains(t, env.GetWorkflowError(), "no recipient")
	env.AssertExpectations(t)
}
