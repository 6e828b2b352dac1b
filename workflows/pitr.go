package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
)

// PITRTaskQueue is point-in-time recovery's task queue; its worker runs beside the database,
// with pgBackRest and the repository's key.
const PITRTaskQueue = "pitr"

// PhysicalBackupInput starts a physical backup: Kind is full (weekly) or diff (daily).
type PhysicalBackupInput struct {
	Kind string
}

// PhysicalBackupResult is the backup made and whether retention ran.
type PhysicalBackupResult struct {
	Backup  activities.PhysicalBackupRunResult
	Expired bool
}

// PhysicalBackupWorkflow checks the stanza (created if new), makes the backup, and expires
// what the retention policy no longer keeps.
func PhysicalBackupWorkflow(ctx workflow.Context, in PhysicalBackupInput) (PhysicalBackupResult, error) {
	var a *activities.PITR
	setupCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 30 * time.Second, BackoffCoefficient: 2, MaximumAttempts: 5},
	})
	if err := workflow.ExecuteActivity(setupCtx, a.Setup).Get(ctx, nil); err != nil {
		return PhysicalBackupResult{}, err
	}
	runCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 12 * time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Minute, BackoffCoefficient: 2,
			MaximumInterval: 15 * time.Minute, MaximumAttempts: 3},
	})
	var res PhysicalBackupResult
	if err := workflow.ExecuteActivity(runCtx, a.Backup, in.Kind).Get(ctx, &res.Backup); err != nil {
		return res, err
	}
	expireCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 30 * time.Second, MaximumAttempts: 3},
	})
	if err := workflow.ExecuteActivity(expireCtx, a.Expire).Get(ctx, nil); err != nil {
		// The backup is made; expiry runs again after the next one.
		workflow.GetLogger(ctx).Warn("pitr: expire failed", "error", err)
		return res, nil
	}
	res.Expired = true
	return res, nil
}
