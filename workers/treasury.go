package workers

import (
	"context"
	"fmt"
	"os"

	"github.com/stellar/go-stellar-sdk/keypair"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
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
	channels, err := loadChannels(d.Config.Treasury.ChannelSeedsFile)
	if err != nil {
		if cleanup != nil {
			cleanup()
		}
		return nil, err
	}
	store := db.NewTreasury(pool)
	if len(channels) > 0 {
		accounts := make([]string, 0, len(channels))
		for a := range channels {
			accounts = append(accounts, a)
		}
		if _, err := store.RegisterChannels(ctx, accounts); err != nil {
			if cleanup != nil {
				cleanup()
			}
			return nil, fmt.Errorf("register channel accounts: %w", err)
		}
	}
	w.RegisterWorkflowWithOptions(workflows.Bailout, workflow.RegisterOptions{Name: workflows.BailoutWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.BailoutSweep, workflow.RegisterOptions{Name: workflows.BailoutSweepWorkflowName})
	w.RegisterActivityWithOptions(&activities.Treasury{Store: store, Config: d.Config.Treasury, Channels: channels, Temporal: d.Client},
		activity.RegisterOptions{SkipInvalidStructFunctions: true})
	stop, err := registerTreasuryIntegrity(ctx, w, d, pool)
	if stop != nil {
		inner := cleanup
		cleanup = func() {
			stop()
			if inner != nil {
				inner()
			}
		}
	}
	return cleanup, err
}

// loadChannels reads the channel accounts' seeds (TREASURY_CHANNEL_SEEDS_FILE); none is
// fine for a worker that runs no bailout (requests are then refused: no free channel).
func loadChannels(path string) (map[string]*keypair.Full, error) {
	if path == "" {
		return nil, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("TREASURY_CHANNEL_SEEDS_FILE: %w", err)
	}
	seeds, err := contracts.ParseChannelSeeds(string(raw))
	if err != nil {
		return nil, fmt.Errorf("TREASURY_CHANNEL_SEEDS_FILE: %w", err)
	}
	return seeds, nil
}

// treasurySchedules is the hourly sweep of bailout runs that ended without closing.
func treasurySchedules(*config.Config) []schedule {
	return []schedule{{
		id: workflows.BailoutSweepScheduleID, cron: workflows.BailoutSweepCron, workflow: workflows.BailoutSweepWorkflowName,
		taskQueue: workflows.TreasuryQueue, workflowID: "treasury-bailout-sweep",
		note: "release reservations of terminated or timed-out bailout runs",
	}}
}
