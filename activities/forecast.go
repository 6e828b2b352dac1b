// Package activities holds the Temporal activities: methods on structs that hold their
// dependencies, one file per domain.
package activities

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"
	"golang.org/x/sync/errgroup"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/forecast"
)

// Forecast holds what the forecast activities need.
type Forecast struct {
	Pool *pgxpool.Pool
	// Paths is the number of Monte Carlo paths per creator (forecast.DefaultPaths when 0).
	Paths int
	// Chunk is how many creators are read (one query) and stored (one statement) at a time
	// (DefaultForecastChunk when 0).
	Chunk int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Stats, when set, accumulates where the time went (for benchmarks).
	Stats *ForecastStats
}

// DefaultForecastChunk is the default Forecast.Chunk: large enough that a query's round trip
// is small beside its rows, small enough that three chunks in flight (read, computed,
// written) stay a few megabytes and a retry redoes little (measured in
// BenchmarkForecastRefresh: 100–1,000 differ by a few percent; below 100 the round trips
// show).
const DefaultForecastChunk = 250

// ForecastStats is the time each stage of the refresh took, summed over chunks. The stages
// run at the same time (one chunk is read while the one before is computed and the one before
// that stored), so the sum is more than the wall time.
type ForecastStats struct {
	ReadNanos   atomic.Int64
	EngineNanos atomic.Int64
	WriteNanos  atomic.Int64
	// ActivityNanos is the wall time inside RefreshForecasts, summed over batches: what is
	// left of a refresh's wall time is Temporal's (scheduling, history, workflow tasks).
	ActivityNanos atomic.Int64
	Batches       atomic.Int64
	Creators      atomic.Int64
	Forecasts     atomic.Int64
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

// RefreshForecasts forecasts one page of creators and stores the forecasts. It heartbeats
// the last creator stored; a retry resumes after it.
func (a *Forecast) RefreshForecasts(ctx context.Context, in ForecastBatchInput) (ForecastBatchResult, error) {
	began := time.Now()
	defer a.record(func(s *ForecastStats) {
		s.ActivityNanos.Add(int64(time.Since(began)))
		s.Batches.Add(1)
	})
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
	if err := a.refreshChunks(ctx, ids, in.AsOf, &p); err != nil {
		return ForecastBatchResult{}, err
	}
	more := false
	if len(in.Creators) == 0 {
		more = fetched > 0 && p.Done+p.Skipped >= in.Limit
	}
	return ForecastBatchResult{Last: p.Last, Done: p.Done, Skipped: p.Skipped, More: more}, nil
}

// forecastChunkWork is one chunk on its way through the pipeline.
type forecastChunkWork struct {
	ids       []uuid.UUID
	histories []db.CreatorHistory
	forecasts []db.Forecast
	done      int
	skipped   int
}

// refreshChunks forecasts ids in chunks through three stages that overlap: read a chunk (one
// query), run the engine on it on every core, store it (one statement) and heartbeat the last
// creator stored. A creator none of whose assets the engine accepts is skipped.
func (a *Forecast) refreshChunks(ctx context.Context, ids []uuid.UUID, asOf time.Time, p *forecastProgress) error {
	size := a.Chunk
	if size <= 0 {
		size = DefaultForecastChunk
	}
	g, gctx := errgroup.WithContext(ctx)
	read := make(chan *forecastChunkWork, 1)
	computed := make(chan *forecastChunkWork, 1)
	send := func(ch chan<- *forecastChunkWork, w *forecastChunkWork) error {
		select {
		case ch <- w:
			return nil
		case <-gctx.Done():
			return gctx.Err()
		}
	}
	g.Go(func() error {
		defer close(read)
		for start := 0; start < len(ids); start += size {
			w := &forecastChunkWork{ids: ids[start:min(start+size, len(ids))]}
			t := time.Now()
			hs, err := db.CreatorHistories(gctx, a.Pool, w.ids, asOf, forecast.HistoryDays)
			if err != nil {
				return fmt.Errorf("read histories: %w", err)
			}
			a.record(func(s *ForecastStats) { s.ReadNanos.Add(int64(time.Since(t))) })
			w.histories = hs
			if err := send(read, w); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		defer close(computed)
		for w := range read {
			t := time.Now()
			if err := a.compute(w, asOf); err != nil {
				return err
			}
			a.record(func(s *ForecastStats) { s.EngineNanos.Add(int64(time.Since(t))) })
			if err := send(computed, w); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		for w := range computed {
			t := time.Now()
			if err := db.UpsertForecasts(gctx, a.Pool, w.forecasts, a.now()); err != nil {
				return fmt.Errorf("store forecasts: %w", err)
			}
			a.record(func(s *ForecastStats) {
				s.WriteNanos.Add(int64(time.Since(t)))
				s.Creators.Add(int64(len(w.ids)))
				s.Forecasts.Add(int64(len(w.forecasts)))
			})
			p.Done += w.done
			p.Skipped += w.skipped
			p.Last = w.ids[len(w.ids)-1]
			activity.RecordHeartbeat(ctx, *p)
		}
		return nil
	})
	return g.Wait()
}

// compute runs the engine on a chunk's creators on every core.
func (a *Forecast) compute(w *forecastChunkWork, asOf time.Time) error {
	out := make([][]db.Forecast, len(w.histories))
	errs := make([]error, len(w.histories))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(w.histories); i = int(next.Add(1) - 1) {
				out[i], _, errs[i] = db.ForecastHistory(w.histories[i], asOf, a.Paths)
			}
		})
	}
	wg.Wait()
	for i, fs := range out {
		if errs[i] != nil {
			return errs[i]
		}
		if len(fs) == 0 {
			w.skipped++
			continue
		}
		w.done++
		w.forecasts = append(w.forecasts, fs...)
	}
	return nil
}

func (a *Forecast) record(f func(*ForecastStats)) {
	if a.Stats != nil {
		f(a.Stats)
	}
}

func (a *Forecast) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}
