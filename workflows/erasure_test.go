package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/creatorvault/orchestrator/activities"
)

// The workflow records the request in the register first, runs every step in order, retries
// a failing step (the steps are idempotent) without repeating the finished ones, and records
// the summed result last. An unknown user fails at once, having changed nothing.
func TestErasureWorkflowStepsRetriesAndResult(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	var a *activities.Erasure
	user := uuid.New()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	var order []string
	step := func(name string, c activities.ErasureCounts) func(context.Context, activities.ErasureStepInput) (activities.ErasureCounts, error) {
		return func(_ context.Context, in activities.ErasureStepInput) (activities.ErasureCounts, error) {
			require.Equal(t, user, in.UserID)
			require.NotEqual(t, uuid.Nil, in.Pseudonym)
			order = append(order, name)
			return c, nil
		}
	}
	env.OnActivity(a.Begin, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ErasureStepInput) (time.Time, error) {
		order = append(order, "begin")
		return at, nil
	})
	env.OnActivity(a.RevokeSessions, mock.Anything, mock.Anything).Return(step("sessions", activities.ErasureCounts{SessionsRevoked: 2}))
	env.OnActivity(a.EraseIdentity, mock.Anything, mock.Anything).Return(step("identity", activities.ErasureCounts{IdentityRows: 3}))
	failed := false
	env.OnActivity(a.WipeMessages, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.ErasureStepInput) (activities.ErasureCounts, error) {
		if !failed {
			failed = true
			order = append(order, "messages(failed)")
			return activities.ErasureCounts{}, errors.New("connection reset")
		}
		order = append(order, "messages")
		return activities.ErasureCounts{MessagesWiped: 4}, nil
	})
	env.OnActivity(a.TombstoneComments, mock.Anything, mock.Anything).Return(step("comments", activities.ErasureCounts{CommentsTombstoned: 5, LikesRemoved: 1}))
	env.OnActivity(a.PseudonymiseAccessLog, mock.Anything, mock.Anything).Return(step("access_log", activities.ErasureCounts{AccessLogRows: 6}))
	var recorded activities.ErasureCounts
	env.OnActivity(a.Complete, mock.Anything, mock.Anything).Return(func(_ context.Context, in activities.CompleteInput) error {
		order = append(order, "complete")
		recorded = in.Counts
		return nil
	})
	env.ExecuteWorkflow(ErasureWorkflow, ErasureInput{UserID: user})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ErasureResult
	require.NoError(t, env.GetWorkflowResult(&res))
	want := activities.ErasureCounts{SessionsRevoked: 2, IdentityRows: 3, MessagesWiped: 4, CommentsTombstoned: 5, LikesRemoved: 1, AccessLogRows: 6}
	require.Equal(t, want, res.Counts)
	require.Equal(t, want, recorded)
	require.Equal(t, at, res.RequestedAt)
	require.Equal(t, []string{"begin", "sessions", "identity", "messages(failed)", "messages", "comments", "access_log", "complete"}, order)

	// An unknown user: Begin's non-retryable error ends the workflow; no step runs.
	env = s.NewTestWorkflowEnvironment()
	ran := false
	env.OnActivity(a.Begin, mock.Anything, mock.Anything).Return(time.Time{},
		temporal.NewNonRetryableApplicationError("user not found", "user_not_found", nil))
	env.OnActivity(a.RevokeSessions, mock.Anything, mock.Anything).Return(func(context.Context, activities.ErasureStepInput) (activities.ErasureCounts, error) {
		ran = true
		return activities.ErasureCounts{}, nil
	})
	env.ExecuteWorkflow(ErasureWorkflow, ErasureInput{UserID: user})
	require.Error(t, env.GetWorkflowError())
	require.False(t, ran)
}
