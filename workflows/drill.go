package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/pitr"
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

// Drill kinds: which layers a drill restores. The quarterly drill is DrillBoth when PITR is
// configured (DefaultDrillKind), so every quarter proves both layers; logical alone otherwise.
const (
	// DrillLogical restores a logical backup into a scratch database (the only kind before
	// PITR, and what an empty Kind means).
	DrillLogical = "logical"
	// DrillPITR writes two marker rows a moment apart, restores the physical backups and WAL
	// to a moment between them on a scratch server, and measures the archive lag (RPO).
	DrillPITR = "pitr"
	// DrillBoth runs the logical drill, then the PITR drill.
	DrillBoth = "both"
)

// DefaultDrillKind is the kind of the scheduled and manual drills: both layers when PITR is
// configured (PITR_CIPHER_PASS), the logical one otherwise.
func DefaultDrillKind(pitrEnabled bool) string {
	if pitrEnabled {
		return DrillBoth
	}
	return DrillLogical
}

// ValidDrillKind reports whether kind is a drill kind ("" is logical).
func ValidDrillKind(kind string) bool {
	switch kind {
	case "", DrillLogical, DrillPITR, DrillBoth:
		return true
	}
	return false
}

// RPOTarget is the archive lag a PITR drill expects at most: the data a disaster would lose.
const RPOTarget = 60 * time.Second

// pitrArchiveWait bounds a PITR drill's wait for its marker's WAL to be archived: beyond it
// (the archive lag alert's threshold) archiving is broken and the drill fails.
const pitrArchiveWait = 5 * time.Minute

// drillKindsChange is the workflow change that brought drill kinds (PITR drills).
const drillKindsChange = "drill-kinds"

// DrillInput starts a fire drill. An empty BackupID means the newest complete backup; a zero
// RTOTarget means 30 minutes; an empty Kind means DrillLogical.
type DrillInput struct {
	BackupID  string
	RTOTarget time.Duration
	Kind      string `json:",omitempty"`
}

// DrillStep is one step's duration in the report.
type DrillStep = activities.DrillStep

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
	RestoreJobs int `json:"restore_jobs,omitempty"`
	// Kind is the drill's kind; PITR the point-in-time part's report when it ran one. The
	// fields above are the logical restore's (the RTO the PITR one's in a PITR-only drill).
	Kind            string      `json:"kind,omitempty"`
	PITR            *PITRReport `json:"pitr,omitempty"`
	Error           string      `json:"error,omitempty"`
	Recommendations []string    `json:"recommendations"`
}

// PITRReport is a PITR drill's part of the report (activities.PITRReport, which renders it).
type PITRReport = activities.PITRReport

// DrillResult is the drill workflow's result: its report.
type DrillResult = DrillReport

// DrillWorkflowID is the id of a manual drill started at t.
func DrillWorkflowID(t time.Time) string { return "drill-manual-" + t.UTC().Format("20060102T150405Z") }

