package activities

import (
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/demo"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestRefreshForecastsPagesAndResumes(t *testing.T) {
	ctx := t.Context()
	pool, _ := testharness.FreshDB(t)
	anchor := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	_, err := demo.Seed(ctx, pool, anchor)
	require.NoError(t, err)
	// A creator with no revenue is skipped, not an error; its id sorts last.
	quiet := uuid.MustParse("ffffffff-ffff-4fff-bfff-ffffffffffff")
	handle := "quiet_one"
	_, _, err = db.UpsertUser(ctx, pool, quiet, db.UserInput{Role: "creator", DisplayName: "Quiet", Handle: &handle}, anchor)
	require.NoError(t, err)
	ids, err := db.CreatorIDsAfter(ctx, pool, uuid.Nil, 10)
	require.NoError(t, err)
	require.Len(t, ids, 4)

	a := &Forecast{Pool: pool, Paths: 200, Now: func() time.Time { return anchor }}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestActivityEnvironment()
	env.RegisterActivity(a)

	// First page of two.
	v, err := env.ExecuteActivity(a.RefreshForecasts, ForecastBatchInput{AsOf: anchor, Limit: 2})
	require.NoError(t, err)
	var res ForecastBatchResult
	require.NoError(t, v.Get(&res))
	require.Equal(t, ForecastBatchResult{Last: ids[1], Done: 2, More: true}, res)

	// A retry of the next page whose earlier attempt heartbeated ids[2] as done resumes after
	// it: only the quiet creator is left, and it is skipped. The page was not full: no more.
	env2 := s.NewTestActivityEnvironment()
	env2.RegisterActivity(a)
	env2.SetHeartbeatDetails(forecastProgress{Last: ids[2], Done: 1})
	v, err = env2.ExecuteActivity(a.RefreshForecasts, ForecastBatchInput{AsOf: anchor, After: ids[1], Limit: 3})
	require.NoError(t, err)
	require.NoError(t, v.Get(&res))
	require.Equal(t, ForecastBatchResult{Last: quiet, Done: 1, Skipped: 1, More: false}, res)

	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM forecasts`).Scan(&n))
	require.Equal(t, 2, n, "ids[2] was not redone after the heartbeat; the quiet creator is skipped")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM forecasts WHERE creator_id = ANY($1)`, ids[:2]).Scan(&n))
	require.Equal(t, 2, n)

	// Bad input is a non-retryable business failure.
	_, err = env.ExecuteActivity(a.RefreshForecasts, ForecastBatchInput{Limit: 3})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.True(t, appErr.NonRetryable())
}
