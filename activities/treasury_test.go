package activities

import (
	"context"
	"encoding/hex"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/txnbuild"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

type treasuryFixture struct {
	act     *Treasury
	hz      *localhorizon.Server
	council []*keypair.Full
	now     time.Time
}

func newTreasuryFixture(t *testing.T) *treasuryFixture {
	pool := testharness.FreshPG(t).TreasuryPool
	f := &treasuryFixture{now: time.Now().UTC()}
	var keys []string
	for range 5 {
		kp := keypair.MustRandom()
		f.council = append(f.council, kp)
		keys = append(keys, kp.Address())
	}
	acct := keypair.MustRandom().Address()
	f.hz = localhorizon.New(config.TestnetPassphrase)
	f.hz.AddAccount(acct, 100, keys)
	srv := httptest.NewServer(f.hz)
	t.Cleanup(srv.Close)
	f.act = &Treasury{Store: db.NewTreasury(pool), Config: config.Treasury{
		HorizonURL: srv.URL, NetworkPassphrase: config.TestnetPassphrase, Account: acct, CouncilKeys: keys,
		USDCIssuer: keypair.MustRandom().Address(),
	}}
	_, err := f.act.RecordYield(context.Background(), YieldInput{ID: uuid.New(), Asset: "USDC", GrossStroops: 1_000_000_000, OccurredAt: f.now})
	require.NoError(t, err)
	return f
}

// reserveAndBuild reserves a bailout whose window is open now and builds its payment.
func (f *treasuryFixture) reserveAndBuild(t *testing.T, amount int64) (uuid.UUID, BuiltTx) {
	req := contracts.BailoutRequest{Asset: "USDC", AmountStroops: amount, Destination: keypair.MustRandom().Address(), Reason: "r"}
	id := contracts.BailoutID(req)
	w := contracts.Window{Unlock: f.now.Add(-time.Minute).Truncate(time.Second), Expiry: f.now.Add(time.Hour).Truncate(time.Second)}
	ctx := context.Background()
	require.NoError(t, f.act.ReserveBailout(ctx, ReserveInput{ID: id, WorkflowID: contracts.BailoutWorkflowID(id), Request: req, RequestedAt: f.now, Window: w}))
	built, err := f.act.BuildBailoutTx(ctx, BuildInput{ID: id, Request: req, Window: w})
	require.NoError(t, err)
	return id, built
}

func (f *treasuryFixture) sigs(t *testing.T, hash string, n int) []Signature {
	raw, err := hex.DecodeString(hash)
	require.NoError(t, err)
	var out []Signature
	for _, kp := range f.council[:n] {
		s, err := kp.Sign(raw)
		require.NoError(t, err)
		out = append(out, Signature{Signer: kp.Address(), Signature: s})
	}
	return out
}

func TestBuildBailoutTx(t *testing.T) {
	f := newTreasuryFixture(t)
	_, built := f.reserveAndBuild(t, 100)
	gtx, err := txnbuild.TransactionFromXDR(built.XDR)
	require.NoError(t, err)
	tx, _ := gtx.Transaction()
	require.Equal(t, int64(100+SequenceHeadroom), tx.SequenceNumber())
	require.Equal(t, int64(100), built.MinSequence)
	min := tx.ToXDR().MinSeqNum()
	require.NotNil(t, min)
	require.EqualValues(t, 100, *min)
	pay := tx.Operations()[0].(*txnbuild.Payment)
	require.Equal(t, "0.0000100", pay.Amount)
	require.Equal(t, "USDC", pay.Asset.GetCode())
	require.Equal(t, f.act.Config.USDCIssuer, pay.Asset.GetIssuer())
	hash, _ := tx.HashHex(config.TestnetPassphrase)
	require.Equal(t, hash, built.Hash)
}

// A worker dying after submitting (before the debit) retries the activity: the second run
// finds the transaction on Horizon, does not submit again, and debits once.
func TestExecuteBailoutIsIdempotent(t *testing.T) {
	f := newTreasuryFixture(t)
	ctx := context.Background()
	id, built := f.reserveAndBuild(t, 4_000_000)
	f.hz.BumpSequence(f.act.Config.Account, 3) // other treasury transactions meanwhile
	in := ExecuteInput{ID: id, XDR: built.XDR, Hash: built.Hash, Signatures: f.sigs(t, built.Hash, 5), At: f.now}

	// Four signatures: Horizon refuses, nothing is debited.
	short := in
	short.Signatures = in.Signatures[:4]
	_, err := f.act.ExecuteBailout(ctx, short)
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.True(t, app.NonRetryable())
	require.Equal(t, 0, f.hz.Submitted())

	for range 3 {
		hash, err := f.act.ExecuteBailout(ctx, in)
		require.NoError(t, err)
		require.Equal(t, built.Hash, hash)
	}
	require.Equal(t, 1, f.hz.Submitted())
	bs, err := f.act.Store.Balances(ctx)
	require.NoError(t, err)
	require.Equal(t, db.FundBalance{Asset: "USDC", Balance: 10_000_000 - 4_000_000}, bs[0])
	evs, err := f.act.Store.BailoutEvents(ctx, id)
	require.NoError(t, err)
	require.Len(t, evs, 2) // requested, executed once
	_, err = f.act.Store.VerifyChain(ctx)
	require.NoError(t, err)
}

func TestReserveBailoutRefusals(t *testing.T) {
	f := newTreasuryFixture(t)
	ctx := context.Background()
	req := contracts.BailoutRequest{Asset: "USDC", AmountStroops: 10_000_001, Destination: keypair.MustRandom().Address(), Reason: "r"}
	id := contracts.BailoutID(req)
	err := f.act.ReserveBailout(ctx, ReserveInput{ID: id, WorkflowID: "w", Request: req, RequestedAt: f.now})
	var app *temporal.ApplicationError
	require.ErrorAs(t, err, &app)
	require.True(t, app.NonRetryable())
	req.Asset = "BTC"
	err = f.act.ReserveBailout(ctx, ReserveInput{ID: id, WorkflowID: "w", Request: req, RequestedAt: f.now})
	require.ErrorAs(t, err, &app)
	require.True(t, app.NonRetryable())
}