// DrillWorkflow restores a backup into a scratch database, verifies it against the manifest's
// fingerprint and measures the recovery time against the target. A durable timer races the
// restore: when it fires first the breach is recorded at once and the drill keeps going to
// measure the real RTO. The scratch database is dropped always. A PITR drill (Kind pitr or
// both) then proves point-in-time recovery: see drillPITR.
func DrillWorkflow(ctx workflow.Context, in DrillInput) (DrillResult, error) {
	if in.RTOTarget <= 0 {
		in.RTOTarget = 30 * time.Minute
	}
	logger := workflow.GetLogger(ctx)
	info := workflow.GetInfo(ctx)
	start := workflow.Now(ctx)
	rep := DrillReport{DrillID: info.WorkflowExecution.ID, StartedAt: start, RTOTargetSeconds: int(in.RTOTarget / time.Second),
		Recommendations: []string{}}
	// Drills started before kinds existed are logical whatever their input says.
	kind := DrillLogical
	if workflow.GetVersion(ctx, drillKindsChange, workflow.DefaultVersion, 1) >= 1 {
		rep.Kind = DrillLogical
		if in.Kind != "" {
			kind, rep.Kind = in.Kind, in.Kind
		}
	}
	var a *activities.Drill
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5},
	})

	// finish records the outcome and the RTO.
	finish := func(outcome, errText string, rto time.Duration) (DrillResult, error) {
		rep.Outcome, rep.Error = outcome, errText
		rep.FinishedAt = workflow.Now(ctx)
		rep.RTOSeconds = int(rto / time.Second)
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
	if !ValidDrillKind(kind) {
		return finish(DrillFail, fmt.Sprintf("drill: unknown kind %q: want logical, pitr or both", kind), 0)
	}

	// The logical restore; its RTO runs from the start to the verified restore.
	var restoreErr, dropErr error
	rto := time.Duration(0)
	if kind == DrillLogical || kind == DrillBoth {
		stepStart := workflow.Now(ctx)
		if err := workflow.ExecuteActivity(short, a.ResolveBackup, in.BackupID).Get(ctx, &rep.BackupID); err != nil {
			return finish(DrillFail, err.Error(), workflow.Now(ctx).Sub(start))
		}
		rep.Steps = append(rep.Steps, DrillStep{Name: "pick backup", Seconds: workflow.Now(ctx).Sub(stepStart).Seconds()})
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
		var restored activities.DrillRestoreResult
		restoreErr = raceRTO(ctx, restore, in.RTOTarget-workflow.Now(ctx).Sub(start), &restored, func(now time.Time) {
			rep.Breached, rep.BreachedAt = true, &now
			logger.Warn("drill: RTO target breached; the restore goes on to measure the real RTO",
				"drill_id", rep.DrillID, "target", in.RTOTarget.String())
			_ = workflow.UpsertTypedSearchAttributes(ctx, DrillOutcomeKey.ValueSet(DrillRTOExceeded))
		})
		rep.Steps = append(rep.Steps, DrillStep{Name: "restore and verify", Seconds: workflow.Now(ctx).Sub(stepStart).Seconds()})
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
				DrillStep{Name: "download and check SHA-256", Seconds: restored.DownloadSeconds},
				DrillStep{Name: "pg_restore", Seconds: restored.RestoreSeconds},
				DrillStep{Name: "fingerprint", Seconds: restored.VerifySeconds})
		}
		if restored.Serving != nil {
			rep.Steps = append(rep.Steps, DrillStep{Name: "serving check", Seconds: restored.ServingSeconds})
		}
		// The measured RTO ends at the verified restore, before the cleanup.
		end := workflow.Now(ctx)
		rto = end.Sub(start)
		if !rep.Breached && rto > in.RTOTarget {
			// The restore ended past the target before the timer was delivered.
			rep.Breached, rep.BreachedAt = true, &end
		}

		dctx, _ := workflow.NewDisconnectedContext(short)
		stepStart = workflow.Now(ctx)
		dropErr = workflow.ExecuteActivity(dctx, a.DropScratch, rep.DrillID).Get(dctx, nil)
		rep.Steps = append(rep.Steps, DrillStep{Name: "drop scratch database", Seconds: workflow.Now(ctx).Sub(stepStart).Seconds()})
	}

	var pitrErr error
	if kind == DrillPITR || kind == DrillBoth {
		pitrErr = drillPITR(ctx, &rep, in.RTOTarget)
		if kind == DrillPITR {
			rto = time.Duration(rep.PITR.RTOSeconds) * time.Second
			rep.Breached, rep.BreachedAt, rep.Serving = rep.PITR.Breached, rep.PITR.BreachedAt, rep.PITR.Serving
		}
	}

	outcome, errText := DrillPass, ""
	switch {
	case restoreErr != nil:
		outcome, errText = DrillFail, restoreErr.Error()
	case pitrErr != nil:
		outcome, errText = DrillFail, "pitr: "+pitrErr.Error()
	case rep.Breached || (rep.PITR != nil && rep.PITR.Breached):
		outcome = DrillRTOExceeded
	}
	if dropErr != nil && errText == "" {
		errText = "scratch database not dropped: " + dropErr.Error()
	}
	return finish(outcome, errText, rto)
}

