package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
)

// DrillTaskQueue is the fire drills' task queue: the only worker that holds the backup
// identity.
const DrillTaskQueue = "drill"

// Search attributes of drills.
var (
	DrillOutcomeKey    = temporal.NewSearchAttributeKeyKeyword("DrillOutcome")
	DrillRTOSecondsKey = temporal.NewSearchAttributeKeyInt64("DrillRTOSeconds")
)

// drillSearchAttributes are the custom search attributes the drill workflow sets.
var drillSearchAttributes = map[string]enumspb.IndexedValueType{
	"DrillOutcome":    enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"DrillRTOSeconds": enumspb.INDEXED_VALUE_TYPE_INT,
}

// Drill outcomes.
const (
	DrillPass        = "pass"
	DrillFail        = "fail"
	DrillRTOExceeded = "rto_exceeded"
)

// DrillInput starts a fire drill. An empty BackupID means the newest complete backup; a zero
// RTOTarget means 30 minutes.
type DrillInput struct {
	BackupID  string
	RTOTarget time.Duration
}

// DrillStep is one step's duration in the report.
type DrillStep struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// DrillReport is what a drill records: backup used, sizes, steps, RTO vs target,
// verification and recommendations.
type DrillReport struct {
	DrillID          string      `json:"drill_id"`
	BackupID         string      `json:"backup_id"`
	Outcome          string      `json:"outcome"`
	StartedAt        time.Time   `json:"started_at"`
	FinishedAt       time.Time   `json:"finished_at"`
	RTOSeconds       int         `json:"rto_seconds"`
	RTOTargetSeconds int         `json:"rto_target_seconds"`
	Breached         bool        `json:"breached"`
	BreachedAt       *time.Time  `json:"breached_at,omitempty"`
	StoredBytes      int64       `json:"stored_bytes"`
	DumpBytes        int64       `json:"dump_bytes"`
	Tables           int         `json:"tables"`
	Steps            []DrillStep `json:"steps"`
	Verified         bool        `json:"verified"`
	// Serving is the serving check of the restored database as the runtime role and the
	// treasury login; the drill passes only when it does.
	Serving *activities.ServingReport `json:"serving,omitempty"`
	// RestoreJobs is the pg_restore --jobs the drill used (DRILL_RESTORE_JOBS).
	RestoreJobs     int      `json:"restore_jobs,omitempty"`
	Error           string   `json:"error,omitempty"`
	Recommendations []string `json:"recommendations"`
}

// DrillResult is the drill workflow's result: its report.
type DrillResult = DrillReport

// DrillWorkflowID is the id of a manual drill started at t.
func DrillWorkflowID(t time.Time) string { return "drill-manual-" + t.UTC().Format("20060102T150405Z") }

