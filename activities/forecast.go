// Package activities holds the Temporal activities: methods on structs that hold their
// dependencies, one file per domain.
package activities

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/forecast"
)

// Forecast holds what the forecast activities need.
type Forecast struct {
	Pool *pgxpool.Pool
	// Paths is the number of Monte Carlo paths per creator (forecast.DefaultPaths when 0).
	Paths int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ForecastBatchInput asks for the forecasts of up to Limit creators with ids after After, in
// id order, as of a day. With Creators set, exactly those creators are refreshed instead.
type ForecastBatchInput struct {
	AsOf     time.Time
	After    uuid.UUID
	Limit    int
	Creators []uuid.UUID
}

// ForecastBatchResult says what a batch did. Last is the last creator handled (After when
// none); More is false when the page was not full, so no creators follow.
type ForecastBatchResult struct {
	Last    uuid.UUID
	Done    int
	Skipped int
	More    bool
}

// forecastProgress is the heartbeat: the last creator whose forecast is stored.
type forecastProgress struct {
	Last    uuid.UUID
	Done    int
	Skipped int
}

// chunk is how many creators are read and stored per query within a batch.
const forecastChunk = 250

// RefreshForecasts forecasts one page of creators and stores the forecasts. It heartbeats
// the last creator stored; a retry resumes after it.
func (a *Forecast) RefreshForecasts(ctx context.Context, in ForecastBatchInput) (ForecastBatchResult, error) {
	if in.AsOf.IsZero() {
		return ForecastBatchResult{}, temporal.NewNonRetryableApplicationError("as-of date is missing", "invalid_input", nil)
	}
	if len(in.Creators) == 0 && in.Limit < 1 {
		return ForecastBatchResult{}, temporal.NewNonRetryableApplicationError("limit must be at least 1", "invalid_input", nil)
	}
	var p forecastProgress
	p.Last = in.After
	if activity.HasHeartbeatDetails(ctx) {
		if err := activity.GetHeartbeatDetails(ctx, &p); err != nil {
			return ForecastBatchResult{}, err
		}
	}
	var ids []uuid.UUID
	if len(in.Creators) > 0 {
		// On demand: the listed creators; resume after the last one done.
		ids = in.Creators
		if p.Last != in.After {
			for i, id := range ids {
				if id == p.Last {
					ids = ids[i+1:]
					break
				}
			}
		}
	} else {
		remaining := in.Limit - p.Done - p.Skipped
		if remaining > 0 {
			var err error
			if ids, err = db.CreatorIDsAfter(ctx, a.Pool, p.Last, remaining); err != nil {
				return ForecastBatchResult{}, err
			}
		}
	}
	fetched := len(ids)
	for start := 0; start < len(ids); start += forecastChunk {
		chunk := ids[start:min(start+forecastChunk, len(ids))]
		done, skipped, err := a.forecastChunk(ctx, chunk, in.AsOf)
		if err != nil {
			return ForecastBatchResult{}, err
		}
		p.Done += done
		p.Skipped += skipped
		p.Last = chunk[len(chunk)-1]
		activity.RecordHeartbeat(ctx, p)
	}
	more := false
	if len(in.Creators) == 0 {
		more = fetched > 0 && p.Done+p.Skipped >= in.Limit
	}
	return ForecastBatchResult{Last: p.Last, Done: p.Done, Skipped: p.Skipped, More: more}, nil
}

// forecastChunk forecasts and stores a few creators; those whose history the engine refuses
// are skipped.
func (a *Forecast) forecastChunk(ctx context.Context, ids []uuid.UUID, asOf time.Time) (done, skipped int, err error) {
	hs, err := db.CreatorHistories(ctx, a.Pool, ids, asOf, forecast.HistoryDays)
	if err != nil {
		return 0, 0, err
	}
	out := make([]*db.Forecast, len(hs))
	errs := make([]error, len(hs))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				f, err := ForecastOne(hs[i], asOf, a.Paths)
				if err == nil {
					out[i] = &f
				}
				errs[i] = err
			}
		})
	}
	for i := range hs {
		next <- i
	}
	close(next)
	wg.Wait()
	var store []db.Forecast
	for i, f := range out {
		switch {
		case f != nil:
			store = append(store, *f)
		case IsForecastRefusal(errs[i]):
			skipped++
		default:
			return 0, 0, errs[i]
		}
	}
	if err := db.UpsertForecasts(ctx, a.Pool, store, a.now()); err != nil {
		return 0, 0, err
	}
	return len(store), skipped, nil
}

