package activities

import (
	"context"
	"encoding/hex"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/clients/horizonclient"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// channelFixture is a treasury with one channel account, its books in PostgreSQL (as the
// treasury login) and its account on the local Horizon.
type channelFixture struct {
	act     *Treasury
	hz      *localhorizon.Server
	url     string
	council []*keypair.Full
	channel *keypair.Full
}

// newChannelFixture books 100 XLM and puts chain spendable XLM on the treasury account.
func newChannelFixture(t *testing.T, chain int64) *channelFixture {
	ctx := context.Background()
	store := db.NewTreasury(testharness.FreshPG(t).TreasuryPool)
	f := &channelFixture{hz: localhorizon.New(config.TestnetPassphrase)}
	var keys []string
	for range 5 {
		kp := keypair.MustRandom()
		f.council, keys = append(f.council, kp), append(keys, kp.Address())
	}
	acct := keypair.MustRandom().Address()
	f.hz.AddAccount(acct, 100, keys)
	f.hz.Fund(acct, localhorizon.Native, 7*localhorizon.BaseReserve+chain)
	f.channel = f.hz.NewChannels(1)[0]
	srv := httptest.NewServer(f.hz)
	t.Cleanup(srv.Close)
	f.url = srv.URL
	f.act = &Treasury{Store: store, Channels: map[string]*keypair.Full{f.channel.Address(): f.channel}, Config: config.Treasury{
		HorizonURL: srv.URL, NetworkPassphrase: config.TestnetPassphrase, Account: acct, CouncilKeys: keys,
		USDCIssuer: keypair.MustRandom().Address(),
	}}
	_, err := store.RegisterChannels(ctx, []string{f.channel.Address()})
	require.NoError(t, err)
	_, err = store.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 100_000_000_000, OccurredAt: time.Now()})
	require.NoError(t, err)
	return f
}

// approved records, reserves and builds a bailout whose window is open, and returns its
// envelope with the five council signatures.
func (f *channelFixture) approved(t *testing.T, amount int64) (uuid.UUID, SubmitInput) {
	ctx := context.Background()
	dest := keypair.MustRandom().Address()
	f.hz.AddAccount(dest, 1<<32, nil)
	req := contracts.BailoutRequest{Asset: "XLM", AmountStroops: amount, Destination: dest, Reason: "r"}
	id := contracts.BailoutID(req)
	wid := contracts.BailoutWorkflowID(id)
	_, err := f.act.Store.RecordBailoutRequest(ctx, db.Bailout{ID: id, WorkflowID: wid, Asset: req.Asset, AmountStroops: req.AmountStroops,
		Destination: req.Destination, Reason: req.Reason, RequestedAt: time.Now().UTC().Add(-20 * time.Minute).Truncate(time.Microsecond)})
	require.NoError(t, err)
	res, err := f.act.ReserveRecordedBailout(ctx, ReserveRecordedInput{ID: id, WorkflowID: wid, Request: req, Timelock: time.Minute, Grace: time.Hour})
	require.NoError(t, err)
	built, err := f.act.BuildChannelPayment(ctx, BuildChannelInput{ID: id, Request: req, Window: res.Window, Channel: res.Channel})
	require.NoError(t, err)
	raw, err := hex.DecodeString(built.Hash)
	require.NoError(t, err)
	in := SubmitInput{ID: id, XDR: built.XDR, Hash: built.Hash, Channel: built.Channel, Council: f.act.Config.CouncilKeys, At: time.Now().UTC()}
	for _, kp := range f.council {
		s, err := kp.Sign(raw)
		require.NoError(t, err)
		in.Signatures = append(in.Signatures, contracts.Signature{Signer: kp.Address(), Signature: s})
	}
	return id, in
}

