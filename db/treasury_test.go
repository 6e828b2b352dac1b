package db_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func treasuryBalance(t *testing.T, tr *db.Treasury, asset string) db.FundBalance {
	t.Helper()
	bs, err := tr.Balances(context.Background())
	require.NoError(t, err)
	for _, b := range bs {
		if b.Asset == asset {
			return b
		}
	}
	t.Fatalf("no balance row for %s", asset)
	return db.FundBalance{}
}

func newBailout(asset string, amount int64, at time.Time) db.Bailout {
	id := uuid.New()
	return db.Bailout{ID: id, WorkflowID: "bailout-" + id.String(), Asset: asset, AmountStroops: amount,
		Destination: "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN", Reason: "test",
		RequestedAt: at, UnlockAt: at.Add(14 * 24 * time.Hour), ExpiresAt: at.Add(21 * 24 * time.Hour)}
}

func kindOf(err error) db.Kind {
	if e, ok := db.AsError(err); ok {
		return e.Kind
	}
	return 0
}

func TestTreasuryRecordYieldIdempotent(t *testing.T) {
	pool := testharness.FreshPG(t).TreasuryPool
	tr := db.NewTreasury(pool)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
	in := db.YieldInput{ID: uuid.New(), Asset: "USDC", GrossStroops: 1_234_567_899, OccurredAt: at}
	r, err := tr.RecordYield(ctx, in)
	require.NoError(t, err)
	require.True(t, r.Created)
	require.Equal(t, int64(12_345_678), r.FeeStroops)
	require.Equal(t, in.GrossStroops, r.FeeStroops+r.NetStroops)
	r2, err := tr.RecordYield(ctx, in)
	require.NoError(t, err)
	require.False(t, r2.Created)
	require.Equal(t, r.FeeStroops, r2.FeeStroops)
	require.Equal(t, int64(12_345_678), treasuryBalance(t, tr, "USDC").Balance)

	other := in
	other.GrossStroops++
	_, err = tr.RecordYield(ctx, other)
	require.Equal(t, db.KindConflict, kindOf(err))
	_, err = tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "BTC", GrossStroops: 100, OccurredAt: at})
	require.Equal(t, db.KindInvalid, kindOf(err))
	_, err = tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 0, OccurredAt: at})
	require.Equal(t, db.KindInvalid, kindOf(err))
	evs, err := tr.RecentEvents(ctx, 10)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	require.Equal(t, db.EventFundCapitalized, evs[0].Type)
	n, err := tr.VerifyChain(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

func TestTreasuryBailoutLifecycle(t *testing.T) {
	pool := testharness.FreshPG(t).TreasuryPool
	tr := db.NewTreasury(pool)
	ctx := t.Context()
	at := time.Now().UTC()
	_, err := tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 100_000, OccurredAt: at})
	require.NoError(t, err) // fund: 1000 stroops

	_, err = tr.ReserveBailout(ctx, newBailout("XLM", 1001, at))
	require.Equal(t, db.KindInvalid, kindOf(err), "more than available")
	require.Equal(t, 0, count(t, pool, `SELECT count(*) FROM treasury.bailouts`), "nothing written")

	a := newBailout("XLM", 600, at)
	got, err := tr.ReserveBailout(ctx, a)
	require.NoError(t, err)
	require.Equal(t, db.BailoutPending, got.State)
	_, err = tr.ReserveBailout(ctx, a) // retry: no second reservation
	require.NoError(t, err)
	require.Equal(t, int64(600), treasuryBalance(t, tr, "XLM").Reserved)
	_, err = tr.ReserveBailout(ctx, newBailout("XLM", 401, at))
	require.Equal(t, db.KindInvalid, kindOf(err), "reserved amounts are not available")

	require.NoError(t, tr.RecordApproval(ctx, a.ID, "GMEMBER1", at))
	require.NoError(t, tr.RecordApproval(ctx, a.ID, "GMEMBER1", at))
	require.NoError(t, tr.ExecuteBailout(ctx, a.ID, "abcd", at))
	require.NoError(t, tr.ExecuteBailout(ctx, a.ID, "abcd", at)) // retry
	b := treasuryBalance(t, tr, "XLM")
	require.Equal(t, db.FundBalance{Asset: "XLM", Balance: 400, Reserved: 0}, b)
	require.Equal(t, db.KindConflict, kindOf(tr.CloseBailout(ctx, a.ID, db.BailoutCancelled, "x", at)))

	c := newBailout("XLM", 400, at)
	_, err = tr.ReserveBailout(ctx, c)
	require.NoError(t, err)
	require.NoError(t, tr.CloseBailout(ctx, c.ID, db.BailoutCancelled, "GMEMBER2", at))
	require.NoError(t, tr.CloseBailout(ctx, c.ID, db.BailoutCancelled, "GMEMBER2", at))
	require.Equal(t, db.KindConflict, kindOf(tr.ExecuteBailout(ctx, c.ID, "ff", at)))
	require.Equal(t, db.FundBalance{Asset: "XLM", Balance: 400, Reserved: 0}, treasuryBalance(t, tr, "XLM"))

	evs, err := tr.BailoutEvents(ctx, a.ID)
	require.NoError(t, err)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	require.Equal(t, []string{db.EventBailoutRequested, db.EventBailoutApproved, db.EventBailoutExecuted}, types)
	n, err := tr.VerifyChain(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(6), n)
}

