package main

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stellar/go-stellar-sdk/clients/horizonclient"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stellar/go-stellar-sdk/txnbuild"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/chain"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// TestWorkerRefusesShortTimelock: a production worker (and API) refuses BAILOUT_TIMELOCK=1h
// with one line naming the variable; the unsafe switch lets it through to the next check.
func TestWorkerRefusesShortTimelock(t *testing.T) {
	for _, cmd := range []string{"worker", "api"} {
		code, _, stderr := run(t, []string{"BAILOUT_TIMELOCK=1h"}, cmd)
		require.Equal(t, 1, code)
		require.Equal(t, 1, strings.Count(stderr, "\n"), "one line: %q", stderr)
		require.Contains(t, stderr, "orchestrator: BAILOUT_TIMELOCK: 1h0m0s is under the 14-day floor")
		require.Contains(t, stderr, "BAILOUT_TIMELOCK_UNSAFE")

		code, _, stderr = run(t, []string{"BAILOUT_TIMELOCK=1h", "BAILOUT_TIMELOCK_UNSAFE=true"}, cmd)
		require.Equal(t, 1, code)
		require.NotContains(t, stderr, "BAILOUT_TIMELOCK")
		require.Contains(t, stderr, "DATABASE_URL: not set", "past the floor, the next check speaks")
	}
	code, _, stderr := run(t, []string{"BAILOUT_TIMELOCK=336h"}, "worker")
	require.Equal(t, 1, code)
	require.Contains(t, stderr, "DATABASE_URL: not set", "14 days is accepted")
}

// bailoutEnvelope builds a bailout's payment the way the workflow does: a channel account as
// transaction source, the treasury as the payment's source, the bailout's memo and window.
func bailoutEnvelope(t *testing.T, id uuid.UUID, treasury, channel, dest string, stroops int64, w contracts.Window) string {
	t.Helper()
	memo, err := hex.DecodeString(strings.TrimPrefix(contracts.BailoutMemoString(id), "hash:"))
	require.NoError(t, err)
	var mh txnbuild.MemoHash
	copy(mh[:], memo)
	tx, err := txnbuild.NewTransaction(txnbuild.TransactionParams{
		SourceAccount: &txnbuild.SimpleAccount{AccountID: channel, Sequence: 4100}, IncrementSequenceNum: true,
		Operations: []txnbuild.Operation{&txnbuild.Payment{
			Destination: dest, Amount: contracts.FormatStroops(stroops), Asset: txnbuild.NativeAsset{}, SourceAccount: treasury}},
		BaseFee: txnbuild.MinBaseFee, Memo: mh,
		Preconditions: txnbuild.Preconditions{TimeBounds: txnbuild.NewTimebounds(w.Unlock.Unix(), w.Expiry.Unix())},
	})
	require.NoError(t, err)
	env, err := tx.Base64()
	require.NoError(t, err)
	return env
}

