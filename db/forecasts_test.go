package db_test

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/forecast"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// forecastFixture is a creator with two USDC subscriptions, one XLM subscription and some
// revenue in both assets.
type forecastFixture struct {
	creator, fanA, fanB, fanC, subA, subB, subC uuid.UUID
	day                                         time.Time // the as-of day
}

func newForecastFixture(t *testing.T) (forecastFixture, context.Context, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, _ := testharness.FreshDB(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	fx := forecastFixture{creator: uuid.New(), fanA: uuid.New(), fanB: uuid.New(), fanC: uuid.New(), day: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	handle := "fc_creator"
	_, _, err := db.UpsertUser(ctx, pool, fx.creator, db.UserInput{Role: "creator", DisplayName: "C", Handle: &handle}, now)
	require.NoError(t, err)
	for _, f := range []uuid.UUID{fx.fanA, fx.fanB, fx.fanC} {
		_, _, err = db.UpsertUser(ctx, pool, f, db.UserInput{Role: "fan", DisplayName: "F"}, now)
		require.NoError(t, err)
	}
	tier := uuid.New()
	_, _, err = db.UpsertTier(ctx, pool, fx.creator, tier, db.TierInput{Name: "Bronze", Level: 1, PriceStroops: 5_0000000, Asset: "USDC", PeriodDays: 30}, now)
	require.NoError(t, err)
	startA := fx.day.AddDate(0, 0, -50)
	a, err := db.CreateSubscription(ctx, pool, db.SubscriptionInput{FanID: fx.fanA, CreatorID: fx.creator, TierID: tier, StartedAt: &startA}, now)
	require.NoError(t, err)
	_, err = db.RenewSubscription(ctx, pool, a.ID, startA.AddDate(0, 0, 29))
	require.NoError(t, err)
	startB := fx.day.AddDate(0, 0, -20)
	b, err := db.CreateSubscription(ctx, pool, db.SubscriptionInput{FanID: fx.fanB, CreatorID: fx.creator, TierID: tier, StartedAt: &startB}, now)
	require.NoError(t, err)
	_, err = db.CancelSubscription(ctx, pool, b.ID, fx.day.AddDate(0, 0, -5))
	require.NoError(t, err)
	xlmTier := uuid.New()
	_, _, err = db.UpsertTier(ctx, pool, fx.creator, xlmTier, db.TierInput{Name: "Stellar", Level: 2, PriceStroops: 40_0000000, Asset: "XLM", PeriodDays: 30}, now)
	require.NoError(t, err)
	startC := fx.day.AddDate(0, 0, -40)
	c, err := db.CreateSubscription(ctx, pool, db.SubscriptionInput{FanID: fx.fanC, CreatorID: fx.creator, TierID: xlmTier, StartedAt: &startC}, now)
	require.NoError(t, err)
	fx.subA, fx.subB, fx.subC = a.ID, b.ID, c.ID
	var evs []db.RevenueEventInput
	pay := func(sub uuid.UUID, at time.Time, amount int64) {
		s := sub
		evs = append(evs, db.RevenueEventInput{ExternalID: fmt.Sprintf("fc-%d", len(evs)), CreatorID: fx.creator,
			SubscriptionID: &s, Kind: db.KindSubscriptionPayment, AmountStroops: amount, Asset: "USDC", OccurredAt: at})
	}
	pay(a.ID, startA.Add(time.Hour), 5_0000000)
	pay(a.ID, startA.AddDate(0, 0, 30).Add(time.Hour), 5_0000000)
	pay(b.ID, startB.Add(2*time.Hour), 5_0000000)
	pay(b.ID, startB.Add(3*time.Hour), 1_0000000)
	evs = append(evs, db.RevenueEventInput{ExternalID: "fc-tip", CreatorID: fx.creator, FanID: &fx.fanA, Kind: db.KindTip,
		AmountStroops: 2_0000000, Asset: "USDC", OccurredAt: fx.day.Add(-time.Minute)})
	evs = append(evs, db.RevenueEventInput{ExternalID: "fc-today", CreatorID: fx.creator, FanID: &fx.fanA, Kind: db.KindTip,
		AmountStroops: 9_0000000, Asset: "USDC", OccurredAt: fx.day.Add(time.Minute)}) // after the window
	evs = append(evs, db.RevenueEventInput{ExternalID: "fc-xlm", CreatorID: fx.creator, SubscriptionID: &c.ID,
		Kind: db.KindSubscriptionPayment, AmountStroops: 40_0000000, Asset: "XLM", OccurredAt: startC.Add(time.Hour)})
	evs = append(evs, db.RevenueEventInput{ExternalID: "fc-xlm-tip", CreatorID: fx.creator, FanID: &fx.fanC, Kind: db.KindTip,
		AmountStroops: 3_0000000, Asset: "XLM", OccurredAt: fx.day.AddDate(0, 0, -10)})
	_, err = db.RecordRevenueEvents(ctx, pool, evs)
	require.NoError(t, err)
	return fx, ctx, pool
}

func TestCreatorHistories(t *testing.T) {
	fx, ctx, pool := newForecastFixture(t)
	other := uuid.New()
	hs, err := db.CreatorHistories(ctx, pool, []uuid.UUID{fx.creator, other}, fx.day.Add(15*time.Hour), 60)
	require.NoError(t, err)
	require.Len(t, hs, 2)
	h := hs[0]
	require.Equal(t, fx.creator, h.CreatorID)
	require.Equal(t, fx.day.AddDate(0, 0, -60), h.From)
	require.Equal(t, 60, h.Days)
	require.Len(t, h.Assets, 2, "USDC and XLM, each in its own stroops")
	usdc, xlm := h.Assets[0], h.Assets[1]
	require.Equal(t, "USDC", usdc.Asset)
	want := make([]int64, 60)
	want[10] = 5_0000000  // A's first payment, 50 days before
	want[40] += 6_0000000 // B's payment and extra, 20 days before
	want[40] += 5_0000000 // A's second payment, 20 days before
	want[59] = 2_0000000  // the tip a minute before midnight
	require.Equal(t, want, usdc.Revenue)
	require.Equal(t, 2, usdc.Streams)
	require.Equal(t, 1, usdc.Cancellations)
	require.Equal(t, 1, usdc.Active) // A renewed once: live until 10 days after the as-of day
	require.Equal(t, "XLM", xlm.Asset)
	wantXLM := make([]int64, 60)
	wantXLM[20] = 40_0000000 // C's payment, 40 days before
	wantXLM[50] = 3_0000000  // C's tip, 10 days before
	require.Equal(t, wantXLM, xlm.Revenue)
	require.Equal(t, 1, xlm.Streams)
	require.Equal(t, 0, xlm.Active) // C's period ended 10 days ago
	got, ok := h.Asset("XLM")
	require.True(t, ok)
	require.Equal(t, xlm, got)
	_, ok = h.Asset("EURC")
	require.False(t, ok)
	require.Equal(t, db.CreatorHistory{CreatorID: other, From: h.From, Days: 60}, hs[1])

	// A window that ends before B existed: A's first payment and C's.
	hs, err = db.CreatorHistories(ctx, pool, []uuid.UUID{fx.creator}, fx.day.AddDate(0, 0, -30), 30)
	require.NoError(t, err)
	require.Len(t, hs[0].Assets, 2)
	require.Equal(t, 1, hs[0].Assets[0].Streams)
	require.Equal(t, 0, hs[0].Assets[0].Cancellations)
	require.Equal(t, int64(40_0000000), hs[0].Assets[1].Revenue[20])
}

// TestDailyRevenueViewPerAsset: creator_daily_revenue (migration 00016) keeps the assets
// apart, and the runtime role reads it and nothing more.
func TestDailyRevenueViewPerAsset(t *testing.T) {
	fx, ctx, pool := newForecastFixture(t)
	rows, err := pool.Query(ctx, `SELECT asset, sum(revenue_stroops)::bigint FROM creator_daily_revenue
		WHERE creator_id = $1 GROUP BY asset ORDER BY asset`, fx.creator)
	require.NoError(t, err)
	got := map[string]int64{}
	var asset string
	var sum int64
	_, err = pgx.ForEachRow(rows, []any{&asset, &sum}, func() error { got[asset] = sum; return nil })
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"USDC": 27_0000000, "XLM": 43_0000000}, got)
	var user string
	var canSelect, canDelete bool
	require.NoError(t, pool.QueryRow(ctx, `SELECT current_user, has_table_privilege('creator_daily_revenue', 'SELECT'),
		has_table_privilege('creator_daily_revenue', 'DELETE')`).Scan(&user, &canSelect, &canDelete))
	require.Equal(t, "orchestrator_app", user)
	require.True(t, canSelect)
	require.False(t, canDelete)
}

