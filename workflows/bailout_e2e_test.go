package workflows_test

import (
	"context"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/clients/horizonclient"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/chain"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workers"
	"github.com/creatorvault/orchestrator/workflows"
)

// channelsHistoryFile is the checked-in history of a bailout on a channel account (the second
// version of the workflow). Regenerate it with
// UPDATE_BAILOUT_HISTORY=1 go test ./workflows/ -run TestBailoutsPendingTogether.
// testdata/bailout_history.json, recorded before channel accounts, is never regenerated.
const channelsHistoryFile = "testdata/bailout_channels_history.json"

// chainEnv is a treasury on the embedded Temporal server, real PostgreSQL (as the treasury
// login) and the local Horizon, with a worker of the treasury queue running.
type chainEnv struct {
	t        *testing.T
	ctx      context.Context
	tc       client.Client
	pg       *testharness.PG
	store    *db.Treasury
	hz       *localhorizon.Server
	url      string
	treasury string
	council  []*keypair.Full
	channels []*keypair.Full
	cfg      *config.Config
}

// minBalance is what the multisig treasury (five signers, no trustline) must keep on chain.
const minBalance = (2 + 5) * localhorizon.BaseReserve

// newChainEnv funds the books with fund stroops of XLM and the chain with chainFund spendable
// stroops, and starts a worker holding n channel accounts whose timelock is timelock.
func newChainEnv(t *testing.T, n int, timelock time.Duration, fund, chainFund int64) *chainEnv {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	t.Cleanup(cancel)
	e := &chainEnv{t: t, ctx: ctx, pg: testharness.FreshPG(t), tc: testharness.Temporal(t)}
	require.NoError(t, workers.EnsureSearchAttributes(ctx, e.tc, "default"))
	e.store = db.NewTreasury(e.pg.TreasuryPool)
	var keys []string
	for range 5 {
		kp := keypair.MustRandom()
		e.council = append(e.council, kp)
		keys = append(keys, kp.Address())
	}
	e.treasury = keypair.MustRandom().Address()
	e.hz = localhorizon.New(config.TestnetPassphrase)
	e.hz.AddAccount(e.treasury, 4_000_000, keys)
	e.hz.Fund(e.treasury, localhorizon.Native, minBalance+chainFund)
	e.channels = e.hz.NewChannels(n)
	seeds := filepath.Join(t.TempDir(), "channels.secret")
	require.NoError(t, os.WriteFile(seeds, localhorizon.SeedsFile(e.channels), 0o600))
	srv := httptest.NewServer(e.hz)
	t.Cleanup(srv.Close)
	e.url = srv.URL

	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.Treasury.HorizonURL = srv.URL
	cfg.Treasury.Account = e.treasury
	cfg.Treasury.CouncilKeys = keys
	cfg.Treasury.NetworkPassphrase = config.TestnetPassphrase
	cfg.Treasury.Timelock = timelock
	cfg.Treasury.GracePeriod = time.Hour
	cfg.Treasury.ChannelSeedsFile = seeds
	e.cfg = cfg

	_, err = e.store.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 100 * fund, OccurredAt: time.Now()})
	require.NoError(t, err)
	require.Equal(t, fund, balance(t, e.store, "XLM").Balance)

	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- workers.Run(wctx, workers.Deps{Client: e.tc, Pool: e.pg.Pool, TreasuryPool: e.pg.TreasuryPool, Config: cfg,
			Logger: testharness.Logger(t)}, []string{workflows.TreasuryQueue})
	}()
	t.Cleanup(func() { stop(); <-done })
	require.Eventually(t, func() bool {
		free, err := e.store.FreeChannels(ctx)
		return err == nil && free == n
	}, 30*time.Second, 50*time.Millisecond, "the worker registers its channels")
	return e
}

