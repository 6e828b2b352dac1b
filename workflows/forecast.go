package workflows

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
)

// ForecastTaskQueue is the task queue of the forecast refresh.
const ForecastTaskQueue = "forecast"

// ForecastRefreshScheduleID is the daily refresh's Temporal Schedule.
const ForecastRefreshScheduleID = "forecast-refresh-daily"

// ForecastProgressQuery answers the refresh's ForecastRefreshResult so far.
const ForecastProgressQuery = "progress"

// ForecastCreatorsDone counts the creators whose forecast the refresh stored so far.
var ForecastCreatorsDone = temporal.NewSearchAttributeKeyInt64("ForecastCreatorsDone")

// forecastSearchAttributes are the custom search attributes the forecast workflow sets.
var forecastSearchAttributes = map[string]enumspb.IndexedValueType{
	ForecastCreatorsDone.GetName(): enumspb.INDEXED_VALUE_TYPE_INT,
}

// Defaults of the refresh.
const (
	DefaultForecastBatchSize = 500
	// DefaultForecastBatchesPerRun bounds one run's history (about 6 events per batch) before
	// it continues as new.
	DefaultForecastBatchesPerRun = 200
)

// ForecastRefreshInput starts a refresh. The zero value (what the schedule sends, with a
// batch size) refreshes every creator as of the day the run starts.
type ForecastRefreshInput struct {
	// AsOf is the forecasts' as-of day; zero means the day the workflow started (UTC).
	AsOf time.Time
	// Creators, when set, are refreshed instead of every creator (on demand).
	Creators []uuid.UUID
	// BatchSize is how many creators one activity handles.
	BatchSize int
	// BatchesPerRun is how many batches run before continuing as new.
	BatchesPerRun int
	// After, Done, Skipped and Batches carry the progress across continue-as-new.
	After   uuid.UUID
	Done    int
	Skipped int
	Batches int
}

// ForecastRefreshResult says what a refresh did, over all its runs.
type ForecastRefreshResult struct {
	AsOf    time.Time
	Done    int
	Skipped int
	Batches int
	Last    uuid.UUID
}

// ForecastRefreshWorkflowID is the id of an on-demand refresh of one creator on a day.
func ForecastRefreshWorkflowID(creator uuid.UUID, day time.Time) string {
	return fmt.Sprintf("forecast-refresh-%s-%s", creator, day.UTC().Format(time.DateOnly))
}

// ForecastRefreshWorkflow pages through the creators by id, one activity per batch; each
// activity heartbeats the last creator it stored, so a retry resumes there. The run
// continues as new after BatchesPerRun batches (or when Temporal suggests it), carrying the
// position. Progress shows in the ForecastCreatorsDone search attribute and the progress
// query.
func ForecastRefreshWorkflow(ctx workflow.Context, in ForecastRefreshInput) (ForecastRefreshResult, error) {
	if in.AsOf.IsZero() {
		in.AsOf = workflow.Now(ctx).UTC().Truncate(24 * time.Hour)
	}
	if in.BatchSize <= 0 {
		in.BatchSize = DefaultForecastBatchSize
	}
	if in.BatchesPerRun <= 0 {
		in.BatchesPerRun = DefaultForecastBatchesPerRun
	}
	res := ForecastRefreshResult{AsOf: in.AsOf, Done: in.Done, Skipped: in.Skipped, Batches: in.Batches, Last: in.After}
	if err := workflow.SetQueryHandler(ctx, ForecastProgressQuery, func() (ForecastRefreshResult, error) { return res, nil }); err != nil {
		return res, err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 15 * time.Minute,
		HeartbeatTimeout:    2 * time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        2 * time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        10,
			NonRetryableErrorTypes: []string{"invalid_input"},
		},
	})
	var a *activities.Forecast

	if len(in.Creators) > 0 {
		var out activities.ForecastBatchResult
		err := workflow.ExecuteActivity(ctx, a.RefreshForecasts, activities.ForecastBatchInput{AsOf: in.AsOf, Creators: in.Creators}).Get(ctx, &out)
		if err != nil {
			return res, err
		}
		res.Done, res.Skipped, res.Batches, res.Last = out.Done, out.Skipped, 1, out.Last
		return res, workflow.UpsertTypedSearchAttributes(ctx, ForecastCreatorsDone.ValueSet(int64(res.Done)))
	}

	for run := 0; ; run++ {
		if run >= in.BatchesPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested() {
			next := in
			next.After, next.Done, next.Skipped, next.Batches = res.Last, res.Done, res.Skipped, res.Batches
			return res, workflow.NewContinueAsNewError(ctx, ForecastRefreshWorkflow, next)
		}
		var out activities.ForecastBatchResult
		err := workflow.ExecuteActivity(ctx, a.RefreshForecasts, activities.ForecastBatchInput{
			AsOf: in.AsOf, After: res.Last, Limit: in.BatchSize,
		}).Get(ctx, &out)
		if err != nil {
			return res, err
		}
		res.Done += out.Done
		res.Skipped += out.Skipped
		res.Batches++
		res.Last = out.Last
		if err := workflow.UpsertTypedSearchAttributes(ctx, ForecastCreatorsDone.ValueSet(int64(res.Done))); err != nil {
			return res, err
		}
		if !out.More {
			return res, nil
		}
	}
}