// openAs opens a pool on url, closed when the test ends.
func openAs(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pool, err := db.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func count(t *testing.T, pool *pgxpool.Pool, sql string) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), sql).Scan(&n))
	return n
}

// The database itself refuses what Go code must never do: negative balances, reservations
// above the balance, and rewriting history.
func TestTreasuryConstraintsAndAppendOnly(t *testing.T) {
	pg := testharness.FreshPG(t)
	tr := db.NewTreasury(pg.TreasuryPool)
	// As the owner, who holds every privilege: what refuses is the schema itself.
	pool := openAs(t, pg.OwnerURL)
	ctx := t.Context()
	_, err := tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "USDC", GrossStroops: 500, OccurredAt: time.Now()})
	require.NoError(t, err)
	for _, sql := range []string{
		`UPDATE treasury.balances SET balance_stroops = -1 WHERE asset = 'USDC'`,
		`UPDATE treasury.balances SET reserved_stroops = -1 WHERE asset = 'USDC'`,
		`UPDATE treasury.balances SET reserved_stroops = balance_stroops + 1 WHERE asset = 'USDC'`,
		`UPDATE treasury.events SET payload = '{}'`,
		`DELETE FROM treasury.events`,
		`TRUNCATE treasury.events`,
		`INSERT INTO treasury.balances (asset) VALUES ('BTC')`,
	} {
		_, err := pool.Exec(ctx, sql)
		require.Error(t, err, sql)
	}
	_, err = tr.VerifyChain(ctx)
	require.NoError(t, err)
}

// A role other than the treasury role (what other parts of the service would be) can neither
// read nor write schema treasury.
func TestTreasurySegregation(t *testing.T) {
	pool := openAs(t, testharness.FreshPG(t).AdminURL)
	ctx := t.Context()
	_, err := pool.Exec(ctx, `DO $$ BEGIN
		IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'treasury_outsider_test') THEN
			CREATE ROLE treasury_outsider_test NOLOGIN; END IF;
		EXCEPTION WHEN OTHERS THEN NULL; END $$`)
	require.NoError(t, err)
	for _, sql := range []string{
		`SELECT count(*) FROM treasury.balances`,
		`UPDATE treasury.balances SET balance_stroops = 1`,
		`INSERT INTO treasury.yield_events (id, asset, gross_stroops, fee_stroops, net_stroops, occurred_at)
			VALUES (gen_random_uuid(), 'XLM', 100, 1, 99, now())`,
	} {
		err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE treasury_outsider_test`); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, sql)
			return err
		})
		require.ErrorContains(t, err, "permission denied", sql)
	}
	var owner string
	require.NoError(t, pool.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE schemaname = 'treasury' AND tablename = 'balances'`).Scan(&owner))
	require.Equal(t, db.OwnerRole, owner)
}