// request does what POST /api/v1/bailouts does: the treasury records the request, then its
// workflow starts with nothing but the request.
func (e *chainEnv) request(amount int64) (uuid.UUID, client.WorkflowRun) {
	dest := keypair.MustRandom().Address()
	e.hz.AddAccount(dest, 1<<32, nil) // the network refuses a payment to no account (op_no_destination)
	req := contracts.BailoutRequest{Asset: "XLM", AmountStroops: amount, Destination: dest, Reason: "e2e " + uuid.NewString()}
	id := contracts.BailoutID(req)
	rec, err := e.store.RecordBailoutRequest(e.ctx, db.Bailout{ID: id, WorkflowID: workflows.BailoutWorkflowID(id), Asset: req.Asset,
		AmountStroops: req.AmountStroops, Destination: req.Destination, Reason: req.Reason, RequestedAt: time.Now().UTC().Truncate(time.Microsecond)})
	require.NoError(e.t, err)
	return id, e.start(id, workflows.BailoutInput{ID: id, Request: req, RequestedAt: rec.RequestedAt})
}

func (e *chainEnv) start(id uuid.UUID, in workflows.BailoutInput) client.WorkflowRun {
	run, err := e.tc.ExecuteWorkflow(e.ctx, client.StartWorkflowOptions{ID: workflows.BailoutWorkflowID(id), TaskQueue: workflows.TreasuryQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, WorkflowExecutionErrorWhenAlreadyStarted: true},
		workflows.BailoutWorkflowName, in)
	require.NoError(e.t, err)
	return run
}

func (e *chainEnv) pending(run client.WorkflowRun) workflows.BailoutStatus {
	var st workflows.BailoutStatus
	require.Eventually(e.t, func() bool {
		v, err := e.tc.QueryWorkflow(e.ctx, run.GetID(), "", workflows.BailoutStatusQuery)
		return err == nil && v.Get(&st) == nil && st.State == workflows.StatePending
	}, 30*time.Second, 50*time.Millisecond)
	return st
}

func (e *chainEnv) update(run client.WorkflowRun, name string, arg any) error {
	u, err := e.tc.UpdateWorkflow(e.ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateName: name,
		Args: []any{arg}, WaitForStage: client.WorkflowUpdateStageCompleted})
	if err != nil {
		return err
	}
	return u.Get(e.ctx, nil)
}

func sign(t *testing.T, kp *keypair.Full, msg []byte) string {
	sig, err := kp.Sign(msg)
	require.NoError(t, err)
	return contracts.SignatureBase64(sig)
}

// approve has the council members of order sign the envelope of st.
func (e *chainEnv) approve(run client.WorkflowRun, st workflows.BailoutStatus, order ...int) {
	hash, err := hex.DecodeString(st.TxHash)
	require.NoError(e.t, err)
	for _, i := range order {
		kp := e.council[i]
		require.NoError(e.t, e.update(run, workflows.BailoutApprove, workflows.Approval{Signer: kp.Address(), Signature: sign(e.t, kp, hash)}))
	}
}

func (e *chainEnv) result(run client.WorkflowRun) workflows.BailoutStatus {
	var st workflows.BailoutStatus
	require.NoError(e.t, run.Get(e.ctx, &st))
	return st
}

func (e *chainEnv) reconcile() contracts.ReconcileReport {
	r, err := chain.New(e.url, config.TestnetPassphrase, nil).Reconcile(e.ctx, e.store, e.treasury, e.cfg.Treasury.USDCIssuer)
	require.NoError(e.t, err)
	return r
}