// A worker that dies after its submission reached the network and before it read the
// answer: the first attempt's only effect is the transaction on chain (submitted here as it
// did). The retried activity looks the hash up first, books what the network did, and never
// submits again, for a successful payment and for a failed one.
func TestSubmitBailoutAfterAWorkerDied(t *testing.T) {
	for name, c := range map[string]struct {
		chain int64
		state string
		code  string
		debit int64
	}{
		"successful": {chain: 1_000_000_000, state: contracts.StateExecuted, debit: 250_000_000},
		"failed":     {chain: 100_000_000, state: contracts.StateFailed, code: "op_underfunded"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			f := newChannelFixture(t, c.chain)
			id, in := f.approved(t, 250_000_000)
			env, err := contracts.AttachSignatures(in.XDR, config.TestnetPassphrase, in.Hash, in.Council, in.Signatures, f.channel)
			require.NoError(t, err)
			_, _ = (&horizonclient.Client{HorizonURL: f.url}).SubmitTransactionXDR(env) // the attempt that died
			require.Equal(t, 1, f.hz.Attempts())

			for range 2 { // the retry, and a retry of the retry
				oc, err := f.act.SubmitBailout(ctx, in)
				require.NoError(t, err)
				require.Equal(t, c.state, oc.State)
				if c.code != "" {
					require.Contains(t, oc.Codes, c.code)
				}
			}
			require.Equal(t, 1, f.hz.Attempts(), "exactly one submission")
			b, err := f.act.Store.GetBailout(ctx, id)
			require.NoError(t, err)
			require.Equal(t, c.state, b.State)
			bs, err := f.act.Store.Balances(ctx)
			require.NoError(t, err)
			require.Contains(t, bs, db.FundBalance{Asset: "XLM", Balance: 1_000_000_000 - c.debit})
			evs, err := f.act.Store.BailoutEvents(ctx, id)
			require.NoError(t, err)
			require.Len(t, evs, 2, "requested, then executed or failed once")
			_, err = f.act.Store.VerifyChain(ctx)
			require.NoError(t, err)
			free, err := f.act.Store.FreeChannels(ctx)
			require.NoError(t, err)
			require.Equal(t, 1, free, "channel released")
		})
	}
}

// The hourly sweep: a bailout whose workflow will never finish (here: never started, as after
// a terminate and a lost history) holds its reservation and channel until the sweep, which
// first makes its approved envelope invalid on chain (the channel bumped past its sequence),
// then releases both with BailoutCancelled; a request never reserved is rejected. A second
// sweep finds nothing.
func TestSweepReleasesAbandonedBailouts(t *testing.T) {
	ctx := context.Background()
	f := newChannelFixture(t, 1_000_000_000)
	f.act.Temporal = testharness.Temporal(t)
	id, in := f.approved(t, 250_000_000)
	require.NoError(t, f.act.Store.RecordApproval(ctx, id, f.council[0].Address(), time.Now()))
	b, err := f.act.Store.GetBailout(ctx, id)
	require.NoError(t, err)
	require.NotNil(t, b.TxSeq)
	req := contracts.BailoutRequest{Asset: "XLM", AmountStroops: 1, Destination: keypair.MustRandom().Address(), Reason: "never reserved"}
	lone := contracts.BailoutID(req)
	_, err = f.act.Store.RecordBailoutRequest(ctx, db.Bailout{ID: lone, WorkflowID: contracts.BailoutWorkflowID(lone), Asset: req.Asset,
		AmountStroops: req.AmountStroops, Destination: req.Destination, Reason: req.Reason, RequestedAt: time.Now().UTC().Add(-time.Hour).Truncate(time.Microsecond)})
	require.NoError(t, err)

	res, err := f.act.SweepBailouts(ctx)
	require.NoError(t, err)
	require.Equal(t, SweepResult{Released: 1, Rejected: 1}, res)
	require.GreaterOrEqual(t, f.hz.Sequence(in.Channel), *b.TxSeq, "the envelope's sequence is consumed")
	b, err = f.act.Store.GetBailout(ctx, id)
	require.NoError(t, err)
	require.Equal(t, db.BailoutCancelled, b.State)
	bs, err := f.act.Store.Balances(ctx)
	require.NoError(t, err)
	require.Contains(t, bs, db.FundBalance{Asset: "XLM", Balance: 1_000_000_000})
	free, err := f.act.Store.FreeChannels(ctx)
	require.NoError(t, err)
	require.Equal(t, 1, free)
	l, err := f.act.Store.GetBailout(ctx, lone)
	require.NoError(t, err)
	require.Equal(t, db.BailoutRejected, l.State)

	// The envelope, fully signed, is refused by the network now.
	env, err := contracts.AttachSignatures(in.XDR, config.TestnetPassphrase, in.Hash, in.Council, in.Signatures, f.channel)
	require.NoError(t, err)
	_, err = (&horizonclient.Client{HorizonURL: f.url}).SubmitTransactionXDR(env)
	require.Error(t, err)
	rc, rerr := horizonclient.GetError(err).ResultCodes()
	require.NoError(t, rerr)
	require.Equal(t, "tx_bad_seq", rc.TransactionCode)

	res, err = f.act.SweepBailouts(ctx)
	require.NoError(t, err)
	require.Zero(t, res)
	_, err = f.act.Store.VerifyChain(ctx)
	require.NoError(t, err)
}
