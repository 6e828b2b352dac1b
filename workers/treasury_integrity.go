package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/stellar/go-stellar-sdk/keypair"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/chain"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/workflows"
)

// registerTreasuryIntegrity adds reconciliation and anchoring to the treasury queue and, when
// an anchor account is configured, listens for bailout events (db.HeadChannel) to anchor each
// new head at once. pool is the treasury's pool.
func registerTreasuryIntegrity(ctx context.Context, w worker.Registry, d Deps, pool *pgxpool.Pool) (func(), error) {
	t := d.Config.Treasury
	key, err := anchorKey(t.Integrity)
	if err != nil {
		return nil, err
	}
	w.RegisterWorkflowWithOptions(workflows.TreasuryAnchor, workflow.RegisterOptions{Name: workflows.TreasuryAnchorWorkflowName})
	w.RegisterWorkflowWithOptions(workflows.TreasuryReconcile, workflow.RegisterOptions{Name: workflows.TreasuryReconcileWorkflowName})
	w.RegisterActivityWithOptions(&activities.TreasuryIntegrity{
		Store: db.NewTreasury(pool), Chain: chain.New(t.HorizonURL, t.NetworkPassphrase, nil), Config: t, AnchorKey: key,
	}, activity.RegisterOptions{SkipInvalidStructFunctions: true})
	if key == nil || d.Client == nil {
		return nil, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		listenHeads(ctx, pool, d.Client, d.Logger)
	}()
	return func() { cancel(); wg.Wait() }, nil
}

// anchorKey reads TREASURY_ANCHOR_SEED_FILE; nil when unset.
func anchorKey(in config.Integrity) (*keypair.Full, error) {
	if in.AnchorSeedFile == "" {
		return nil, nil
	}
	seed, err := readSecretFile(in.AnchorSeedFile)
	if err != nil {
		return nil, fmt.Errorf("TREASURY_ANCHOR_SEED_FILE: %w", err)
	}
	kp, err := keypair.ParseFull(seed)
	if err != nil {
		return nil, errors.New("TREASURY_ANCHOR_SEED_FILE: not a Stellar secret seed (S...)")
	}
	if in.AnchorAccount != "" && in.AnchorAccount != kp.Address() {
		return nil, fmt.Errorf("TREASURY_ANCHOR_SEED_FILE: the seed is %s's, not TREASURY_ANCHOR_ACCOUNT's (%s)", kp.Address(), in.AnchorAccount)
	}
	return kp, nil
}

// listenHeads starts a TreasuryAnchor run for every bailout event the database announces,
// with the id TreasuryAnchorEventWorkflowID(seq): every worker listens, one run starts. On
// (re)connecting it anchors the current head too, for events announced while nobody
// listened; the daily schedule catches anything else.
func listenHeads(ctx context.Context, pool *pgxpool.Pool, tc client.Client, logger *slog.Logger) {
	start := func(seq int64) {
		_, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
			ID: workflows.TreasuryAnchorEventWorkflowID(seq), TaskQueue: workflows.TreasuryQueue,
			WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
			WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		}, workflows.TreasuryAnchorWorkflowName)
		var started *serviceerror.WorkflowExecutionAlreadyStarted
		if err != nil && !errors.As(err, &started) && !errors.Is(err, temporal.ErrScheduleAlreadyRunning) && ctx.Err() == nil {
			logger.Warn("treasury anchor: start", "seq", seq, "error", err)
		}
	}
	for ctx.Err() == nil {
		err := func() error {
			conn, err := pool.Acquire(ctx)
			if err != nil {
				return err
			}
			defer func() {
				_, _ = conn.Exec(context.WithoutCancel(ctx), "UNLISTEN *")
				conn.Release()
			}()
			if _, err := conn.Exec(ctx, "LISTEN "+db.HeadChannel); err != nil {
				return err
			}
			if head, err := db.NewTreasury(pool).Head(ctx); err == nil && head.Seq > 0 {
				start(head.Seq)
			}
			for {
				n, err := conn.Conn().WaitForNotification(ctx)
				if err != nil {
					return err
				}
				if seq, err := strconv.ParseInt(n.Payload, 10, 64); err == nil {
					start(seq)
				}
			}
		}()
		if ctx.Err() != nil {
			return
		}
		logger.Warn("treasury anchor: listening for bailout events", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// treasuryIntegritySchedules are the daily reconciliation and the daily anchoring.
func treasuryIntegritySchedules(cfg *config.Config) []schedule {
	in := cfg.Treasury.Integrity
	return []schedule{
		{
			id: "treasury-reconcile-daily", cron: in.ReconcileSchedule, workflow: workflows.TreasuryReconcileWorkflowName,
			taskQueue: workflows.TreasuryQueue, workflowID: "treasury-reconcile-daily",
			note: "Daily reconciliation of the insurance fund with the chain (TREASURY_RECONCILE_SCHEDULE)",
		},
		{
			id: "treasury-anchor-daily", cron: in.AnchorSchedule, workflow: workflows.TreasuryAnchorWorkflowName,
			taskQueue: workflows.TreasuryQueue, workflowID: "treasury-anchor-daily",
			note: "Daily anchoring of the treasury chain's head on Stellar (TREASURY_ANCHOR_SCHEDULE)",
		},
	}
}

// manifestAnchor reads the newest treasury anchor for each backup manifest; nil when no
// anchor account is configured.
func manifestAnchor(cfg *config.Config) func(context.Context) *backup.TreasuryAnchor {
	t := cfg.Treasury
	if t.Integrity.AnchorAccount == "" || t.HorizonURL == "" {
		return nil
	}
	return activities.LatestAnchorForManifest(chain.New(t.HorizonURL, t.NetworkPassphrase, nil), t.Integrity.AnchorAccount)
}
