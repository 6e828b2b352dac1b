package workflows

import (
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
)

// BackupTaskQueue is the backup domain's task queue; its worker holds only the public
// recipients.
const BackupTaskQueue = "backup"

// BackupIDKey is the search attribute naming the backup a backup or drill workflow handles.
var BackupIDKey = temporal.NewSearchAttributeKeyKeyword("BackupID")

// backupSearchAttributes are the custom search attributes the backup workflow sets.
var backupSearchAttributes = map[string]enumspb.IndexedValueType{
	"BackupID": enumspb.INDEXED_VALUE_TYPE_KEYWORD,
}

// BackupInput starts a backup. An empty BackupID is derived from the start time and run id.
type BackupInput struct {
	BackupID string
	// Kind is nightly (the schedule) or manual.
	Kind string
}

// BackupResult describes the backup and what retention pruned after it.
type BackupResult struct {
	BackupID    string
	SHA256      string
	DumpBytes   int64
	StoredBytes int64
	Tables      int
	Pruned      []string
}

// BackupWorkflowID is the id of a manual backup started at t.
func BackupWorkflowID(t time.Time) string {
	return "backup-manual-" + t.UTC().Format("20060102T150405Z")
}

// BackupWorkflow streams one backup to S3 (retried from the start on failure, under the same
// id) and then applies retention.
func BackupWorkflow(ctx workflow.Context, in BackupInput) (BackupResult, error) {
	if in.Kind == "" {
		in.Kind = "manual"
	}
	if in.BackupID == "" {
		info := workflow.GetInfo(ctx)
		in.BackupID = "bk-" + workflow.Now(ctx).UTC().Format("20060102T150405Z") + "-" + info.WorkflowExecution.RunID[:8]
	}
	if err := workflow.UpsertTypedSearchAttributes(ctx, BackupIDKey.ValueSet(in.BackupID)); err != nil {
		return BackupResult{}, err
	}
	var a *activities.Backup
	runCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 12 * time.Hour,
		// The activity heartbeats every 5 s: a worker killed mid-upload is noticed within
		// 30 s and the retry, on whichever worker is alive, starts over under the same id.
		HeartbeatTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: 30 * time.Second, BackoffCoefficient: 2,
			MaximumInterval: 10 * time.Minute, MaximumAttempts: 4},
	})
	var run activities.BackupRunResult
	if err := workflow.ExecuteActivity(runCtx, a.Run, activities.BackupRunInput{BackupID: in.BackupID, Kind: in.Kind}).Get(ctx, &run); err != nil {
		return BackupResult{BackupID: in.BackupID}, err
	}
	res := BackupResult{BackupID: run.BackupID, SHA256: run.SHA256, DumpBytes: run.DumpBytes, StoredBytes: run.StoredBytes, Tables: run.Tables}
	pruneCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 10 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 10 * time.Second, MaximumAttempts: 5},
	})
	var pruned activities.PruneResult
	if err := workflow.ExecuteActivity(pruneCtx, a.Prune).Get(ctx, &pruned); err != nil {
		// The backup itself is complete; a failed prune is retried after the next backup.
		workflow.GetLogger(ctx).Warn("backup: retention failed", "error", err)
	}
	res.Pruned = pruned.Deleted
	return res, nil
}