func TestBailoutInspectAndSign(t *testing.T) {
	treasury, channel, dest := keypair.MustRandom().Address(), keypair.MustRandom().Address(), keypair.MustRandom().Address()
	id := uuid.New()
	w := contracts.BailoutWindow(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), 14*24*time.Hour, 7*24*time.Hour)
	env := bailoutEnvelope(t, id, treasury, channel, dest, 25_000_000, w)
	sum, err := contracts.DecodeBailoutEnvelope(env, network.TestNetworkPassphrase)
	require.NoError(t, err)

	code, out, stderr := run(t, nil, "bailout", "inspect", "--xdr", env)
	require.Equal(t, 0, code, stderr)
	for _, want := range []string{
		"network      " + network.TestNetworkPassphrase,
		"source       " + treasury,
		"channel      " + channel,
		"destination  " + dest,
		"asset        XLM",
		"amount       2.5000000 XLM (25000000 stroops)",
		"unlock       2026-12-09 10:00:00 UTC",
		"expiry       2026-12-16 10:00:00 UTC",
		"memo         " + contracts.BailoutMemoString(id),
		"hash         " + sum.Hash,
	} {
		require.Contains(t, out, want)
	}

	member := keypair.MustRandom()
	keyFile := t.TempDir() + "/m.secret"
	require.NoError(t, writeFile(keyFile, member.Seed()+"\n"))

	// Signing an envelope: the summary on stderr first, only the signature on stdout.
	code, out, stderr = run(t, nil, "bailout", "sign", "--key-file", keyFile, "--xdr", env)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "destination  "+dest)
	require.Contains(t, stderr, "hash         "+sum.Hash)
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	require.NoError(t, err)
	raw, _ := hex.DecodeString(sum.Hash)
	require.NoError(t, member.Verify(raw, sig))

	// The hash it is asked to sign is not the envelope's (say, another bailout's): refused.
	other := bailoutEnvelope(t, uuid.New(), treasury, channel, keypair.MustRandom().Address(), 25_000_000, w)
	otherSum, err := contracts.DecodeBailoutEnvelope(other, network.TestNetworkPassphrase)
	require.NoError(t, err)
	code, out, stderr = run(t, nil, "bailout", "sign", "--key-file", keyFile, "--xdr", env, "--hash", otherSum.Hash)
	require.Equal(t, 1, code)
	require.Empty(t, out, "nothing signed")
	require.Contains(t, stderr, "orchestrator: --hash "+otherSum.Hash+" is not this envelope's hash (recomputed "+sum.Hash+"): nothing signed")

	// The matching hash is accepted; a bare hash signs with a warning.
	code, _, stderr = run(t, nil, "bailout", "sign", "--key-file", keyFile, "--xdr", env, "--hash", strings.ToUpper(sum.Hash))
	require.Equal(t, 0, code, stderr)
	code, out, stderr = run(t, nil, "bailout", "sign", "--key-file", keyFile, "--hash", sum.Hash)
	require.Equal(t, 0, code, stderr)
	require.Contains(t, stderr, "warning: signing a bare hash")
	require.NotEmpty(t, strings.TrimSpace(out))

	// A malformed envelope: one line, nothing signed.
	code, out, stderr = run(t, nil, "bailout", "sign", "--key-file", keyFile, "--xdr", "AAAA")
	require.Equal(t, 1, code)
	require.Empty(t, out)
	require.Equal(t, 1, strings.Count(stderr, "\n"), stderr)
}

func writeFile(path, content string) error {
	return os.WriteFile(path, []byte(content), 0o600)
}

// horizonFor serves a local Horizon for the test.
func horizonFor(t *testing.T) (*localhorizon.Server, string) {
	hz := localhorizon.New(network.TestNetworkPassphrase)
	srv := httptest.NewServer(hz)
	t.Cleanup(srv.Close)
	return hz, srv.URL
}

