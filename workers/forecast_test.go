package workers

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
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