func (a *Forecast) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// IsForecastRefusal reports whether err is the engine declining a history (too short, no
// revenue), not a fault.
func IsForecastRefusal(err error) bool {
	return errors.Is(err, forecast.ErrShortHistory) || errors.Is(err, forecast.ErrNoRevenue) || errors.Is(err, forecast.ErrInvalidInput)
}

// ForecastOne runs the engine on one creator's history as of a day (the history must end on
// the day before it) and returns the forecast to store.
func ForecastOne(h db.CreatorHistory, asOf time.Time, paths int) (db.Forecast, error) {
	if paths <= 0 {
		paths = forecast.DefaultPaths
	}
	res, err := forecast.Forecast(EngineHistory(h), forecast.Seed(h.CreatorID, db.Day(asOf)), forecast.Options{Paths: paths})
	if err != nil {
		return db.Forecast{}, err
	}
	f := db.Forecast{
		CreatorID: h.CreatorID, AsOf: db.Day(asOf), ModelVersion: forecast.ModelVersion, Paths: res.Paths,
		HistoryDays: len(h.Revenue), ConfidenceLevel: forecast.ConfidenceLevel, BaseRevenue: stroops(res.Factors.BaseRevenue),
		ChurnRate: res.Factors.ChurnRate, GrowthRate: res.Factors.GrowthRate, Volatility: res.Factors.Volatility,
		StreamCount: res.Factors.StreamCount,
	}
	for _, p := range res.Predictions {
		f.Predictions = append(f.Predictions, db.ForecastPrediction{PeriodDays: p.PeriodDays,
			Predicted: stroops(p.Mean), Lower: stroops(p.Lower), Upper: stroops(p.Upper)})
	}
	return f, nil
}

// EngineHistory is the engine's view of a stored history.
func EngineHistory(h db.CreatorHistory) forecast.History {
	in := forecast.History{Revenue: make([]float64, len(h.Revenue)), Streams: h.Streams,
		Cancellations: h.Cancellations, ActiveStreams: h.Active}
	for i, v := range h.Revenue {
		in.Revenue[i] = float64(v)
	}
	return in
}

// stroops rounds a forecast amount to whole stroops, within int64.
func stroops(v float64) int64 {
	switch {
	case v <= 0 || math.IsNaN(v):
		return 0
	case v >= math.MaxInt64/2:
		return math.MaxInt64 / 2
	}
	return int64(math.Round(v))
}

// ForecastCreator forecasts one creator now and stores it: the on-demand path shared by the
// API and the CLI. A history the engine declines is a *db.Error of kind Invalid.
func ForecastCreator(ctx context.Context, pool *pgxpool.Pool, creatorID uuid.UUID, asOf time.Time, paths int, now time.Time) (db.Forecast, error) {
	if _, err := db.GetCreator(ctx, pool, creatorID); err != nil {
		return db.Forecast{}, err
	}
	hs, err := db.CreatorHistories(ctx, pool, []uuid.UUID{creatorID}, asOf, forecast.HistoryDays)
	if err != nil {
		return db.Forecast{}, err
	}
	f, err := ForecastOne(hs[0], asOf, paths)
	if IsForecastRefusal(err) {
		return db.Forecast{}, &db.Error{Kind: db.KindInvalid, Code: "insufficient_history", Message: fmt.Sprintf("cannot forecast this creator: %v", err)}
	}
	if err != nil {
		return db.Forecast{}, err
	}
	if err := db.UpsertForecasts(ctx, pool, []db.Forecast{f}, now); err != nil {
		return db.Forecast{}, err
	}
	return db.LatestForecast(ctx, pool, creatorID)
}