// TestTreasuryReconcile: the books agree with the chain (exit 0); a fund that differs from
// the chain and a bailout booked as executed whose transaction failed are reported (exit 1).
func TestTreasuryReconcile(t *testing.T) {
	pg := testharness.FreshPG(t)
	ctx := t.Context()
	tr := db.NewTreasury(pg.TreasuryPool)
	dbenv := treasuryEnv(pg)
	hz, hzURL := horizonFor(t)
	treasury := keypair.MustRandom()
	hz.AddAccount(treasury.Address(), 1, nil)
	_, err := tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 100_000 * contracts.StroopsPerUnit, OccurredAt: time.Now()})
	require.NoError(t, err) // the fund: 1000 XLM
	const minimum = 2 * contracts.BaseReserveStroops
	hz.Fund(treasury.Address(), "XLM", 1000*contracts.StroopsPerUnit+minimum)
	env := append(dbenv, "HORIZON_URL="+hzURL, "TREASURY_ACCOUNT="+treasury.Address())

	code, out, stderr := run(t, env, "treasury", "reconcile")
	require.Equal(t, 0, code, stderr+out)
	require.Contains(t, out, "books and chain agree")

	// Someone moved 400 XLM out of the treasury behind the books' back.
	hz.Fund(treasury.Address(), "XLM", 600*contracts.StroopsPerUnit+minimum)
	code, out, stderr = run(t, env, "treasury", "reconcile")
	require.Equal(t, 1, code)
	require.Contains(t, out, "XLM: the books hold 1000.0000000 (0.0000000 reserved), the chain 600.0000000: off by -400.0000000")
	require.Contains(t, stderr, "treasury books and chain differ in 1 place(s)")
	require.Equal(t, 1, strings.Count(stderr, "\n"))

	// A 700 XLM bailout is paid from that underfunded account: the network includes the
	// transaction and it fails; the books record it as executed anyway (the old bug).
	dest := keypair.MustRandom().Address()
	hz.AddAccount(dest, 1, nil)
	id := uuid.New()
	now := time.Now().UTC()
	w := contracts.Window{Unlock: now.Add(-time.Hour).Truncate(time.Second), Expiry: now.Add(time.Hour).Truncate(time.Second)}
	_, err = tr.ReserveBailout(ctx, db.Bailout{ID: id, WorkflowID: "bailout-" + id.String(), Asset: "XLM", AmountStroops: 700 * contracts.StroopsPerUnit,
		Destination: dest, Reason: "test", RequestedAt: now.Add(-2 * time.Hour), UnlockAt: w.Unlock, ExpiresAt: w.Expiry})
	require.NoError(t, err)
	tx, err := txnbuild.NewTransaction(txnbuild.TransactionParams{
		SourceAccount: &txnbuild.SimpleAccount{AccountID: treasury.Address(), Sequence: 1}, IncrementSequenceNum: true,
		Operations: []txnbuild.Operation{&txnbuild.Payment{Destination: dest, Amount: "700", Asset: txnbuild.NativeAsset{}}},
		BaseFee:    txnbuild.MinBaseFee, Preconditions: txnbuild.Preconditions{TimeBounds: txnbuild.NewTimebounds(w.Unlock.Unix(), w.Expiry.Unix())},
	})
	require.NoError(t, err)
	tx, err = tx.Sign(network.TestNetworkPassphrase, treasury)
	require.NoError(t, err)
	ch := chain.New(hzURL, network.TestNetworkPassphrase, nil)
	hash, err := tx.HashHex(network.TestNetworkPassphrase)
	require.NoError(t, err)
	_, _ = (&horizonclient.Client{HorizonURL: hzURL}).SubmitTransaction(tx) // its outcome is read below
	got, err := ch.Transaction(ctx, hash)
	require.NoError(t, err)
	require.True(t, got.Found)
	require.False(t, got.Successful, "included and failed: op_underfunded")
	require.NoError(t, tr.ExecuteBailout(ctx, id, hash, now))

	code, out, _ = run(t, env, "treasury", "reconcile")
	require.Equal(t, 1, code)
	require.Contains(t, out, "bailout "+id.String()+": booked as executed, but its transaction "+hash+" failed on chain: nothing was paid")
	require.Contains(t, out, "executed bailouts checked against their transactions: 1")
}

