package workers

import (
	"context"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/workflows"
)

// treasuryQueues are the task queues of the treasury domain.
func treasuryQueues() []queue {
	return []queue{{name: workflows.TreasuryQueue, register: registerTreasury}}
}

// registerTreasury adds the bailout workflow and the treasury activities. The activities use
// the treasury login's pool (Deps.TreasuryPool, else their own on TREASURY_DATABASE_URL): the
// runtime role has no rights on schema treasury.
func registerTreasury(ctx context.Context, w worker.Registry, d Deps) (func(), error) {
	pool := d.Pool
	var cleanup func()
	if d.TreasuryPool != nil {
		pool = d.TreasuryPool
	} else if url := d.Config.Treasury.DatabaseURL; url != "" {
		p, err := db.Open(ctx, url)
		if err != nil {
			return nil, err
		}
		pool, cleanup = p, p.Close
	}
	w.RegisterWorkflowWithOptions(workflows.Bailout, workflow.RegisterOptions{Name: workflows.BailoutWorkflowName})
	w.RegisterActivityWithOptions(&activities.Treasury{Store: db.NewTreasury(pool), Config: d.Config.Treasury},
		activity.RegisterOptions{SkipInvalidStructFunctions: true})
	return cleanup, nil
}
