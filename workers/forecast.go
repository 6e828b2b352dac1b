package workers

import (
	"context"

	"go.temporal.io/sdk/worker"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/workflows"
)

// forecastQueues are the task queues of the forecast domain: the refresh workflow and its
// batch activity.
func forecastQueues() []queue {
	return []queue{{
		name: workflows.ForecastTaskQueue,
		// A batch uses every core itself; two at a time keep the database busy while one
		// computes.
		options: worker.Options{MaxConcurrentActivityExecutionSize: 2},
		register: func(ctx context.Context, w worker.Registry, d Deps) (func(), error) {
			w.RegisterWorkflow(workflows.ForecastRefreshWorkflow)
			w.RegisterActivity(&activities.Forecast{Pool: d.Pool, Paths: d.Config.Forecast.Paths})
			return nil, nil
		},
	}}
}

// forecastSchedules is the daily forecast refresh of every creator (overlap skip).
func forecastSchedules(cfg *config.Config) []schedule {
	return []schedule{{
		id:         workflows.ForecastRefreshScheduleID,
		cron:       cfg.Forecast.Schedule,
		workflow:   workflows.ForecastRefreshWorkflow,
		args:       []any{workflows.ForecastRefreshInput{BatchSize: cfg.Forecast.BatchSize}},
		taskQueue:  workflows.ForecastTaskQueue,
		workflowID: "forecast-refresh",
		note:       "daily revenue forecast of every creator",
	}}
}
