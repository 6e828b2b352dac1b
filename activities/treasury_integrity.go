package activities

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/stellar/go-stellar-sdk/keypair"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/chain"
	"github.com/creatorvault/orchestrator/internal/config"
)

var (
	reconcileDifferences = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_treasury_reconcile_differences",
		Help: "Differences between the treasury's books and the chain found by the last reconciliation (0 = in step).",
	})
	reconcileLastRun = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_treasury_reconcile_last_run_timestamp_seconds",
		Help: "When the last reconciliation finished (Unix seconds).",
	})
	anchoredSeq = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_treasury_anchored_seq",
		Help: "Sequence number of the newest treasury event anchored on Stellar.",
	})
)

// TreasuryIntegrity holds what the reconciliation and anchoring activities need.
type TreasuryIntegrity struct {
	Store  *db.Treasury
	Chain  *chain.Client
	Config config.Treasury
	// AnchorKey signs anchor transactions (TREASURY_ANCHOR_SEED_FILE); nil refuses to anchor.
	AnchorKey *keypair.Full
}

// AnchorResult is the head an anchoring run left published.
type AnchorResult struct {
	Anchor contracts.Anchor
	// Already is true when that head had been anchored before (nothing submitted).
	Already bool
	// Empty is true when the chain has no event yet.
	Empty bool
}

// PublishAnchor publishes the chain's current head from the anchor account, once: a head
// already anchored (recorded here, or found as the account's newest anchor on chain after a
// lost answer) is not published again.
func (a *TreasuryIntegrity) PublishAnchor(ctx context.Context) (AnchorResult, error) {
	head, err := a.Store.Head(ctx)
	if err != nil {
		return AnchorResult{}, err
	}
	if head.Seq == 0 {
		return AnchorResult{Empty: true}, nil
	}
	if done, found, err := a.Store.AnchoredAt(ctx, head); err != nil || found {
		return AnchorResult{Anchor: done, Already: found}, err
	}
	if a.AnchorKey == nil {
		return AnchorResult{}, temporal.NewNonRetryableApplicationError(
			"TREASURY_ANCHOR_SEED_FILE is not set on this worker: the chain head cannot be anchored", "anchor_config", nil)
	}
	anchor, err := a.Chain.Publish(ctx, a.AnchorKey, head, time.Now())
	if err != nil {
		return AnchorResult{}, err
	}
	if err := a.Store.RecordAnchor(ctx, anchor); err != nil {
		return AnchorResult{}, err
	}
	anchoredSeq.Set(float64(anchor.Seq))
	activity.GetLogger(ctx).Info("treasury chain head anchored", "seq", anchor.Seq, "head", anchor.Hash, "tx", anchor.TxHash)
	return AnchorResult{Anchor: anchor}, nil
}

// Reconcile compares the fund and every executed bailout with the chain, sets the metric,
// and on any difference appends ReconcileDrift (once per workflow run).
func (a *TreasuryIntegrity) Reconcile(ctx context.Context) (contracts.ReconcileReport, error) {
	if !contracts.ValidAccount(a.Config.Account) {
		return contracts.ReconcileReport{}, temporal.NewNonRetryableApplicationError("TREASURY_ACCOUNT is not a Stellar account", "config", nil)
	}
	r, err := a.Chain.Reconcile(ctx, a.Store, a.Config.Account, a.Config.USDCIssuer)
	if err != nil {
		return r, err
	}
	if r.Drift() {
		info := activity.GetInfo(ctx)
		if err := a.Store.RecordReconcileDrift(ctx, info.WorkflowExecution.RunID, time.Now(), r); err != nil {
			return r, err
		}
		activity.GetLogger(ctx).Error("treasury books and chain disagree", "differences", len(r.Differences))
	}
	reconcileDifferences.Set(float64(len(r.Differences)))
	reconcileLastRun.SetToCurrentTime()
	return r, nil
}

// treasuryAnchor reads the newest anchor for a backup's manifest, if configured.
func (a *Backup) treasuryAnchor(ctx context.Context) *backup.TreasuryAnchor {
	if a.TreasuryAnchor == nil {
		return nil
	}
	return a.TreasuryAnchor(ctx)
}

// LatestAnchorForManifest reads the anchor account's newest published head from Horizon, for
// Backup.TreasuryAnchor. A failure is recorded in the manifest, not raised: a backup must not
// depend on Horizon.
func LatestAnchorForManifest(ch *chain.Client, account string) func(context.Context) *backup.TreasuryAnchor {
	return func(ctx context.Context) *backup.TreasuryAnchor {
		out := &backup.TreasuryAnchor{Account: account}
		an, found, err := ch.LatestAnchor(ctx, account)
		switch {
		case err != nil:
			out.Error = err.Error()
		case !found:
			out.Error = "no anchor published yet"
		default:
			out.Seq, out.Head, out.TxHash, out.At = an.Seq, an.Hash, an.TxHash, an.At
		}
		return out
	}
}
