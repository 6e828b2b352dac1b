package db_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// The channel pool: registration refuses what is not an account and is idempotent; three
// recorded requests reserving at once over two channels get two distinct channels and one
// refusal naming the fix (its record rejected, nothing reserved); a channel whose key the
// worker lacks is never handed out; a run without a record, or unlike it, changes nothing;
// closing a bailout frees its channel.
func TestTreasuryChannelPool(t *testing.T) {
	ctx := context.Background()
	tr := db.NewTreasury(testharness.FreshPG(t).TreasuryPool)
	a, b := keypair.MustRandom().Address(), keypair.MustRandom().Address()

	_, err := tr.RegisterChannels(ctx, []string{a, "GNOTANACCOUNT"})
	require.Equal(t, db.KindInvalid, kindOf(err))
	chs, err := tr.Channels(ctx)
	require.NoError(t, err)
	require.Empty(t, chs, "nothing registered")
	n, err := tr.RegisterChannels(ctx, []string{a, b})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	n, err = tr.RegisterChannels(ctx, []string{b, a})
	require.NoError(t, err)
	require.Zero(t, n)

	_, err = tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 100_000, OccurredAt: time.Now()})
	require.NoError(t, err) // fund: 1000 stroops
	now := time.Now().UTC().Truncate(time.Microsecond)
	record := func(amount int64) db.Bailout {
		bo := newBailout("XLM", amount, now)
		bo.State = ""
		_, err := tr.RecordBailoutRequest(ctx, bo)
		require.NoError(t, err)
		return bo
	}

	// The worker holds no key for any channel: refused, never handed an unknown channel.
	lone := record(10)
	res, err := tr.ReserveRecorded(ctx, lone, []string{keypair.MustRandom().Address()})
	require.NoError(t, err)
	require.Equal(t, "no_channel", res.Code)
	require.Contains(t, res.Refused, "channels-setup --count")

	var wg sync.WaitGroup
	reqs := []db.Bailout{record(100), record(200), record(300)}
	out := make([]db.Reservation, len(reqs))
	errs := make([]error, len(reqs))
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = tr.ReserveRecorded(ctx, r, []string{a, b})
		}()
	}
	wg.Wait()
	held := map[string]bool{}
	var reserved int64
	refused := 0
	for i := range reqs {
		require.NoError(t, errs[i])
		if out[i].Refused != "" {
			refused++
			require.Equal(t, "no_channel", out[i].Code)
			require.Equal(t, db.BailoutRejected, out[i].Bailout.State)
			continue
		}
		require.NotNil(t, out[i].Bailout.Channel)
		require.False(t, held[*out[i].Bailout.Channel], "two bailouts on one channel")
		held[*out[i].Bailout.Channel] = true
		reserved += reqs[i].AmountStroops
	}
	require.Equal(t, 1, refused)
	require.Len(t, held, 2)
	require.Equal(t, reserved, treasuryBalance(t, tr, "XLM").Reserved)
	free, err := tr.FreeChannels(ctx)
	require.NoError(t, err)
	require.Zero(t, free)

	// No record, or a run whose request differs from the record: an error, nothing changed.
	_, err = tr.ReserveRecorded(ctx, newBailout("XLM", 1, now), []string{a, b})
	require.Equal(t, db.KindInvalid, kindOf(err))
	other := reqs[0]
	other.AmountStroops = 999
	_, err = tr.ReserveRecorded(ctx, other, []string{a, b})
	require.Equal(t, db.KindInvalid, kindOf(err))
	require.Equal(t, reserved, treasuryBalance(t, tr, "XLM").Reserved)

	for i := range reqs {
		if out[i].Refused == "" {
			require.NoError(t, tr.CloseBailout(ctx, reqs[i].ID, db.BailoutCancelled, "test", now))
		}
	}
	free, err = tr.FreeChannels(ctx)
	require.NoError(t, err)
	require.Equal(t, 2, free)
	require.Zero(t, treasuryBalance(t, tr, "XLM").Reserved)
	_, err = tr.VerifyChain(ctx)
	require.NoError(t, err)
}
