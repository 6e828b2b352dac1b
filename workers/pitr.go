package workers

import (
	"context"
	"errors"
	"os"
	"time"

	"go.temporal.io/sdk/activity"
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

func registerPITR(_ context.Context, w worker.Registry, d Deps) (func(), error) {
	a := &activities.PITR{HeartbeatEvery: 30 * time.Second,
		RuntimeTemplate: d.Config.DatabaseURL, TreasuryTemplate: d.Config.Treasury.DatabaseURL}
	cfg, err := pitr.LoadConfig(os.LookupEnv)
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
	return nil, nil
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
