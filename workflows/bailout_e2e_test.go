package workflows_test

import (
	"context"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/txnbuild"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workers"
	"github.com/creatorvault/orchestrator/workflows"
)

// historyFile is the checked-in history the replay test replays. Regenerate it with
// UPDATE_BAILOUT_HISTORY=1 go test ./workflows/ -run TestBailoutEndToEnd.
const historyFile = "testdata/bailout_history.json"

// The happy path on the embedded Temporal server with real PostgreSQL and the local Horizon
// stand-in, which decodes the submitted envelope with the SDK and checks the five council
// signatures, the time bounds against its clock and the min-sequence precondition.
func TestBailoutEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	pg := testharness.FreshPG(t)
	tc := testharness.Temporal(t)
	require.NoError(t, workers.EnsureSearchAttributes(ctx, tc, "default"))

	var council []*keypair.Full
	var keys []string
	for range 5 {
		kp := keypair.MustRandom()
		council = append(council, kp)
		keys = append(keys, kp.Address())
	}
	treasuryAcct := keypair.MustRandom().Address()
	hz := localhorizon.New(config.TestnetPassphrase)
	hz.AddAccount(treasuryAcct, 4_000_000, keys)
	srv := httptest.NewServer(hz)
	defer srv.Close()

	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.Treasury.HorizonURL = srv.URL
	cfg.Treasury.Account = treasuryAcct
	cfg.Treasury.CouncilKeys = keys
	cfg.Treasury.NetworkPassphrase = config.TestnetPassphrase

	store := db.NewTreasury(pg.TreasuryPool)
	_, err = store.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 100_000_000_000, OccurredAt: time.Now()})
	require.NoError(t, err) // fund: 100 XLM

	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- workers.Run(wctx, workers.Deps{Client: tc, Pool: pg.Pool, TreasuryPool: pg.TreasuryPool, Config: cfg, Logger: testharness.Logger(t)}, []string{workflows.TreasuryQueue})
	}()
	defer func() { stop(); <-done }()

	req := contracts.BailoutRequest{Asset: "XLM", AmountStroops: 250_000_000, Destination: keypair.MustRandom().Address(), Reason: "e2e " + uuid.NewString()}
	id := contracts.BailoutID(req)
	in := workflows.BailoutInput{ID: id, Request: req, RequestedAt: time.Now().UTC(), Timelock: 4 * time.Second, Grace: time.Hour, Council: keys}
	opts := client.StartWorkflowOptions{ID: workflows.BailoutWorkflowID(id), TaskQueue: workflows.TreasuryQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE, WorkflowExecutionErrorWhenAlreadyStarted: true}
	run, err := tc.ExecuteWorkflow(ctx, opts, workflows.BailoutWorkflowName, in)
	require.NoError(t, err)
	_, err = tc.ExecuteWorkflow(ctx, opts, workflows.BailoutWorkflowName, in)
	require.Error(t, err, "the same request twice")

	var st workflows.BailoutStatus
	require.Eventually(t, func() bool {
		v, err := tc.QueryWorkflow(ctx, run.GetID(), "", workflows.BailoutStatusQuery)
		return err == nil && v.Get(&st) == nil && st.State == workflows.StatePending
	}, 30*time.Second, 100*time.Millisecond)
	b := balance(t, store, "XLM")
	require.Equal(t, int64(250_000_000), b.Reserved)

	// The envelope the council signs: payment from the treasury, time bounds = the window.
	gtx, err := txnbuild.TransactionFromXDR(st.TxXDR)
	require.NoError(t, err)
	tx, _ := gtx.Transaction()
	require.Equal(t, st.UnlockAt.Unix(), tx.Timebounds().MinTime)
	require.Equal(t, st.ExpiresAt.Unix(), tx.Timebounds().MaxTime)
	require.Equal(t, treasuryAcct, tx.SourceAccount().AccountID)

	// The treasury makes other transactions meanwhile: the envelope stays valid.
	hz.BumpSequence(treasuryAcct, 7)

	hash, err := hex.DecodeString(st.TxHash)
	require.NoError(t, err)
	approve := func(kp *keypair.Full, h []byte) error {
		sig, err := kp.Sign(h)
		require.NoError(t, err)
		u, err := tc.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: run.GetID(), UpdateName: workflows.BailoutApprove,
			Args: []any{workflows.Approval{Signer: kp.Address(), Signature: activities.SignatureBase64(sig)}}, WaitForStage: client.WorkflowUpdateStageCompleted})
		if err != nil {
			return err
		}
		return u.Get(ctx, nil)
	}
	require.Error(t, approve(keypair.MustRandom(), hash), "non-member")
	for _, kp := range council {
		require.NoError(t, approve(kp, hash))
	}
	require.Error(t, approve(council[0], hash), "duplicate")

	require.NoError(t, run.Get(ctx, &st))
	require.Equal(t, workflows.StateExecuted, st.State, "error: %s", st.Error)
	require.Equal(t, 1, hz.Submitted())
	require.Contains(t, hz.Transactions(), st.TxHash)
	require.Equal(t, db.FundBalance{Asset: "XLM", Balance: 1_000_000_000 - 250_000_000, Reserved: 0}, balance(t, store, "XLM"))
	bo, err := store.GetBailout(ctx, id)
	require.NoError(t, err)
	require.Equal(t, db.BailoutExecuted, bo.State)
	evs, err := store.BailoutEvents(ctx, id)
	require.NoError(t, err)
	require.Len(t, evs, 7) // requested, 5 approved, executed
	require.Equal(t, db.EventBailoutExecuted, evs[6].Type)
	_, err = store.VerifyChain(ctx)
	require.NoError(t, err)

	desc, err := tc.DescribeWorkflowExecution(ctx, run.GetID(), "")
	require.NoError(t, err)
	require.Contains(t, desc.GetWorkflowExecutionInfo().GetSearchAttributes().GetIndexedFields(), "BailoutState")

	if os.Getenv("UPDATE_BAILOUT_HISTORY") != "" {
		var events []*historypb.HistoryEvent
		it := tc.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			events = append(events, ev)
		}
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&historypb.History{Events: events})
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(historyFile, b, 0o644))
	}
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
