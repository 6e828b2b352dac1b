package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
)

// Names of the sweep that releases what terminated or timed-out bailout runs still hold.
const (
	BailoutSweepWorkflowName = "BailoutSweep"
	BailoutSweepScheduleID   = "treasury-bailout-sweep"
	// BailoutSweepCron runs the sweep every hour (UTC).
	BailoutSweepCron = "23 * * * *"
)

// BailoutSweep looks at every open bailout whose workflow no longer runs (terminated, timed
// out) and releases its reservation and channel after making its envelope invalid on chain.
func BailoutSweep(ctx workflow.Context) (activities.SweepResult, error) {
	var act *activities.Treasury
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: 10 * time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute, MaximumAttempts: 5,
		},
	})
	var res activities.SweepResult
	err := workflow.ExecuteActivity(ctx, act.SweepBailouts).Get(ctx, &res)
	return res, err
}