func (e *chainEnv) eventTypes(id uuid.UUID) []string {
	evs, err := e.store.BailoutEvents(e.ctx, id)
	require.NoError(e.t, err)
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

// Three bailouts pending at once, each on its own channel, approved in different orders and
// executing in the order 3, 1, 2: all three pay, each is debited once, and the books
// reconcile with the chain. Before channel accounts the three envelopes shared the
// treasury's sequence and only the first to execute could ever be valid.
func TestBailoutsPendingTogetherExecuteInAnyOrder(t *testing.T) {
	const fund = 1_000_000_000 // 100 XLM in the books and spendable on chain
	e := newChainEnv(t, 3, 3*time.Second, fund, fund)
	amounts := []int64{100_000_000, 200_000_000, 300_000_000}
	var ids []uuid.UUID
	var runs []client.WorkflowRun
	var sts []workflows.BailoutStatus
	for _, a := range amounts {
		id, run := e.request(a)
		ids, runs = append(ids, id), append(runs, run)
		sts = append(sts, e.pending(run))
	}
	require.Equal(t, db.FundBalance{Asset: "XLM", Balance: fund, Reserved: 600_000_000}, balance(t, e.store, "XLM"))
	free, err := e.store.FreeChannels(e.ctx)
	require.NoError(t, err)
	require.Zero(t, free)
	seen := map[string]bool{}
	for _, st := range sts {
		require.False(t, seen[st.Channel], "each bailout has its own channel")
		seen[st.Channel] = true
		env, err := contracts.DecodeEnvelope(st.TxXDR)
		require.NoError(t, err)
		require.Equal(t, st.Channel, env.SourceAccount().AccountID, "the channel is the transaction source")
		require.Equal(t, e.treasury, env.Operations()[0].GetSourceAccount(), "the treasury is the payment's source")
	}
	// Four approvals each, in different orders, before the timelock ends.
	e.approve(runs[0], sts[0], 0, 1, 2, 3)
	e.approve(runs[1], sts[1], 4, 3, 2, 1)
	e.approve(runs[2], sts[2], 2, 4, 0, 1)
	time.Sleep(time.Until(sts[2].UnlockAt.Add(time.Second)))

	for _, k := range []struct{ i, member int }{{2, 3}, {0, 4}, {1, 0}} { // 3, then 1, then 2
		e.approve(runs[k.i], sts[k.i], k.member)
		st := e.result(runs[k.i])
		require.Equal(t, workflows.StateExecuted, st.State, "bailout %d: %s", k.i+1, st.Error)
		require.True(t, e.hz.Successful(st.TxHash))
	}
	require.Equal(t, 3, e.hz.Submitted(), "one transaction each")
	require.EqualValues(t, minBalance+fund-600_000_000, e.hz.Balance(e.treasury, localhorizon.Native))
	require.Equal(t, db.FundBalance{Asset: "XLM", Balance: fund - 600_000_000}, balance(t, e.store, "XLM"))
	for _, id := range ids {
		types := e.eventTypes(id)
		require.Len(t, types, 7) // requested, five approvals, executed once
		require.Equal(t, db.EventBailoutExecuted, types[6])
	}
	free, err = e.store.FreeChannels(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 3, free, "channels released")
	_, err = e.store.VerifyChain(e.ctx)
	require.NoError(t, err)
	r := e.reconcile()
	require.False(t, r.Drift(), "%+v", r.Differences)
	require.Equal(t, 3, r.Bailouts)

	if os.Getenv("UPDATE_BAILOUT_HISTORY") != "" {
		var events []*historypb.HistoryEvent
		it := e.tc.GetWorkflowHistory(e.ctx, runs[2].GetID(), runs[2].GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			events = append(events, ev)
		}
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(channelsHistoryFile, b, 0o644))
	}
}