// TestTreasuryVerifyAgainstAnchors: whoever owns the schema rewrites an event and re-hashes
// the rest; the chain is self-consistent again, but `treasury verify` holds it against the
// heads published on Stellar and fails.
func TestTreasuryVerifyAgainstAnchors(t *testing.T) {
	pg := testharness.FreshPG(t)
	ctx := t.Context()
	tr := db.NewTreasury(pg.TreasuryPool)
	pool, dbenv := ownerPool(t, pg), treasuryEnv(pg)
	hz, hzURL := horizonFor(t)
	anchor := keypair.MustRandom()
	hz.AddAccount(anchor.Address(), 1, nil)
	hz.Fund(anchor.Address(), localhorizon.Native, 10*contracts.StroopsPerUnit)
	ch := chain.New(hzURL, network.TestNetworkPassphrase, nil)
	env := append(dbenv, "HORIZON_URL="+hzURL, "TREASURY_ANCHOR_ACCOUNT="+anchor.Address())

	publish := func() contracts.Anchor {
		head, err := tr.Head(ctx)
		require.NoError(t, err)
		a, err := ch.Publish(ctx, anchor, head, time.Now())
		require.NoError(t, err)
		return a
	}
	for i := range 4 {
		_, err := tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 12345, OccurredAt: time.Now()})
		require.NoError(t, err)
		if i == 2 {
			require.EqualValues(t, 3, publish().Seq)
		}
	}
	last := publish()
	require.EqualValues(t, 4, last.Seq)
	again := publish()
	require.Equal(t, last.TxHash, again.TxHash, "the same head is not published twice")

	code, out, stderr := run(t, env, "treasury", "verify")
	require.Equal(t, 0, code, stderr)
	require.Contains(t, out, "treasury chain intact: 4 events")
	require.Contains(t, out, "anchors: 2 agree; newest pins event 4")

	rewriteAndRehash(t, pool, 2)
	code, _, _ = run(t, dbenv, "treasury", "verify")
	require.Equal(t, 0, code, "without anchors the rewritten chain looks intact")

	code, out, stderr = run(t, env, "treasury", "verify")
	require.Equal(t, 1, code)
	require.Contains(t, out, "ANCHOR MISMATCH")
	require.Contains(t, stderr, "treasury chain does not match 2 of its 2 anchors")
	require.Contains(t, stderr, "pins event 3 at hash")
	require.Contains(t, stderr, "the chain was rewritten")
}

// rewriteAndRehash changes event from's payload and recomputes every hash from there on, as
// an owner of the schema could.
func rewriteAndRehash(t *testing.T, pool interface {
	Begin(context.Context) (pgx.Tx, error)
}, from int64) {
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(ctx) //nolint:errcheck
	_, err = tx.Exec(ctx, `ALTER TABLE treasury.events DISABLE TRIGGER events_append_only`)
	require.NoError(t, err)
	_, err = tx.Exec(ctx, `UPDATE treasury.events SET payload = replace(payload, '12345', '99999') WHERE seq = $1`, from)
	require.NoError(t, err)
	rows, err := tx.Query(ctx, `SELECT seq, type, bailout_id, payload, occurred_at FROM treasury.events WHERE seq >= $1 ORDER BY seq`, from)
	require.NoError(t, err)
	type ev struct {
		seq     int64
		typ     string
		bid     *uuid.UUID
		payload string
		at      time.Time
	}
	var evs []ev
	for rows.Next() {
		var e ev
		require.NoError(t, rows.Scan(&e.seq, &e.typ, &e.bid, &e.payload, &e.at))
		evs = append(evs, e)
	}
	require.NoError(t, rows.Err())
	var prev string
	require.NoError(t, tx.QueryRow(ctx, `SELECT hash FROM treasury.events WHERE seq = $1`, from-1).Scan(&prev))
	for _, e := range evs {
		h := db.EventHash(prev, e.seq, e.typ, e.bid, e.at, json.RawMessage(e.payload))
		_, err := tx.Exec(ctx, `UPDATE treasury.events SET prev_hash = $2, hash = $3 WHERE seq = $1`, e.seq, prev, h)
		require.NoError(t, err)
		prev = h
	}
	_, err = tx.Exec(ctx, `ALTER TABLE treasury.events ENABLE TRIGGER events_append_only`)
	require.NoError(t, err)
	require.NoError(t, tx.Commit(ctx))
}

// treasuryEnv is the CLI's environment for the treasury's commands: the runtime role and the
// treasury login, as in production.
func treasuryEnv(pg *testharness.PG) []string {
	return []string{"DATABASE_URL=" + pg.URL, "TREASURY_DATABASE_URL=" + pg.TreasuryURL}
}

// ownerPool connects as the schema's owner: who can rewrite the event log.
func ownerPool(t *testing.T, pg *testharness.PG) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(t.Context(), pg.OwnerURL)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}
