package workflows

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
)

// fakeCreators pages through n ordered ids like the real activity.
type fakeCreators struct {
	ids   []uuid.UUID
	calls []activities.ForecastBatchInput
}

func newFakeCreators(n int) *fakeCreators {
	f := &fakeCreators{}
	for i := range n {
		var id uuid.UUID
		id[15] = byte(i + 1)
		id[14] = byte((i + 1) >> 8)
		f.ids = append(f.ids, id)
	}
	return f
}

func (f *fakeCreators) refresh(_ context.Context, in activities.ForecastBatchInput) (activities.ForecastBatchResult, error) {
	f.calls = append(f.calls, in)
	var page []uuid.UUID
	for _, id := range f.ids {
		if string(id[:]) > string(in.After[:]) && len(page) < in.Limit {
			page = append(page, id)
		}
	}
	res := activities.ForecastBatchResult{Last: in.After, More: len(page) == in.Limit}
	for _, id := range page {
		if id[15]%5 == 0 {
			res.Skipped++
		} else {
			res.Done++
		}
		res.Last = id
	}
	return res, nil
}

// newForecastTestEnv is a test environment whose deadlock detector tolerates a machine busy
// with other builds.
func newForecastTestEnv(s *testsuite.WorkflowTestSuite) *testsuite.TestWorkflowEnvironment {
	env := s.NewTestWorkflowEnvironment()
	env.SetWorkerOptions(worker.Options{DeadlockDetectionTimeout: time.Minute})
	return env
}

func TestForecastRefreshPagesThroughCreators(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newForecastTestEnv(&s)
	fake := newFakeCreators(23)
	var a *activities.Forecast
	env.RegisterActivity(a)
	env.OnActivity(a.RefreshForecasts, mock.Anything, mock.Anything).Return(fake.refresh)
	var seen []int64
	env.OnUpsertTypedSearchAttributes(mock.MatchedBy(func(sa temporal.SearchAttributes) bool {
		v, ok := sa.GetInt64(ForecastCreatorsDone)
		if ok && (len(seen) == 0 || seen[len(seen)-1] != v) {
			seen = append(seen, v)
		}
		return ok
	})).Return(nil)
	start := time.Date(2026, 11, 26, 1, 30, 0, 0, time.UTC)
	env.SetStartTime(start)
	env.ExecuteWorkflow(ForecastRefreshWorkflow, ForecastRefreshInput{BatchSize: 10})
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var res ForecastRefreshResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, ForecastRefreshResult{AsOf: time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC), Done: 19, Skipped: 4, Batches: 3, Last: fake.ids[22]}, res)
	require.Len(t, fake.calls, 3)
	require.Equal(t, uuid.Nil, fake.calls[0].After)
	require.Equal(t, fake.ids[9], fake.calls[1].After)
	require.Equal(t, fake.ids[19], fake.calls[2].After)
	for _, c := range fake.calls {
		require.Equal(t, res.AsOf, c.AsOf)
		require.Equal(t, 10, c.Limit)
	}
	require.Equal(t, []int64{8, 16, 19}, seen)
}

func TestForecastRefreshExactPages(t *testing.T) {
	// 20 creators in pages of 10: the third page is empty and ends the run.
	var s testsuite.WorkflowTestSuite
	env := newForecastTestEnv(&s)
	fake := newFakeCreators(20)
	var a *activities.Forecast
	env.RegisterActivity(a)
	env.OnActivity(a.RefreshForecasts, mock.Anything, mock.Anything).Return(fake.refresh)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.ExecuteWorkflow(ForecastRefreshWorkflow, ForecastRefreshInput{BatchSize: 10, AsOf: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)})
	require.NoError(t, env.GetWorkflowError())
	var res ForecastRefreshResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 3, res.Batches)
	require.Equal(t, 20, res.Done+res.Skipped)
}

