package workers

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/demo"
	"github.com/creatorvault/orchestrator/forecast"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workflows"
)

// TestForecastRefreshEndToEnd runs the refresh on the embedded Temporal server with the real
// worker and PostgreSQL seeded with the demo: every creator gets a stored forecast, the search
// attribute counts them, and one creator can be refreshed alone. With UPDATE_HISTORY=1 it
// records the replay test's history.
func TestForecastRefreshEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool, _ := testharness.FreshDB(t)
	anchor := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	d, err := demo.Seed(ctx, pool, anchor)
	require.NoError(t, err)
	tc := testharness.Temporal(t)
	require.NoError(t, EnsureSearchAttributes(ctx, tc, "default"))

	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.Forecast.BatchSize = 2 // the three demo creators take two batches
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(wctx, Deps{Client: tc, Pool: pool, Config: cfg, Logger: testharness.Logger(t)}, []string{workflows.ForecastTaskQueue})
	}()
	defer func() { stop(); require.NoError(t, <-done) }()

	id := "forecast-refresh-e2e-" + uuid.NewString()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.ForecastTaskQueue},
		workflows.ForecastRefreshWorkflow, workflows.ForecastRefreshInput{AsOf: anchor, BatchSize: cfg.Forecast.BatchSize})
	require.NoError(t, err)
	var res workflows.ForecastRefreshResult
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, 3, res.Done)
	require.Equal(t, 2, res.Batches)

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM forecasts WHERE as_of = $1`, anchor).Scan(&n))
	require.Equal(t, 3, n)
	for _, c := range d.Creators {
		fs, err := db.LatestForecasts(ctx, pool, c.ID)
		require.NoError(t, err)
		require.NotEmpty(t, fs)
		for _, f := range fs {
			require.Len(t, f.Predictions, 3)
			require.Positive(t, f.Predictions[0].Predicted)
		}
	}
	desc, err := tc.DescribeWorkflow(ctx, id, run.GetRunID())
	require.NoError(t, err)
	v, ok := desc.TypedSearchAttributes.GetInt64(workflows.ForecastCreatorsDone)
	require.True(t, ok)
	require.Equal(t, int64(3), v)

	if os.Getenv("UPDATE_HISTORY") == "1" {
		var h historypb.History
		it := tc.GetWorkflowHistory(ctx, id, run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		for it.HasNext() {
			ev, err := it.Next()
			require.NoError(t, err)
			h.Events = append(h.Events, ev)
		}
		b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(&h)
		require.NoError(t, err)
		require.NoError(t, os.WriteFile("../workflows/testdata/forecast_refresh.json", b, 0o644))
	}

	// On demand: one creator, the next day.
	one := d.Creators[1].ID
	run, err = tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.ForecastRefreshWorkflowID(one, anchor.AddDate(0, 0, 1)), TaskQueue: workflows.ForecastTaskQueue},
		workflows.ForecastRefreshWorkflow, workflows.ForecastRefreshInput{AsOf: anchor.AddDate(0, 0, 1), Creators: []uuid.UUID{one}})
	require.NoError(t, err)
	require.NoError(t, run.Get(ctx, &res))
	require.Equal(t, 1, res.Done)
	fs, err := db.LatestForecasts(ctx, pool, one)
	require.NoError(t, err)
	for _, f := range fs {
		require.Equal(t, anchor.AddDate(0, 0, 1), f.AsOf.UTC())
	}
}

// TestForecastSchedule: the daily refresh schedule is applied with overlap skip, and applying
// again changes nothing.
func TestForecastSchedule(t *testing.T) {
	ctx := context.Background()
	tc := testharness.Temporal(t)
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	require.NoError(t, ApplySchedules(ctx, tc, cfg))
	require.NoError(t, ApplySchedules(ctx, tc, cfg))
	desc, err := tc.ScheduleClient().GetHandle(ctx, workflows.ForecastRefreshScheduleID).Describe(ctx)
	require.NoError(t, err)
	require.Equal(t, enumspb.SCHEDULE_OVERLAP_POLICY_SKIP, desc.Schedule.Policy.Overlap)
	action, ok := desc.Schedule.Action.(*client.ScheduleWorkflowAction)
	require.True(t, ok)
	require.Equal(t, workflows.ForecastTaskQueue, action.TaskQueue)
}

// BenchmarkForecastRefresh refreshes synthetic creators (FORECAST_BENCH_CREATORS, default
// 100,000) with 180 days of history in real PostgreSQL (written with COPY), end to end through
// the workflow on the embedded Temporal server, and in the same run times the engine alone
// over the same histories in memory on all cores. It prints where the rest of the end-to-end
// time goes: the database read, the engine and the write inside the batches (they overlap, so
// their sum exceeds the batches' wall time), and what lies outside the batches (Temporal).
// Target: end to end ≤ 1.5× the engine alone. FORECAST_BENCH_BATCH and FORECAST_BENCH_CHUNK
// set the creators per activity and per query (defaults FORECAST_BATCH_SIZE and
// activities.DefaultForecastChunk), for tuning.
func BenchmarkForecastRefresh(b *testing.B) {
	n := benchEnv(b, "FORECAST_BENCH_CREATORS", 100_000)
	ctx := context.Background()
	pg := testharness.FreshPG(b)
	pool := pg.Pool // the runtime role, as the worker runs
	anchor := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	seedStart := time.Now()
	rows := seedBenchCreators(b, pool, n, anchor)
	owner, err := db.Open(ctx, pg.OwnerURL) // statistics for the planner: only the owner may ANALYZE
	require.NoError(b, err)
	_, err = owner.Exec(ctx, `ANALYZE`)
	owner.Close()
	require.NoError(b, err)
	seeded := time.Since(seedStart)

	tc := testharness.Temporal(b)
	require.NoError(b, EnsureSearchAttributes(ctx, tc, "default"))
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(b, err)
	batch := benchEnv(b, "FORECAST_BENCH_BATCH", cfg.Forecast.BatchSize)
	chunk := benchEnv(b, "FORECAST_BENCH_CHUNK", activities.DefaultForecastChunk)
	// The worker of the forecast queue, as forecastQueues registers it, with stage timings.
	var stats activities.ForecastStats
	w := worker.New(tc, workflows.ForecastTaskQueue, worker.Options{MaxConcurrentActivityExecutionSize: 2})
	w.RegisterWorkflow(workflows.ForecastRefreshWorkflow)
	w.RegisterActivity(&activities.Forecast{Pool: pool, Paths: cfg.Forecast.Paths, Chunk: chunk, Stats: &stats})
	require.NoError(b, w.Start())
	defer w.Stop()

	b.ResetTimer()
	start := time.Now()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "forecast-bench-" + uuid.NewString(), TaskQueue: workflows.ForecastTaskQueue},
		workflows.ForecastRefreshWorkflow, workflows.ForecastRefreshInput{AsOf: anchor, BatchSize: batch})
	require.NoError(b, err)
	var res workflows.ForecastRefreshResult
	require.NoError(b, run.Get(ctx, &res))
	took := time.Since(start)
	b.StopTimer()
	require.Equal(b, n, res.Done+res.Skipped)

	// The engine alone: the same histories, read beforehand, on every core.
	var histories []db.CreatorHistory
	for after := uuid.Nil; ; {
		ids, err := db.CreatorIDsAfter(ctx, pool, after, 5000)
		require.NoError(b, err)
		if len(ids) == 0 {
			break
		}
		hs, err := db.CreatorHistories(ctx, pool, ids, anchor, forecast.HistoryDays)
		require.NoError(b, err)
		histories = append(histories, hs...)
		after = ids[len(ids)-1]
	}
	engineStart := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	var forecasts atomic.Int64
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(histories); i = int(next.Add(1) - 1) {
				fs, _, err := db.ForecastHistory(histories[i], anchor, cfg.Forecast.Paths)
				if err != nil {
					panic(err)
				}
				forecasts.Add(int64(len(fs)))
			}
		})
	}
	wg.Wait()
	engine := time.Since(engineStart)
	require.Equal(b, stats.Forecasts.Load(), forecasts.Load())

	sec := func(ns int64) string { return time.Duration(ns).Round(time.Millisecond).String() }
	inside := stats.ActivityNanos.Load()
	b.Logf("refresh: %d creators (180 days each, %d revenue rows written with COPY in %v), %d forecast (%d asset forecasts), %d skipped, %d batches of %d (chunks of %d), GOMAXPROCS %d",
		n, rows, seeded.Round(time.Second), res.Done, forecasts.Load(), res.Skipped, res.Batches, batch, chunk, runtime.GOMAXPROCS(0))
	b.Logf("end to end %v (%.0f creators/s); engine alone %v: ratio %.2f (target ≤ 1.5)",
		took.Round(time.Millisecond), float64(n)/took.Seconds(), engine.Round(time.Millisecond), took.Seconds()/engine.Seconds())
	b.Logf("where it goes: inside the batches %s (read %s, engine %s, write %s, overlapped), outside them (Temporal) %s",
		sec(inside), sec(stats.ReadNanos.Load()), sec(stats.EngineNanos.Load()), sec(stats.WriteNanos.Load()), sec(int64(took)-inside))
	b.ReportMetric(float64(n)/took.Seconds(), "creators/s")
	b.ReportMetric(took.Seconds()/engine.Seconds(), "x-engine")
}

func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s: %q is not a positive number", name, v)
	}
	return n
}

// seedBenchCreators writes n creators with COPY: each has 8 monthly subscriptions started at
// different days of the 180 before anchor, some cancelled, all paid every 30 days, and a tip
// every week, in USDC; every fourth creator also sells a tier priced in XLM (two of the
// subscriptions, and the tips, in XLM). It returns the number of revenue events.
func seedBenchCreators(b *testing.B, pool *pgxpool.Pool, n int, anchor time.Time) int64 {
	ctx := context.Background()
	const fans = 8
	day := 24 * time.Hour
	rng := rand.New(rand.NewPCG(16, uint64(n)))
	newID := func() uuid.UUID {
		var id uuid.UUID
		binary.BigEndian.PutUint64(id[:8], rng.Uint64())
		binary.BigEndian.PutUint64(id[8:], rng.Uint64())
		id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80 // version 4
		return id
	}
	creators := make([]uuid.UUID, n)
	for i := range creators {
		creators[i] = newID()
	}
	fanIDs := make([]uuid.UUID, fans)
	for j := range fanIDs {
		fanIDs[j] = newID()
	}
	usdcTier, xlmTier := make([]uuid.UUID, n), make([]uuid.UUID, n)
	for i := range creators {
		usdcTier[i] = newID()
		if i%4 == 0 {
			xlmTier[i] = newID()
		}
	}
	copyRows := func(table string, cols []string, next func(i int) ([]any, bool)) int64 {
		i := 0
		done, err := pool.CopyFrom(ctx, pgx.Identifier{table}, cols, pgx.CopyFromFunc(func() ([]any, error) {
			row, ok := next(i)
			i++
			if !ok {
				return nil, nil
			}
			return row, nil
		}))
		require.NoError(b, err, table)
		return done
	}
	copyRows("users", []string{"id", "role", "display_name"}, func(i int) ([]any, bool) {
		switch {
		case i < fans:
			return []any{fanIDs[i], "fan", "Bench fan " + strconv.Itoa(i)}, true
		case i < fans+n:
			return []any{creators[i-fans], "creator", "Bench " + strconv.Itoa(i-fans)}, true
		}
		return nil, false
	})
	copyRows("creators", []string{"id", "handle"}, func(i int) ([]any, bool) {
		if i >= n {
			return nil, false
		}
		return []any{creators[i], "bench_" + strconv.Itoa(i)}, true
	})
	var tiers [][]any
	for i := range creators {
		tiers = append(tiers, []any{usdcTier[i], creators[i], "Bronze", int16(1), int64(50_000_000 + (i%7)*10_000_000), "USDC"})
		if i%4 == 0 {
			tiers = append(tiers, []any{xlmTier[i], creators[i], "Silver", int16(2), int64(2_000_000_000 + (i%5)*100_000_000), "XLM"})
		}
	}
	_, err := pool.CopyFrom(ctx, pgx.Identifier{"subscription_tiers"}, []string{"id", "creator_id", "name", "level", "price_stroops", "asset"},
		pgx.CopyFromRows(tiers))
	require.NoError(b, err)

	// One subscription per creator and fan; revenue events generated from them.
	type sub struct {
		id, creator, fan, tier uuid.UUID
		asset                  string
		price                  int64
		started                time.Time
		periods                int // payments made before anchor
		cancelled              *time.Time
	}
	subOf := func(i, j int) sub {
		s := sub{id: newID(), creator: creators[i], fan: fanIDs[j], tier: usdcTier[i], asset: "USDC",
			price: int64(50_000_000 + (i%7)*10_000_000)}
		if i%4 == 0 && j >= fans-2 {
			s.tier, s.asset, s.price = xlmTier[i], "XLM", int64(2_000_000_000+(i%5)*100_000_000)
		}
		s.started = anchor.Add(-time.Duration(5+(i*7+(j+1)*23)%175)*day - time.Duration(rng.IntN(86400))*time.Second)
		s.periods = int(anchor.Sub(s.started)/day)/30 + 1
		if (i+j+1)%5 == 0 {
			c := s.started.Add(3*day + time.Duration(30*(s.periods-1))*day)
			s.cancelled = &c
		}
		return s
	}
	subs := make([]sub, 0, n*fans)
	for i := range creators {
		for j := range fans {
			subs = append(subs, subOf(i, j))
		}
	}
	copyRows("subscriptions", []string{"id", "fan_id", "creator_id", "tier_id", "status", "started_at", "current_period_end", "cancelled_at"},
		func(k int) ([]any, bool) {
			if k >= len(subs) {
				return nil, false
			}
			s := subs[k]
			status := "active"
			if s.cancelled != nil {
				status = "cancelled"
			}
			return []any{s.id, s.fan, s.creator, s.tier, status, s.started, s.started.Add(time.Duration(30*s.periods) * day), s.cancelled}, true
		})
	// Revenue: each subscription's payments, then each creator's 25 weekly tips.
	const tips = 25
	k, p, c, w := 0, 0, 0, 1
	rows := copyRows("revenue_events", []string{"id", "external_id", "creator_id", "fan_id", "subscription_id", "kind", "amount_stroops", "asset", "occurred_at"},
		func(int) ([]any, bool) {
			for k < len(subs) {
				s := subs[k]
				at := s.started.Add(time.Duration(30*p) * day)
				if p < s.periods && at.Before(anchor) {
					p++
					return []any{newID(), "bench-" + s.id.String() + "-" + strconv.Itoa(p), s.creator, s.fan, s.id,
						"subscription_payment", s.price, s.asset, at}, true
				}
				k, p = k+1, 0
			}
			for c < n {
				if w <= tips {
					asset, amount := "USDC", int64(10_000_000+(c*w%13)*1_000_000)
					if c%4 == 0 && w%2 == 0 {
						asset, amount = "XLM", int64(300_000_000+(c*w%11)*10_000_000)
					}
					at := anchor.Add(-time.Duration(7*w+c%7)*day - 3*time.Hour)
					w++
					return []any{newID(), "bench-tip-" + creators[c].String() + "-" + strconv.Itoa(w), creators[c], nil, nil,
						"tip", amount, asset, at}, true
				}
				c, w = c+1, 1
			}
			return nil, false
		})
	return rows
}
