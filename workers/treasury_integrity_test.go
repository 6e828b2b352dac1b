package workers

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/chain"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workflows"
)

// End to end on the embedded Temporal server: a bailout event is anchored on the (local)
// network by the worker that hears it, the backup manifest's anchor reads it back, and the
// daily reconciliation (run here on demand) appends ReconcileDrift when the books and the
// chain disagree. The schedules exist with overlap skip.
func TestTreasuryIntegrityEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c := testharness.Temporal(t)
	pg := testharness.FreshPG(t)
	tr := db.NewTreasury(pg.TreasuryPool)

	hz := localhorizon.New(network.TestNetworkPassphrase)
	srv := httptest.NewServer(hz)
	defer srv.Close()
	treasury, anchor := keypair.MustRandom(), keypair.MustRandom()
	hz.AddAccount(treasury.Address(), 1, nil)
	hz.AddAccount(anchor.Address(), 1, nil)
	hz.Fund(anchor.Address(), localhorizon.Native, 10*contracts.StroopsPerUnit)
	hz.Fund(treasury.Address(), "XLM", 2*contracts.BaseReserveStroops) // holds none of the fund
	seedFile := filepath.Join(t.TempDir(), "anchor.secret")
	require.NoError(t, os.WriteFile(seedFile, []byte(anchor.Seed()+"\n"), 0o600))

	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.DatabaseURL, cfg.Treasury.DatabaseURL = pg.URL, pg.TreasuryURL
	cfg.Treasury.HorizonURL, cfg.Treasury.NetworkPassphrase, cfg.Treasury.Account = srv.URL, network.TestNetworkPassphrase, treasury.Address()
	cfg.Treasury.Integrity.AnchorAccount, cfg.Treasury.Integrity.AnchorSeedFile = anchor.Address(), seedFile
	require.NoError(t, EnsureSearchAttributes(ctx, c, "default"))
	require.NoError(t, ApplySchedules(ctx, c, cfg))
	for _, id := range []string{"treasury-reconcile-daily", "treasury-anchor-daily"} {
		d, err := c.ScheduleClient().GetHandle(ctx, id).Describe(ctx)
		require.NoError(t, err, id)
		require.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, d.Schedule.Policy.Overlap)
	}

	deps := Deps{Client: c, Pool: pg.Pool, TreasuryPool: pg.TreasuryPool, Config: cfg, Logger: testharness.Logger(t)}
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- Run(wctx, deps, []string{workflows.TreasuryQueue}) }()
	defer func() { stop(); <-done }()

	_, err = tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 100 * contracts.StroopsPerUnit, OccurredAt: time.Now()})
	require.NoError(t, err)
	id := uuid.New()
	now := time.Now().UTC().Truncate(time.Second)
	_, err = tr.ReserveBailout(ctx, db.Bailout{ID: id, WorkflowID: "bailout-" + id.String(), Asset: "XLM", AmountStroops: contracts.StroopsPerUnit,
		Destination: keypair.MustRandom().Address(), Reason: "e2e", RequestedAt: now, UnlockAt: now.Add(time.Hour), ExpiresAt: now.Add(2 * time.Hour)})
	require.NoError(t, err)
	head, err := tr.Head(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, head.Seq, "yield, then BailoutRequested")

	// The bailout event is anchored without waiting for the daily schedule.
	ch := chain.New(srv.URL, network.TestNetworkPassphrase, nil)
	var latest contracts.Anchor
	require.Eventually(t, func() bool {
		a, found, err := ch.LatestAnchor(ctx, anchor.Address())
		latest = a
		return err == nil && found && a.ChainHead == head
	}, time.Minute, 200*time.Millisecond, "the head after BailoutRequested is published")
	// The worker records the anchor in the books after the network accepted it: the record may
	// trail what the chain shows by a moment (CI saw the read land between the two).
	var recorded contracts.Anchor
	require.Eventually(t, func() bool {
		r, found, err := tr.AnchoredAt(ctx, head)
		recorded = r
		return err == nil && found
	}, 10*time.Second, 50*time.Millisecond, "the published anchor is recorded in the books")
	require.Equal(t, latest.TxHash, recorded.TxHash)

	// The daily anchoring run finds the head already anchored: nothing is submitted again.
	before := hz.Submitted()
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-anchor-" + t.Name(), TaskQueue: workflows.TreasuryQueue},
		workflows.TreasuryAnchorWorkflowName)
	require.NoError(t, err)
	var ares activities.AnchorResult
	require.NoError(t, run.Get(ctx, &ares))
	require.True(t, ares.Already)
	require.Equal(t, before, hz.Submitted())

	// What a backup manifest records.
	m := activities.LatestAnchorForManifest(ch, anchor.Address())(ctx)
	require.Equal(t, head.Seq, m.Seq)
	require.Equal(t, head.Hash, m.Head)
	require.Equal(t, latest.TxHash, m.TxHash)
	require.Empty(t, m.Error)

	// Reconciliation: the books hold 1 XLM of fees the chain never received.
	run, err = c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "e2e-reconcile-" + t.Name(), TaskQueue: workflows.TreasuryQueue},
		workflows.TreasuryReconcileWorkflowName)
	require.NoError(t, err)
	var rep contracts.ReconcileReport
	require.NoError(t, run.Get(ctx, &rep))
	require.True(t, rep.Drift())
	evs, err := tr.RecentEvents(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, db.EventReconcileDrift, evs[0].Type)
	require.Contains(t, string(evs[0].Payload), "the books hold 1.0000000")
	n, err := tr.VerifyChain(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 3, n)
}