// raceRTO waits for f (its value into valuePtr) racing a durable timer of remaining: when the
// timer fires first, onBreach runs at once and the wait goes on, to measure the real time.
func raceRTO(ctx workflow.Context, f workflow.Future, remaining time.Duration, valuePtr any, onBreach func(now time.Time)) error {
	timerCtx, cancelTimer := workflow.WithCancel(ctx)
	defer cancelTimer()
	if remaining < time.Millisecond {
		remaining = time.Millisecond
	}
	timer := workflow.NewTimer(timerCtx, remaining)
	var err error
	done, fired := false, false
	for !done {
		sel := workflow.NewSelector(ctx)
		sel.AddFuture(f, func(f workflow.Future) {
			err = f.Get(ctx, valuePtr)
			done = true
		})
		if !fired {
			sel.AddFuture(timer, func(f workflow.Future) {
				if f.Get(ctx, nil) != nil {
					return
				}
				fired = true
				onBreach(workflow.Now(ctx))
			})
		}
		sel.Select(ctx)
	}
	return err
}

// drillPITR proves point-in-time recovery. It writes marker 1 into the production database and
// reads the moment just after its commit (the target), waits two seconds (the repository dates
// WAL segments to the second) and writes marker 2; it waits, without forcing a WAL switch,
// until marker 2's WAL is archived (that wait is the archive lag: the RPO); then the pitr
// worker restores the repository to the target on a scratch server, checks marker 1 is there
// and marker 2 is not, runs the serving check and removes the server, raced against the RTO
// target like the logical restore.
func drillPITR(ctx workflow.Context, rep *DrillReport, target time.Duration) error {
	var a *activities.Drill
	var p *activities.PITR
	pr := &PITRReport{RPOTargetSeconds: int(RPOTarget / time.Second), Steps: []DrillStep{}}
	rep.PITR = pr
	fail := func(err error) error {
		pr.Error = err.Error()
		return err
	}
	short := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 5},
	})
	stepStart := workflow.Now(ctx)
	var m1, m2 activities.DrillMarker
	if err := workflow.ExecuteActivity(short, a.WriteMarker, activities.WriteMarkerInput{DrillID: rep.DrillID, Seq: 1}).Get(ctx, &m1); err != nil {
		return fail(err)
	}
	if err := workflow.Sleep(ctx, 2*time.Second); err != nil {
		return fail(err)
	}
	if err := workflow.ExecuteActivity(short, a.WriteMarker, activities.WriteMarkerInput{DrillID: rep.DrillID, Seq: 2}).Get(ctx, &m2); err != nil {
		return fail(err)
	}
	pr.MarkerAt, pr.LaterMarkerAt, pr.TargetAt = m1.Commit.Time, m2.Commit.Time, m1.Commit.Time
	pr.Steps = append(pr.Steps, DrillStep{Name: "write markers", Seconds: workflow.Now(ctx).Sub(stepStart).Seconds()})

	stepStart = workflow.Now(ctx)
	waitCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: pitrArchiveWait + 2*time.Minute,
		HeartbeatTimeout:    time.Minute,
		RetryPolicy:         &temporal.RetryPolicy{InitialInterval: 5 * time.Second, MaximumAttempts: 3},
	})
	var lag pitr.Lag
	err := workflow.ExecuteActivity(waitCtx, a.WaitArchived, activities.WaitArchivedInput{Commit: m2.Commit, Max: pitrArchiveWait}).Get(ctx, &lag)
	var appErr *temporal.ApplicationError
	if err != nil && errors.As(err, &appErr) && appErr.HasDetails() {
		_ = appErr.Details(&lag)
	}
	pr.RPOSeconds, pr.RPOArchived = lag.Seconds, lag.Archived
	pr.Steps = append(pr.Steps, DrillStep{Name: "wait for the WAL archive (RPO)", Seconds: workflow.Now(ctx).Sub(stepStart).Seconds()})
	if err != nil {
		return fail(err)
	}

	restoreCtx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue: PITRTaskQueue,
		// No pitr worker (PITR configured on the drill worker only): a clear failure, not a
		// drill waiting for ever.
		ScheduleToStartTimeout: 10 * time.Minute,
		StartToCloseTimeout:    12 * time.Hour,
		HeartbeatTimeout:       2 * time.Minute,
		RetryPolicy:            &temporal.RetryPolicy{InitialInterval: 30 * time.Second, MaximumAttempts: 2},
	})
	start := workflow.Now(ctx)
	restore := workflow.ExecuteActivity(restoreCtx, p.DrillRestore, activities.PITRDrillInput{DrillID: rep.DrillID,
		Database: m1.Database, At: pr.TargetAt, Present: m1.Seq, Absent: m2.Seq})
	var res activities.PITRDrillResult
	err = raceRTO(ctx, restore, target, &res, func(now time.Time) {
		pr.Breached, pr.BreachedAt = true, &now
		workflow.GetLogger(ctx).Warn("drill: PITR restore past the RTO target; it goes on to measure the real RTO",
			"drill_id", rep.DrillID, "target", target.String())
		_ = workflow.UpsertTypedSearchAttributes(ctx, DrillOutcomeKey.ValueSet(DrillRTOExceeded))
	})
	end := workflow.Now(ctx)
	if err != nil && errors.As(err, &appErr) && appErr.HasDetails() {
		_ = appErr.Details(&res)
	}
	pr.Backup, pr.LastTransaction, pr.Serving = res.Backup, res.LastTransaction, res.Serving
	pr.MarkerFound, pr.LaterMarkerAbsent = res.MarkerFound, res.LaterMarkerAbsent
	pr.RTOSeconds = int(end.Sub(start) / time.Second)
	if !pr.Breached && end.Sub(start) > target {
		pr.Breached, pr.BreachedAt = true, &end
	}
	pr.Steps = append(pr.Steps, DrillStep{Name: "restore to the moment and verify (RTO)", Seconds: end.Sub(start).Seconds()},
		DrillStep{Name: "pgbackrest restore", Seconds: res.RestoreSeconds}, DrillStep{Name: "WAL replay to the moment", Seconds: res.RecoverySeconds})
	if res.Serving != nil {
		pr.Steps = append(pr.Steps, DrillStep{Name: "serving check", Seconds: res.ServingSeconds})
	}
	pr.Steps = append(pr.Steps, DrillStep{Name: "marker check", Seconds: res.VerifySeconds})
	if err != nil {
		var timeout *temporal.TimeoutError
		if errors.As(err, &timeout) && timeout.TimeoutType() == enumspb.TIMEOUT_TYPE_SCHEDULE_TO_START {
			err = fmt.Errorf("no worker took the restore on the %s task queue within 10m: run the pitr worker beside the database: %w", PITRTaskQueue, err)
		}
		return fail(err)
	}
	pr.Verified = true
	return nil
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
	case r.Breached || (r.Outcome == DrillRTOExceeded && (r.PITR == nil || !r.PITR.Breached)):
		out = append(out, fmt.Sprintf("RTO %ds exceeds the %ds target: restore with more pg_restore jobs, a faster network to S3, or raise the target.", r.RTOSeconds, r.RTOTargetSeconds))
	case r.RTOTargetSeconds > 0 && 2*r.RTOSeconds > r.RTOTargetSeconds:
		out = append(out, fmt.Sprintf("RTO is %d%% of the target: the target is at risk as the database grows.", 100*r.RTOSeconds/r.RTOTargetSeconds))
	}
	if p := r.PITR; p != nil {
		switch {
		case p.Error != "" && !p.RPOArchived:
			out = append(out, "WAL archiving did not reach the repository: check pg_stat_archiver (last_failed_wal) and the server log for archive-push errors; until it does, the RPO is the last nightly backup.")
		case p.Error != "":
			out = append(out, "The restore to a moment failed: fix the cause before relying on point-in-time recovery (`orchestrator restore --pitr --at` does the same restore).")
		case p.RPOSeconds > float64(p.RPOTargetSeconds):
			out = append(out, fmt.Sprintf("Archive lag (RPO) %.0fs exceeds the %ds target: lower archive_timeout or check archive-push's speed to S3.", p.RPOSeconds, p.RPOTargetSeconds))
		}
		if p.Breached && r.Kind == DrillBoth {
			out = append(out, fmt.Sprintf("The restore to a moment took %ds, over the %ds RTO target: a more recent full backup (less WAL to replay) or a higher PITR_PROCESS_MAX shortens it.", p.RTOSeconds, r.RTOTargetSeconds))
		}
	}
	return out
}
