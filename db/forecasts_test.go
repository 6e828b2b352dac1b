package db_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// forecastFixture is a creator with two subscriptions and some revenue.
type forecastFixture struct {
	creator, fanA, fanB, subA, subB uuid.UUID
	day                             time.Time // the as-of day
}

func newForecastFixture(t *testing.T) (forecastFixture, context.Context, *pgxpool.Pool) {
	t.Helper()
	ctx := context.Background()
	pool, _ := testharness.FreshDB(t)
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	fx := forecastFixture{creator: uuid.New(), fanA: uuid.New(), fanB: uuid.New(), day: time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)}
	handle := "fc_creator"
	_, _, err := db.UpsertUser(ctx, pool, fx.creator, db.UserInput{Role: "creator", DisplayName: "C", Handle: &handle}, now)
	require.NoError(t, err)
	for _, f := range []uuid.UUID{fx.fanA, fx.fanB} {
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
	fx.subA, fx.subB = a.ID, b.ID
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
	require.Len(t, h.Revenue, 60)
	want := make([]int64, 60)
	want[10] = 5_0000000  // A's first payment, 50 days before
	want[40] += 6_0000000 // B's payment and extra, 20 days before
	want[40] += 5_0000000 // A's second payment, 20 days before
	want[59] = 2_0000000  // the tip a minute before midnight
	require.Equal(t, want, h.Revenue)
	require.Equal(t, 2, h.Streams)
	require.Equal(t, 1, h.Cancellations)
	require.Equal(t, 1, h.Active) // A renewed once: live until 10 days after the as-of day
	require.Equal(t, db.CreatorHistory{CreatorID: other, From: h.From, Revenue: make([]int64, 60)}, hs[1])

	// A window that ends before B existed.
	hs, err = db.CreatorHistories(ctx, pool, []uuid.UUID{fx.creator}, fx.day.AddDate(0, 0, -30), 30)
	require.NoError(t, err)
	require.Equal(t, 1, hs[0].Streams)
	require.Equal(t, 0, hs[0].Cancellations)
}

func TestForecastsStoreAndPage(t *testing.T) {
	fx, ctx, pool := newForecastFixture(t)
	ids, err := db.CreatorIDsAfter(ctx, pool, uuid.Nil, 10)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{fx.creator}, ids)
	ids, err = db.CreatorIDsAfter(ctx, pool, fx.creator, 10)
	require.NoError(t, err)
	require.Empty(t, ids)

	_, err = db.LatestForecast(ctx, pool, fx.creator)
	require.ErrorIs(t, err, db.ErrNotFound)

	f := db.Forecast{CreatorID: fx.creator, AsOf: fx.day, ModelVersion: "v-test", Paths: 1000, HistoryDays: 120,
		ConfidenceLevel: 0.95, BaseRevenue: 100, ChurnRate: 0.1, GrowthRate: 0.2, Volatility: 0.03, StreamCount: 1,
		Predictions: []db.ForecastPrediction{{PeriodDays: 30, Predicted: 110, Lower: 90, Upper: 130}}}
	now := fx.day.Add(time.Hour)
	require.NoError(t, db.UpsertForecasts(ctx, pool, []db.Forecast{f}, now))
	f.BaseRevenue = 200 // the same day again replaces
	require.NoError(t, db.UpsertForecasts(ctx, pool, []db.Forecast{f}, now.Add(time.Minute)))
	got, err := db.LatestForecast(ctx, pool, fx.creator)
	require.NoError(t, err)
	require.Equal(t, int64(200), got.BaseRevenue)
	require.Equal(t, f.Predictions, got.Predictions)
	require.Equal(t, fx.day, got.AsOf.UTC())
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM forecasts`).Scan(&n))
	require.Equal(t, 1, n)

	f.CreatorID = uuid.New()
	err = db.UpsertForecasts(ctx, pool, []db.Forecast{f}, now)
	de, ok := db.AsError(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, db.KindInvalid, de.Kind)
}

func TestCreatorStreams(t *testing.T) {
	fx, ctx, pool := newForecastFixture(t)
	sum, streams, next, err := db.CreatorStreams(ctx, pool, fx.creator, fx.day, db.Page{Limit: 1})
	require.NoError(t, err)
	require.Equal(t, db.StreamSummary{Active: 1, Cancellations30d: 1, CancellationsTotal: 1, Total: 2, TipStroops: 11_0000000}, sum)
	require.Len(t, streams, 1)
	require.NotNil(t, next)
	require.Equal(t, fx.subB, streams[0].ID)
	require.Equal(t, "cancelled", streams[0].Status)
	require.Equal(t, int64(6_0000000), streams[0].RevenueStroops)
	_, streams, next, err = db.CreatorStreams(ctx, pool, fx.creator, fx.day, db.Page{Limit: 1, After: next})
	require.NoError(t, err)
	require.Nil(t, next)
	require.Equal(t, fx.subA, streams[0].ID)
	require.Equal(t, "active", streams[0].Status)
	require.Equal(t, int64(10_0000000), streams[0].RevenueStroops)

	_, _, _, err = db.CreatorStreams(ctx, pool, uuid.New(), fx.day, db.Page{Limit: 1})
	require.ErrorIs(t, err, db.ErrNotFound)
}