// Tampering with a stored event (done here as a superuser with the trigger disabled, as an
// attacker with that power would) is found by VerifyChain.
func TestTreasuryVerifyChainFindsTampering(t *testing.T) {
	pg := testharness.FreshPG(t)
	tr := db.NewTreasury(pg.TreasuryPool)
	pool := openAs(t, pg.AdminURL)
	ctx := t.Context()
	for i := range 3 {
		_, err := tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: int64(1000 * (i + 1)), OccurredAt: time.Now()})
		require.NoError(t, err)
	}
	n, err := tr.VerifyChain(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `ALTER TABLE treasury.events DISABLE TRIGGER events_append_only`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE treasury.events SET payload = replace(payload, '"fee_stroops":20', '"fee_stroops":99') WHERE seq = 2`)
		return err
	})
	require.NoError(t, err)
	_, err = tr.VerifyChain(ctx)
	var ce *db.ChainError
	require.True(t, errors.As(err, &ce), "got %v", err)
	require.Equal(t, int64(2), ce.Seq)
}

// Property: under random sequences of yield, request, cancel, expire and execute, the fund
// equals the fees credited minus the bailouts executed, reserved equals the pending bailouts,
// nothing goes negative, and the chain verifies.
func TestTreasuryBalanceInvariantsProperty(t *testing.T) {
	pool := testharness.FreshPG(t).TreasuryPool
	tr := db.NewTreasury(pool)
	ctx := t.Context()
	r := rand.New(rand.NewPCG(4, 2))
	assets := []string{"USDC", "XLM"}
	fees := map[string]int64{}
	paid := map[string]int64{}
	pending := map[uuid.UUID]db.Bailout{}
	at := time.Now().UTC()
	for step := range 300 {
		asset := assets[r.IntN(2)]
		switch op := r.IntN(5); {
		case op <= 1:
			res, err := tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: asset, GrossStroops: r.Int64N(1_000_000) + 1, OccurredAt: at})
			require.NoError(t, err)
			fees[asset] += res.FeeStroops
		case op == 2:
			b := newBailout(asset, r.Int64N(5_000)+1, at)
			avail := treasuryBalance(t, tr, asset).Available()
			_, err := tr.ReserveBailout(ctx, b)
			if b.AmountStroops <= avail {
				require.NoError(t, err, "step %d", step)
				pending[b.ID] = b
			} else {
				require.Equal(t, db.KindInvalid, kindOf(err), "step %d", step)
			}
		default:
			for id, b := range pending {
				switch r.IntN(3) {
				case 0:
					require.NoError(t, tr.CloseBailout(ctx, id, db.BailoutCancelled, "x", at))
				case 1:
					require.NoError(t, tr.CloseBailout(ctx, id, db.BailoutExpired, "", at))
				default:
					require.NoError(t, tr.ExecuteBailout(ctx, id, "00", at))
					paid[b.Asset] += b.AmountStroops
				}
				delete(pending, id)
				break
			}
		}
		for _, a := range assets {
			var reserved int64
			for _, b := range pending {
				if b.Asset == a {
					reserved += b.AmountStroops
				}
			}
			got := treasuryBalance(t, tr, a)
			require.Equal(t, fees[a]-paid[a], got.Balance, "step %d %s", step, a)
			require.Equal(t, reserved, got.Reserved, "step %d %s", step, a)
			require.GreaterOrEqual(t, got.Available(), int64(0))
		}
	}
	_, err := tr.VerifyChain(ctx)
	require.NoError(t, err)
}