// TestForecastHistoryPerAsset: the adapter forecasts each asset apart, in its own stroops,
// declines what the engine declines (an unsupported asset, too little history), and never
// stores NaN.
func TestForecastHistoryPerAsset(t *testing.T) {
	creator := uuid.New()
	day := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	steady := func(amount int64) []int64 {
		r := make([]int64, forecast.HistoryDays)
		for i := range r {
			r[i] = amount + int64(i%7)*amount/10
		}
		return r
	}
	h := db.CreatorHistory{CreatorID: creator, From: day.AddDate(0, 0, -forecast.HistoryDays), Days: forecast.HistoryDays,
		Assets: []db.AssetHistory{
			{Asset: "USDC", Revenue: steady(3_0000000), Streams: 10, Active: 10},
			{Asset: "XLM", Revenue: steady(500_0000000), Streams: 2, Active: 2},
			{Asset: "EURC", Revenue: steady(1_0000000)},
			{Asset: "XLM", Revenue: make([]int64, 1)}, // a single day
		}}
	fs, refused, err := db.ForecastHistory(h, day, 200)
	require.NoError(t, err)
	require.Len(t, fs, 2)
	require.Equal(t, "USDC", fs[0].Asset)
	require.Equal(t, "XLM", fs[1].Asset)
	// Each in its own unit: XLM's run rate is about 167 times USDC's, not a sum of the two.
	require.InDelta(t, 166.7, float64(fs[1].BaseRevenue)/float64(fs[0].BaseRevenue), 1)
	for _, f := range fs {
		require.Equal(t, forecast.ModelVersion, f.ModelVersion)
		require.Len(t, f.Predictions, 3)
		for _, p := range f.Predictions {
			require.LessOrEqual(t, p.Lower, p.Predicted)
			require.LessOrEqual(t, p.Predicted, p.Upper)
		}
	}
	require.Len(t, refused, 2)
	require.Equal(t, "EURC", refused[0].Asset)
	require.ErrorIs(t, refused[0].Err, forecast.ErrUnsupportedAsset)
	require.ErrorIs(t, refused[1].Err, forecast.ErrShortHistory)

	// No revenue at all: refused, and the API's answer is a 422.
	_, refused, err = db.ForecastHistory(db.CreatorHistory{CreatorID: creator}, day, 200)
	require.NoError(t, err)
	de, ok := db.AsError(db.RefusalError(refused))
	require.True(t, ok)
	require.Equal(t, db.KindInvalid, de.Kind)
	require.Equal(t, "insufficient_history", de.Code)
	require.Equal(t, int64(0), db.Stroops(math.NaN()))
}