// DrillWorkflow restores a backup into a scratch database, verifies it against the manifest's
// fingerprint and measures the recovery time against the target. A durable timer races the
// restore: when it fires first the breach is recorded at once and the drill keeps going to
// measure the real RTO. The scratch database is dropped always.
func DrillWorkflow(ctx workflow.Context, in DrillInput) (DrillResult, error) {
	if in.RTOTarget <= 0 {
		in.RTOTarget = 30 * time.Minute
	}
	logger := workflow.GetLogger(ctx)
	info := workflow.GetInfo(ctx)
	start := workflow.Now(ctx)
	rep := DrillReport{DrillID: info.WorkflowExecution.ID, StartedAt: start, RTOTargetSeconds: int(in.RTOTarget / time.Second),
		Recommendations: []string{}}
	var a *activities.Drill
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5},
	})

	// finish records the outcome; the RTO runs from start to end (the verified restore).
	finish := func(outcome, errText string, end time.Time) (DrillResult, error) {
		rep.Outcome, rep.Error = outcome, errText
		rep.FinishedAt = workflow.Now(ctx)
		rep.RTOSeconds = int(end.Sub(start) / time.Second)
		rep.Recommendations = recommendations(rep)
		_ = workflow.UpsertTypedSearchAttributes(ctx, DrillOutcomeKey.ValueSet(outcome), DrillRTOSecondsKey.ValueSet(int64(rep.RTOSeconds)))
		dctx, _ := workflow.NewDisconnectedContext(short)
		rec := activities.DrillRecord{DrillID: rep.DrillID, BackupID: rep.BackupID, StartedAt: start, FinishedAt: rep.FinishedAt,
			Outcome: outcome, RTOSeconds: rep.RTOSeconds, RTOTargetSeconds: rep.RTOTargetSeconds, Detail: errText, Report: rep}
		if err := workflow.ExecuteActivity(dctx, a.Record, rec).Get(dctx, nil); err != nil {
			return rep, err
		}
		return rep, nil
	}

	stepStart := workflow.Now(ctx)
	if err := workflow.ExecuteActivity(short, a.ResolveBackup, in.BackupID).Get(ctx, &rep.BackupID); err != nil {
		return finish(DrillFail, err.Error(), workflow.Now(ctx))
	}
	rep.Steps = append(rep.Steps, DrillStep{"pick backup", workflow.Now(ctx).Sub(stepStart).Seconds()})
	if err := workflow.UpsertTypedSearchAttributes(ctx, BackupIDKey.ValueSet(rep.BackupID), DrillOutcomeKey.ValueSet("running")); err != nil {
		return rep, err
	}

	restoreCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 12 * time.Hour,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 30 * time.Second, MaximumAttempts: 3},
	})
	stepStart = workflow.Now(ctx)
	restore := workflow.ExecuteActivity(restoreCtx, a.Restore, activities.DrillRestoreInput{DrillID: rep.DrillID, BackupID: rep.BackupID})
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	remaining := in.RTOTarget - workflow.Now(ctx).Sub(start)
	if remaining < time.Millisecond {
		remaining = time.Millisecond
	}
	timer := workflow.NewTimer(timerCtx, remaining)

	var restored activities.DrillRestoreResult
	var restoreErr error
	done := false
	for !done {
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(restore, func(f workflow.Future) {
			restoreErr = f.Get(ctx, &restored)
			done = true
		})
		if !rep.Breached {
			sel.AddFuture(timer, func(f workflow.Future) {
				if f.Get(ctx, nil) != nil {
					return
				}
				now := workflow.Now(ctx)
				rep.Breached, rep.BreachedAt = true, &now
				logger.Warn("drill: RTO target breached; the restore goes on to measure the real RTO",
					"drill_id", rep.DrillID, "target", in.RTOTarget.String())
				_ = workflow.UpsertTypedSearchAttributes(ctx, DrillOutcomeKey.ValueSet(DrillRTOExceeded))
			})
		}
		sel.Select(ctx)
	}
	cancelTimer()
	rep.Steps = append(rep.Steps, DrillStep{"restore and verify", workflow.Now(ctx).Sub(stepStart).Seconds()})
	var appErr *temporal.ApplicationError
	if restoreErr != nil && errors.As(restoreErr, &appErr) && appErr.HasDetails() {
		// A failed restore reports how far it got (fingerprint, serving check).
		_ = appErr.Details(&restored)
	}
	rep.StoredBytes, rep.DumpBytes, rep.Tables = restored.StoredBytes, restored.DumpBytes, restored.Tables
	rep.Serving, rep.RestoreJobs = restored.Serving, restored.Jobs
	if restoreErr == nil {
		rep.Verified = true
		rep.Steps = append(rep.Steps,
			DrillStep{"download and check SHA-256", restored.DownloadSeconds},
			DrillStep{"pg_restore", restored.RestoreSeconds},
			DrillStep{"fingerprint", restored.VerifySeconds})
	}
	if restored.Serving != nil {
		rep.Steps = append(rep.Steps, DrillStep{"serving check", restored.ServingSeconds})
	}
	// The measured RTO ends at the verified restore, before the cleanup.
	end := workflow.Now(ctx)
	if !rep.Breached && end.Sub(start) > in.RTOTarget {
		// The restore ended past the target before the timer was delivered.
		rep.Breached, rep.BreachedAt = true, &end
	}

	dctx, _ := workflow.NewDisconnectedContext(short)
	stepStart = workflow.Now(ctx)
	dropErr := workflow.ExecuteActivity(dctx, a.DropScratch, rep.DrillID).Get(dctx, nil)
	rep.Steps = append(rep.Steps, DrillStep{"drop scratch database", workflow.Now(ctx).Sub(stepStart).Seconds()})

	outcome, errText := DrillPass, ""
	switch {
	case restoreErr != nil:
		outcome, errText = DrillFail, restoreErr.Error()
	case rep.Breached:
		outcome = DrillRTOExceeded
	}
	if dropErr != nil && errText == "" {
		errText = "scratch database not dropped: " + dropErr.Error()
	}
	return finish(outcome, errText, end)
}

// recommendations advise when the recovery time is at risk.
func recommendations(r DrillReport) []string {
	out := []string{}
	if r.Outcome == DrillFail {
		out = append(out, "The drill failed: fix the cause before relying on these backups.")
	}
	if r.Serving != nil && !r.Serving.OK {
		out = append(out, "The restored database does not serve the application as its own roles: run `orchestrator db bootstrap` on the target server and check the grants (see docs/DR.md).")
	}
	switch {
	case r.Outcome == DrillRTOExceeded || r.Breached:
		out = append(out, fmt.Sprintf("RTO %ds exceeds the %ds target: restore with more pg_restore jobs, a faster network to S3, or raise the target.", r.RTOSeconds, r.RTOTargetSeconds))
	case r.RTOTargetSeconds > 0 && 2*r.RTOSeconds > r.RTOTargetSeconds:
		out = append(out, fmt.Sprintf("RTO is %d%% of the target: the target is at risk as the database grows.", 100*r.RTOSeconds/r.RTOTargetSeconds))
	}
	return out
}