// Cancel after five approvals: the orchestrator bumps the channel past the envelope's
// sequence before it releases the reservation, so the fully signed envelope submitted
// afterwards (inside its window) is refused by the network; nothing is paid.
func TestBailoutCancelIsEnforcedOnChain(t *testing.T) {
	e := newChainEnv(t, 1, time.Hour, 1_000_000_000, 1_000_000_000)
	id, run := e.request(250_000_000)
	st := e.pending(run)
	e.approve(run, st, 0, 1, 2, 3, 4)
	require.NoError(t, e.update(run, workflows.BailoutCancel, workflows.CancelRequest{
		Signer: e.council[2].Address(), Signature: sign(t, e.council[2], contracts.CancelMessage(st.TxHash))}))
	st = e.result(run)
	require.Equal(t, workflows.StateCancelled, st.State, st.Error)
	require.Equal(t, db.FundBalance{Asset: "XLM", Balance: 1_000_000_000}, balance(t, e.store, "XLM"), "reservation released")
	types := e.eventTypes(id)
	require.Equal(t, db.EventBailoutCancelled, types[len(types)-1])
	free, err := e.store.FreeChannels(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, free)
	require.Equal(t, 1, e.hz.Submitted(), "the BumpSequence")

	// Whoever kept the envelope and the five signatures submits it once the timelock is over.
	hash, err := hex.DecodeString(st.TxHash)
	require.NoError(t, err)
	var sigs []contracts.Signature
	var keys []string
	for _, kp := range e.council {
		s, err := kp.Sign(hash)
		require.NoError(t, err)
		sigs, keys = append(sigs, contracts.Signature{Signer: kp.Address(), Signature: s}), append(keys, kp.Address())
	}
	signed, err := contracts.AttachSignatures(st.TxXDR, config.TestnetPassphrase, st.TxHash, keys, sigs, e.channels[0])
	require.NoError(t, err)
	e.hz.SetClock(func() time.Time { return st.UnlockAt.Add(time.Minute) })
	_, err = (&horizonclient.Client{HorizonURL: e.url}).SubmitTransactionXDR(signed)
	require.Error(t, err)
	herr := horizonclient.GetError(err)
	require.NotNil(t, herr, err.Error())
	rc, err := herr.ResultCodes()
	require.NoError(t, err)
	require.Equal(t, "tx_bad_seq", rc.TransactionCode)
	require.Equal(t, 1, e.hz.Submitted())
	require.EqualValues(t, minBalance+1_000_000_000, e.hz.Balance(e.treasury, localhorizon.Native), "nothing paid")
	_, err = e.store.VerifyChain(e.ctx)
	require.NoError(t, err)
}

// The chain holds less than the books (someone spent from the treasury account): the payment
// is included and fails with op_underfunded. The bailout ends failed with the result codes in
// the hash chain, never executed; the reservation is released; the chain verifies; and
// reconciliation reports the fund's difference but nothing about the bailout, then passes
// once the account holds what the books say.
func TestBailoutUnderfundedOnChainFails(t *testing.T) {
	e := newChainEnv(t, 1, 2*time.Second, 1_000_000_000, 100_000_000)
	id, run := e.request(250_000_000)
	st := e.pending(run)
	time.Sleep(time.Until(st.UnlockAt.Add(time.Second)))
	e.approve(run, st, 4, 3, 2, 1, 0)
	st = e.result(run)
	require.Equal(t, workflows.StateFailed, st.State)
	require.Contains(t, st.ResultCodes, "op_underfunded")
	require.Equal(t, 1, e.hz.Submitted())
	require.False(t, e.hz.Successful(st.TxHash))

	bo, err := e.store.GetBailout(e.ctx, id)
	require.NoError(t, err)
	require.Equal(t, db.BailoutFailed, bo.State)
	require.Equal(t, db.FundBalance{Asset: "XLM", Balance: 1_000_000_000}, balance(t, e.store, "XLM"), "released, not debited")
	evs, err := e.store.BailoutEvents(e.ctx, id)
	require.NoError(t, err)
	last := evs[len(evs)-1]
	require.Equal(t, db.EventBailoutFailed, last.Type)
	require.Contains(t, string(last.Payload), "op_underfunded")
	for _, ev := range evs {
		require.NotEqual(t, db.EventBailoutExecuted, ev.Type)
	}
	_, err = e.store.VerifyChain(e.ctx)
	require.NoError(t, err)

	r := e.reconcile()
	require.Len(t, r.Differences, 1, "%+v", r.Differences)
	require.Equal(t, "XLM", r.Differences[0].Subject)
	e.hz.Fund(e.treasury, localhorizon.Native, minBalance+1_000_000_000)
	r = e.reconcile()
	require.False(t, r.Drift(), "%+v", r.Differences)
}