func TestForecastRefreshContinuesAsNew(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newForecastTestEnv(&s)
	fake := newFakeCreators(50)
	var a *activities.Forecast
	env.RegisterActivity(a)
	env.OnActivity(a.RefreshForecasts, mock.Anything, mock.Anything).Return(fake.refresh)
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	asOf := time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)
	env.ExecuteWorkflow(ForecastRefreshWorkflow, ForecastRefreshInput{BatchSize: 10, BatchesPerRun: 2, AsOf: asOf})
	err := env.GetWorkflowError()
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(err, &can), "%v", err)
	require.Len(t, fake.calls, 2)

	// The next run carries the position and the counts.
	var next ForecastRefreshInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
	require.Equal(t, ForecastRefreshInput{AsOf: asOf, BatchSize: 10, BatchesPerRun: 2, After: fake.ids[19], Done: 16, Skipped: 4, Batches: 2}, next)

	env2 := newForecastTestEnv(&s)
	env2.RegisterActivity(a)
	env2.OnActivity(a.RefreshForecasts, mock.Anything, mock.Anything).Return(fake.refresh)
	env2.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	next.BatchesPerRun = 100
	env2.ExecuteWorkflow(ForecastRefreshWorkflow, next)
	require.NoError(t, env2.GetWorkflowError())
	var res ForecastRefreshResult
	require.NoError(t, env2.GetWorkflowResult(&res))
	require.Equal(t, 50, res.Done+res.Skipped)
	require.Equal(t, 40, res.Done)
	require.Equal(t, 6, res.Batches) // 5 full pages and the empty one
}

func TestForecastRefreshOneCreator(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newForecastTestEnv(&s)
	creator := uuid.New()
	var a *activities.Forecast
	env.RegisterActivity(a)
	env.OnActivity(a.RefreshForecasts, mock.Anything, mock.MatchedBy(func(in activities.ForecastBatchInput) bool {
		return len(in.Creators) == 1 && in.Creators[0] == creator && in.Limit == 0
	})).Return(activities.ForecastBatchResult{Last: creator, Done: 1}, nil).Once()
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.ExecuteWorkflow(ForecastRefreshWorkflow, ForecastRefreshInput{Creators: []uuid.UUID{creator}})
	require.NoError(t, env.GetWorkflowError())
	var res ForecastRefreshResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 1, res.Done)
	env.AssertExpectations(t)
}

func TestForecastRefreshFailsOnBusinessError(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newForecastTestEnv(&s)
	var a *activities.Forecast
	env.RegisterActivity(a)
	calls := 0
	env.OnActivity(a.RefreshForecasts, mock.Anything, mock.Anything).Return(func(context.Context, activities.ForecastBatchInput) (activities.ForecastBatchResult, error) {
		calls++
		return activities.ForecastBatchResult{}, temporal.NewNonRetryableApplicationError("bad", "invalid_input", nil)
	})
	env.ExecuteWorkflow(ForecastRefreshWorkflow, ForecastRefreshInput{})
	require.Error(t, env.GetWorkflowError())
	require.Equal(t, 1, calls, "a business failure is not retried")
}

func TestForecastRefreshRetriesAndReportsProgress(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := newForecastTestEnv(&s)
	fake := newFakeCreators(15)
	var a *activities.Forecast
	env.RegisterActivity(a)
	failed := false
	env.OnActivity(a.RefreshForecasts, mock.Anything, mock.Anything).Return(func(ctx context.Context, in activities.ForecastBatchInput) (activities.ForecastBatchResult, error) {
		if in.After != uuid.Nil && !failed {
			failed = true
			return activities.ForecastBatchResult{}, errors.New("database went away")
		}
		return fake.refresh(ctx, in)
	})
	env.OnUpsertTypedSearchAttributes(mock.Anything).Return(nil)
	env.RegisterDelayedCallback(func() {
		v, err := env.QueryWorkflow(ForecastProgressQuery)
		require.NoError(t, err)
		var p ForecastRefreshResult
		require.NoError(t, v.Get(&p))
		require.Equal(t, 1, p.Batches)
	}, time.Second) // during the retry's backoff
	env.ExecuteWorkflow(ForecastRefreshWorkflow, ForecastRefreshInput{BatchSize: 10})
	require.NoError(t, env.GetWorkflowError())
	require.True(t, failed)
	var res ForecastRefreshResult
	require.NoError(t, env.GetWorkflowResult(&res))
	require.Equal(t, 15, res.Done+res.Skipped)
}

// TestForecastRefreshReplay replays a history recorded from the end-to-end test
// (workers/forecast_test.go, UPDATE_HISTORY=1): today's code must make the same decisions.
func TestForecastRefreshReplay(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflow(ForecastRefreshWorkflow)
	require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/forecast_refresh.json"))
}
