package workflows

import (
	"time"

	"github.com/google/uuid"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
)

// ErasureTaskQueue is the task queue of the right to be forgotten.
const ErasureTaskQueue = "erasure"

// ErasureWorkflowID is the one workflow id of user's erasure: a second DELETE finds the first.
func ErasureWorkflowID(user uuid.UUID) string { return "erasure-" + user.String() }

// ErasureInput names the user to erase. Who asked was authorised by the API and is recorded
// in the access log; the workflow needs only the id.
type ErasureInput struct {
	UserID uuid.UUID
}

// ErasureResult is what the erasure changed, step by step (summed).
type ErasureResult struct {
	UserID      uuid.UUID
	RequestedAt time.Time
	Counts      activities.ErasureCounts
}

// ErasureWorkflow erases a user: the request goes into the erasure register first (so a
// restore re-applies it from then on), then sessions, identity, messages, comments and the
// access log, each an idempotent activity retried until it succeeds, and last the result is
// recorded. Resuming after a crash repeats at most the step that was running.
func ErasureWorkflow(ctx workflow.Context, in ErasureInput) (ErasureResult, error) {
	var a *activities.Erasure
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 5 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2,
			MaximumInterval: 5 * time.Minute, NonRetryableErrorTypes: []string{"user_not_found"}},
	})
	var pseudonym uuid.UUID
	if err := workflow.SideEffect(ctx, func(workflow.Context) any { return uuid.New() }).Get(&pseudonym); err != nil {
		return ErasureResult{}, err
	}
	step := activities.ErasureStepInput{UserID: in.UserID, Pseudonym: pseudonym}
	res := ErasureResult{UserID: in.UserID}
	if err := workflow.ExecuteActivity(ctx, a.Begin, step).Get(ctx, &res.RequestedAt); err != nil {
		return res, err
	}
	for _, fn := range []any{a.RevokeSessions, a.EraseIdentity, a.WipeMessages, a.TombstoneComments, a.PseudonymiseAccessLog} {
		var c activities.ErasureCounts
		if err := workflow.ExecuteActivity(ctx, fn, step).Get(ctx, &c); err != nil {
			return res, err
		}
		res.Counts = res.Counts.Add(c)
	}
	err := workflow.ExecuteActivity(ctx, a.Complete, activities.CompleteInput{UserID: in.UserID, Counts: res.Counts}).Get(ctx, nil)
	return res, err
}