// A bailout workflow started directly on Temporal with a council of its own and a one-second
// timelock reserves, signs and pays nothing: without the treasury's record it is rejected at
// once; with a record (as if the API had recorded it) the window comes from the worker's
// timelock and the impostor council's approvals are refused.
func TestBailoutStartedDirectlyIsNotAuthority(t *testing.T) {
	e := newChainEnv(t, 1, time.Hour, 1_000_000_000, 1_000_000_000)
	var rogue []*keypair.Full
	var rogueKeys []string
	for range 5 {
		kp := keypair.MustRandom()
		rogue, rogueKeys = append(rogue, kp), append(rogueKeys, kp.Address())
	}
	req := contracts.BailoutRequest{Asset: "XLM", AmountStroops: 500_000_000, Destination: rogueKeys[0], Reason: "mine"}
	id := contracts.BailoutID(req)
	run := e.start(id, workflows.BailoutInput{ID: id, Request: req, RequestedAt: time.Now().UTC(), Timelock: time.Second, Grace: time.Hour, Council: rogueKeys})
	st := e.result(run)
	require.Equal(t, workflows.StateRejected, st.State)
	require.Contains(t, st.Error, "no record")
	require.Equal(t, db.FundBalance{Asset: "XLM", Balance: 1_000_000_000}, balance(t, e.store, "XLM"))
	free, err := e.store.FreeChannels(e.ctx)
	require.NoError(t, err)
	require.Equal(t, 1, free)
	require.Zero(t, e.hz.Attempts())

	// Recorded by the treasury, started with a rogue council and timelock: the worker's policy
	// applies.
	req = contracts.BailoutRequest{Asset: "XLM", AmountStroops: 100_000_000, Destination: rogueKeys[0], Reason: "recorded"}
	id = contracts.BailoutID(req)
	rec, err := e.store.RecordBailoutRequest(e.ctx, db.Bailout{ID: id, WorkflowID: workflows.BailoutWorkflowID(id), Asset: req.Asset,
		AmountStroops: req.AmountStroops, Destination: req.Destination, Reason: req.Reason, RequestedAt: time.Now().UTC().Truncate(time.Microsecond)})
	require.NoError(t, err)
	run = e.start(id, workflows.BailoutInput{ID: id, Request: req, RequestedAt: rec.RequestedAt.Add(-time.Hour), Timelock: time.Second, Grace: time.Hour, Council: rogueKeys})
	st = e.pending(run)
	require.Equal(t, contracts.BailoutWindow(rec.RequestedAt, time.Hour, time.Hour).Unlock, st.UnlockAt.UTC(),
		"the worker's timelock from the recorded request time")
	hash, err := hex.DecodeString(st.TxHash)
	require.NoError(t, err)
	for _, kp := range rogue {
		err = e.update(run, workflows.BailoutApprove, workflows.Approval{Signer: kp.Address(), Signature: sign(t, kp, hash)})
		require.Error(t, err, "an impostor council's approval")
	}
	require.Zero(t, e.hz.Attempts())
	require.Equal(t, int64(100_000_000), balance(t, e.store, "XLM").Reserved, "only what the treasury recorded is reserved")
}

func balance(t *testing.T, s *db.Treasury, asset string) db.FundBalance {
	t.Helper()
	bs, err := s.Balances(context.Background())
	require.NoError(t, err)
	for _, b := range bs {
		if b.Asset == asset {
			return b
		}
	}
	t.Fatalf("no %s balance", asset)
	return db.FundBalance{}
}