func TestForecastsStoreAndPage(t *testing.T) {
	fx, ctx, pool := newForecastFixture(t)
	ids, err := db.CreatorIDsAfter(ctx, pool, uuid.Nil, 10)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{fx.creator}, ids)
	ids, err = db.CreatorIDsAfter(ctx, pool, fx.creator, 10)
	require.NoError(t, err)
	require.Empty(t, ids)

	_, err = db.LatestForecasts(ctx, pool, fx.creator)
	require.ErrorIs(t, err, db.ErrNotFound)

	f := db.Forecast{CreatorID: fx.creator, Asset: "XLM", AsOf: fx.day, ModelVersion: forecast.ModelVersion, Paths: 1000,
		HistoryDays: 120, ConfidenceLevel: 0.95, BaseRevenue: 100, ChurnRate: 0.1, GrowthRate: 0.2, GrowthStdError: 0.05,
		Volatility: 0.03, VolatilityDF: 3.4, StreamCount: 1,
		Predictions: []db.ForecastPrediction{{PeriodDays: 30, Predicted: 110, Lower: 90, Upper: 130}}}
	g := f
	g.Asset, g.BaseRevenue = "USDC", 7
	now := fx.day.Add(time.Hour)
	require.NoError(t, db.UpsertForecasts(ctx, pool, []db.Forecast{f, g}, now))
	f.BaseRevenue = 200 // the same day and asset again replaces
	require.NoError(t, db.UpsertForecasts(ctx, pool, []db.Forecast{f}, now.Add(time.Minute)))
	// An older day's forecast is not the latest.
	old := g
	old.AsOf = fx.day.AddDate(0, 0, -1)
	require.NoError(t, db.UpsertForecasts(ctx, pool, []db.Forecast{old}, now))
	got, err := db.LatestForecasts(ctx, pool, fx.creator)
	require.NoError(t, err)
	require.Len(t, got, 2)
	require.Equal(t, "USDC", got[0].Asset)
	require.Equal(t, int64(7), got[0].BaseRevenue)
	require.Equal(t, "XLM", got[1].Asset)
	require.Equal(t, int64(200), got[1].BaseRevenue)
	require.Equal(t, 0.05, got[1].GrowthStdError)
	require.Equal(t, 3.4, got[1].VolatilityDF)
	require.Equal(t, f.Predictions, got[1].Predictions)
	require.Equal(t, fx.day, got[1].AsOf.UTC())
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM forecasts`).Scan(&n))
	require.Equal(t, 3, n)

	bad := f
	bad.CreatorID = uuid.New()
	err = db.UpsertForecasts(ctx, pool, []db.Forecast{bad}, now)
	de, ok := db.AsError(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, db.KindInvalid, de.Kind)
	bad = f
	bad.Asset = "EURC"
	err = db.UpsertForecasts(ctx, pool, []db.Forecast{bad}, now)
	de, ok = db.AsError(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, "unsupported_asset", de.Code)
}

func TestCreatorStreams(t *testing.T) {
	fx, ctx, pool := newForecastFixture(t)
	sums, streams, next, err := db.CreatorStreams(ctx, pool, fx.creator, fx.day, db.Page{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []db.AssetStreams{
		{Asset: "USDC", Active: 1, Cancellations30d: 1, CancellationsTotal: 1, Total: 2, RevenueStroops: 27_0000000, TipStroops: 11_0000000},
		{Asset: "XLM", Active: 0, Total: 1, RevenueStroops: 43_0000000, TipStroops: 3_0000000},
	}, sums)
	require.Len(t, streams, 1)
	require.NotNil(t, next)
	require.Equal(t, fx.subB, streams[0].ID)
	require.Equal(t, "cancelled", streams[0].Status)
	require.Equal(t, int64(6_0000000), streams[0].RevenueStroops)
	_, streams, next, err = db.CreatorStreams(ctx, pool, fx.creator, fx.day, db.Page{Limit: 1, After: next})
	require.NoError(t, err)
	require.NotNil(t, next)
	require.Equal(t, fx.subC, streams[0].ID)
	require.Equal(t, "XLM", streams[0].Asset)
	_, streams, next, err = db.CreatorStreams(ctx, pool, fx.creator, fx.day, db.Page{Limit: 1, After: next})
	require.NoError(t, err)
	require.Nil(t, next)
	require.Equal(t, fx.subA, streams[0].ID)
	require.Equal(t, "active", streams[0].Status)
	require.Equal(t, int64(10_0000000), streams[0].RevenueStroops)

	_, _, _, err = db.CreatorStreams(ctx, pool, uuid.New(), fx.day, db.Page{Limit: 1})
	require.ErrorIs(t, err, db.ErrNotFound)
}
