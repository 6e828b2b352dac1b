package workers

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/pitr"
	"github.com/creatorvault/orchestrator/workflows"
)

// pitrQueues is point-in-time recovery's task queue: its worker runs beside the database.
func pitrQueues() []queue {
	return []queue{{name: workflows.PITRTaskQueue, options: worker.Options{MaxConcurrentActivityExecutionSize: 1}, register: registerPITR}}
}

// pitrInfoEvery is how often the worker reads the repository's catalog for the metrics.
const pitrInfoEvery = 10 * time.Minute

func registerPITR(ctx context.Context, w worker.Registry, d Deps) (func(), error) {
	a := &activities.PITR{HeartbeatEvery: 30 * time.Second}
	lookup := os.LookupEnv
	if d.Config != nil {
		lookup = d.Config.PITR.Lookup(os.LookupEnv)
		a.RuntimeTemplate, a.TreasuryTemplate = d.Config.DatabaseURL, d.Config.Treasury.DatabaseURL
	}
	cfg, err := pitr.LoadConfig(lookup)
	switch {
	case errors.Is(err, pitr.ErrNoCipherPass):
		d.Logger.Warn("pitr: PITR_CIPHER_PASS is not set: point-in-time recovery is off, physical backups fail until it is")
	case err != nil:
		return nil, err
	default:
		if a.Engine, err = pitr.New(cfg); err != nil {
			return nil, err
		}
		if err := a.Engine.WriteConfig(); err != nil {
			return nil, err
		}
	}
	w.RegisterWorkflowWithOptions(workflows.PhysicalBackupWorkflow, workflow.RegisterOptions{Name: "PhysicalBackupWorkflow"})
	w.RegisterActivityWithOptions(a, activity.RegisterOptions{})
	if a.Engine == nil {
		return nil, nil
	}
	// Watched: the archiver of DATABASE_URL's server (the cluster this worker runs beside) at
	// every scrape, and the repository's catalog every few minutes.
	var stopArchive func()
	if d.Pool != nil {
		stopArchive = pitr.WatchArchive(d.Pool)
	}
	// The stanza is made at start, not first at the next scheduled backup: until it exists
	// every archive-push fails and the server keeps its WAL. Before the worker takes tasks, as
	// stanza-create locks the stanza against the workflow's own.
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	if err := a.Engine.StanzaCreate(sctx); err != nil && ctx.Err() == nil {
		d.Logger.Warn("pitr: stanza-create at start failed; archiving fails until it succeeds (PhysicalBackupWorkflow retries it)", "error", err)
	}
	cancel()
	wctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); a.Engine.WatchInfo(wctx, pitrInfoEvery, d.Logger) }()
	return func() {
		stop()
		<-done
		if stopArchive != nil {
			stopArchive()
		}
	}, nil
}

// pitrSchedules are the weekly full and daily differential physical backups, when PITR is on.
func pitrSchedules(cfg *config.Config) []schedule {
	if !cfg.PITR.Enabled {
		return nil
	}
	return []schedule{
		{
			id: "pitr-full-weekly", cron: cfg.PITR.FullSchedule, workflow: "PhysicalBackupWorkflow",
			args: []any{workflows.PhysicalBackupInput{Kind: "full"}}, taskQueue: workflows.PITRTaskQueue,
			workflowID: "pitr-full-weekly", note: "Weekly full physical backup with pgBackRest (PITR_FULL_SCHEDULE)",
		},
		{
			id: "pitr-diff-daily", cron: cfg.PITR.DiffSchedule, workflow: "PhysicalBackupWorkflow",
			args: []any{workflows.PhysicalBackupInput{Kind: "diff"}}, taskQueue: workflows.PITRTaskQueue,
			workflowID: "pitr-diff-daily", note: "Daily differential physical backup with pgBackRest (PITR_DIFF_SCHEDULE)",
		},
	}
}

// pitrScheduleIDs are the Schedules pitrSchedules keeps when PITR is on.
var pitrScheduleIDs = []string{"pitr-full-weekly", "pitr-diff-daily"}

// RemovePITRSchedules deletes the PITR Schedules where they exist. It is for a process that
// owns all of the system's Schedules and knows PITR is off — dev, whose earlier run may have
// had its own archiving cluster — so that runs that could only fail are not started. In
// production several workers with different settings apply Schedules, and none removes them.
func RemovePITRSchedules(ctx context.Context, c client.Client) error {
	for _, id := range pitrScheduleIDs {
		err := c.ScheduleClient().GetHandle(ctx, id).Delete(ctx)
		var nf *serviceerror.NotFound
		if err != nil && !errors.As(err, &nf) {
			return fmt.Errorf("schedule %s: %w", id, err)
		}
	}
	return nil
}
