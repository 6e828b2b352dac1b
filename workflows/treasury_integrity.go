package workflows

import (
	"fmt"
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
)

// Names of the treasury's integrity workflows (they run on TreasuryQueue).
const (
	TreasuryAnchorWorkflowName    = "TreasuryAnchor"
	TreasuryReconcileWorkflowName = "TreasuryReconcile"
)

// TreasuryAnchorEventWorkflowID is the id of the anchoring started for treasury event seq: a
// notification seen by several workers, or twice, starts it once.
func TreasuryAnchorEventWorkflowID(seq int64) string {
	return fmt.Sprintf("treasury-anchor-event-%d", seq)
}

// TreasuryAnchor publishes the treasury chain's current head on Stellar (memo hash of a
// transaction from the anchor account). It takes no input: what is anchored is the database's
// head when the activity runs, never something a caller passes.
func TreasuryAnchor(ctx workflow.Context) (activities.AnchorResult, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 5 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 20,
		},
	})
	var a *activities.TreasuryIntegrity
	var out activities.AnchorResult
	err := workflow.ExecuteActivity(ctx, a.PublishAnchor).Get(ctx, &out)
	return out, err
}

// TreasuryReconcile compares the fund and every executed bailout with the chain; the activity
// appends ReconcileDrift on any difference. A drift is the workflow's result, not its
// failure: the run completes with the report.
func TreasuryReconcile(ctx workflow.Context) (contracts.ReconcileReport, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 10 * time.Minute, MaximumAttempts: 10,
		},
	})
	var a *activities.TreasuryIntegrity
	var out contracts.ReconcileReport
	err := workflow.ExecuteActivity(ctx, a.Reconcile).Get(ctx, &out)
	return out, err
}
