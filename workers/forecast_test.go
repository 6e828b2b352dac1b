package workers

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/demo"
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
		f, err := db.LatestForecast(ctx, pool, c.ID)
		require.NoError(t, err)
		require.Len(t, f.Predictions, 3)
		require.Positive(t, f.Predictions[0].Predicted)
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
	f, err := db.LatestForecast(ctx, pool, one)
	require.NoError(t, err)
	require.Equal(t, anchor.AddDate(0, 0, 1), f.AsOf.UTC())
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
// 100,000) with 180 days of history in real PostgreSQL, end to end through the workflow on the
// embedded Temporal server. Target: 100,000 in under 3 minutes on 2 cores.
func BenchmarkForecastRefresh(b *testing.B) {
	n := 100_000
	if v := os.Getenv("FORECAST_BENCH_CREATORS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 {
			b.Fatalf("FORECAST_BENCH_CREATORS: %q is not a positive number", v)
		}
	}
	ctx := context.Background()
	pool, _ := testharness.FreshDB(b)
	anchor := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	seedStart := time.Now()
	seedBenchCreators(b, pool, n, anchor)
	seeded := time.Since(seedStart)

	tc := testharness.Temporal(b)
	require.NoError(b, EnsureSearchAttributes(ctx, tc, "default"))
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(b, err)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- Run(wctx, Deps{Client: tc, Pool: pool, Config: cfg, Logger: slog.New(slog.DiscardHandler)}, []string{workflows.ForecastTaskQueue})
	}()
	defer func() { stop(); <-done }()

	b.ResetTimer()
	start := time.Now()
	run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "forecast-bench-" + uuid.NewString(), TaskQueue: workflows.ForecastTaskQueue},
		workflows.ForecastRefreshWorkflow, workflows.ForecastRefreshInput{AsOf: anchor, BatchSize: cfg.Forecast.BatchSize})
	require.NoError(b, err)
	var res workflows.ForecastRefreshResult
	require.NoError(b, run.Get(ctx, &res))
	took := time.Since(start)
	b.StopTimer()
	require.Equal(b, n, res.Done+res.Skipped)
	rate := float64(n) / took.Seconds()
	b.Logf("refresh: %d creators (180 days each; seeded in %v), %d forecast, %d skipped, %d batches, %v: %.0f creators/s (target: 100,000 in < 3m)",
		n, seeded.Round(time.Second), res.Done, res.Skipped, res.Batches, took.Round(time.Millisecond), rate)
	b.ReportMetric(rate, "creators/s")
}

// seedBenchCreators writes n creators, each with 8 monthly subscriptions started at different
// days of the 180 before anchor, some cancelled, all paid every 30 days, and a tip every week.
func seedBenchCreators(b *testing.B, pool *pgxpool.Pool, n int, anchor time.Time) {
	ctx := context.Background()
	tx, err := pool.Begin(ctx)
	require.NoError(b, err)
	defer func() { _ = tx.Rollback(ctx) }()
	for _, q := range []string{
		`CREATE TEMP TABLE bc ON COMMIT DROP AS SELECT gen_random_uuid() AS id, i FROM generate_series(1, $1::int) i`,
		`CREATE TEMP TABLE bf ON COMMIT DROP AS SELECT gen_random_uuid() AS id, j FROM generate_series(1, 8) j`,
		`INSERT INTO users (id, role, display_name) SELECT id, 'creator', 'Bench ' || i FROM bc`,
		`INSERT INTO users (id, role, display_name) SELECT id, 'fan', 'Bench fan ' || j FROM bf`,
		`INSERT INTO creators (id, handle) SELECT id, 'bench_' || i FROM bc`,
		`INSERT INTO subscription_tiers (id, creator_id, name, level, price_stroops, asset)
		   SELECT gen_random_uuid(), id, 'Bronze', 1, 50000000 + (i % 7) * 10000000, 'USDC' FROM bc`,
		`CREATE TEMP TABLE bs ON COMMIT DROP AS
		   SELECT gen_random_uuid() AS id, c.id AS creator, f.id AS fan, t.id AS tier, t.price_stroops AS price,
		          $2::timestamptz - make_interval(days => 5 + ((c.i * 7 + f.j * 23) % 175)) AS started,
		          ((c.i + f.j) % 5 = 0) AS cancels
		     FROM bc c CROSS JOIN bf f JOIN subscription_tiers t ON t.creator_id = c.id`,
		`INSERT INTO subscriptions (id, fan_id, creator_id, tier_id, status, started_at, current_period_end, cancelled_at)
		   SELECT id, fan, creator, tier,
		          CASE WHEN cancels THEN 'cancelled' ELSE 'active' END, started,
		          started + make_interval(days => 30 * (floor(extract(epoch FROM $2::timestamptz - started) / 86400 / 30)::int + 1)),
		          CASE WHEN cancels THEN started + interval '3 days' + make_interval(days => 30 * floor(extract(epoch FROM $2::timestamptz - started) / 86400 / 30)::int) END
		     FROM bs`,
		`INSERT INTO revenue_events (id, external_id, creator_id, fan_id, subscription_id, kind, amount_stroops, asset, occurred_at)
		   SELECT gen_random_uuid(), 'bench-' || s.id || '-' || p, s.creator, s.fan, s.id, 'subscription_payment', s.price, 'USDC',
		          s.started + make_interval(days => 30 * p)
		     FROM bs s, generate_series(0, floor(extract(epoch FROM $2::timestamptz - s.started) / 86400 / 30)::int) p
		    WHERE s.started + make_interval(days => 30 * p) < $2::timestamptz`,
		`INSERT INTO revenue_events (id, external_id, creator_id, kind, amount_stroops, asset, occurred_at)
		   SELECT gen_random_uuid(), 'bench-tip-' || c.id || '-' || w, c.id, 'tip', 10000000 + (c.i * w % 13) * 1000000, 'USDC',
		          $2::timestamptz - make_interval(days => 7 * w + c.i % 7, hours => 3)
		     FROM bc c, generate_series(1, 25) w`,
	} {
		var args []any
		switch has1, has2 := strings.Contains(q, "$1"), strings.Contains(q, "$2"); {
		case has1:
			args = []any{n}
		case has2:
			q, args = strings.ReplaceAll(q, "$2", "$1"), []any{anchor}
		}
		_, err := tx.Exec(ctx, q, args...)
		require.NoError(b, err, q)
	}
	require.NoError(b, tx.Commit(ctx))
	_, err = pool.Exec(ctx, `ANALYZE`)
	require.NoError(b, err)
}
