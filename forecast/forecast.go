// Package forecast is the revenue forecast engine: pure Go, no I/O. From a creator's daily
// revenue history and stream counts it estimates churn, growth and volatility, then runs a
// seeded Monte Carlo simulation and reports, for each horizon, the mean of the paths and a 95%
// interval (the 2.5th and 97.5th percentiles). All horizons come from one pass over the same
// paths.
//
// # The quantity forecast
//
// Daily revenue of a subscription business is lumpy: a subscriber pays once per 30 days, so
// most days see nothing from them. The engine therefore models the 30-day revenue run rate:
// on each day, the revenue of the trailing 30 days (the smoothing window). The prediction for
// a horizon of T days is the revenue of the 30 days that end T days after the as-of date; for
// T = 30 that is simply "the revenue of the next 30 days". The base revenue is the run rate on
// the last day of the history (the revenue of the last 30 days).
//
// # Factors
//
//   - churn = cancellations / streams active at any time in the window, scaled to 30 days
//     (cancellations × 30 / (streams × window days)), clamped to [0, 1]; no streams gives 0.
//   - growth: least-squares slope of ln(run rate) against the day index (gonum/stat), over the
//     days whose run rate is positive; growth = e^(30·slope) − 1, per 30 days.
//   - volatility: standard deviation of the daily log returns of the run rate, over pairs of
//     consecutive days that are both positive; capped at MaxVolatility.
//
// # Simulation
//
// Each path starts at the base revenue; each day it is multiplied by 1 + (growth − churn)/30,
// then by 1 + N(0, volatility), floored at zero (revenue is never negative; with the cap on
// volatility the floor is rarely reached). The random stream is a PCG seeded from (creator id,
// as-of date), so the same inputs give the same numbers on any machine.
//
// # Short and odd histories
//
//   - fewer than MinDays days: ErrShortHistory.
//   - no revenue at all: ErrNoRevenue.
//   - fewer than MinPositiveDays days with a positive run rate (gaps): ErrShortHistory.
//   - the smoothing window shrinks on short histories so that at least MinDays smoothed
//     points remain (14 days of history means no smoothing at all).
//   - a base revenue of zero (nothing in the last 30 days) forecasts zero with a zero-width
//     interval.
//   - no result is ever NaN or infinite: inputs that would produce one are rejected with
//     ErrInvalidInput.
package forecast

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"gonum.org/v1/gonum/stat"
)

// ModelVersion names this engine's method; stored beside each forecast.
const ModelVersion = "mc-loggrowth-v1"

// Defaults and limits of the engine.
const (
	// DefaultPaths is the number of Monte Carlo paths.
	DefaultPaths = 1000
	// MinDays is the shortest history the engine accepts.
	MinDays = 14
	// MinPositiveDays is how many days with revenue the regression needs.
	MinPositiveDays = 7
	// SmoothingDays is the trailing window of the run rate.
	SmoothingDays = 30
	// HistoryDays is how much history callers should pass (the smoothing window plus 90
	// points for the regression).
	HistoryDays = 120
	// MaxVolatility caps the daily volatility so that 1 + N(0, σ) is almost never negative.
	MaxVolatility = 0.5
	// ConfidenceLevel is the interval's coverage.
	ConfidenceLevel = 0.95
)

// Horizons are the forecast horizons in days.
var Horizons = []int{30, 60, 90}

// Errors for histories the engine does not forecast.
var (
	ErrShortHistory = errors.New("not enough revenue history to forecast")
	ErrNoRevenue    = errors.New("no revenue in the history")
	ErrInvalidInput = errors.New("invalid forecast input")
)

// History is one creator's input.
type History struct {
	// Revenue is the revenue of each day (any unit, stroops in this system), oldest first,
	// ending on the day before the as-of date. Days without revenue are zeros, not missing.
	Revenue []float64
	// Streams is the number of revenue streams (subscriptions) active at any time in the
	// window Revenue covers; Cancellations is how many of them were cancelled in it.
	Streams       int
	Cancellations int
	// ActiveStreams is the number of streams active at the as-of date (reported only).
	ActiveStreams int
}

// Factors are what the simulation used.
type Factors struct {
	BaseRevenue float64 `json:"base_revenue"`
	ChurnRate   float64 `json:"churn_rate"`
	GrowthRate  float64 `json:"growth_rate"`
	Volatility  float64 `json:"volatility"`
	StreamCount int     `json:"stream_count"`
}

// Prediction is the forecast for one horizon.
type Prediction struct {
	PeriodDays int     `json:"period_days"`
	Mean       float64 `json:"predicted_revenue"`
	Lower      float64 `json:"lower_bound"`
	Upper      float64 `json:"upper_bound"`
}

// Result is a whole forecast.
type Result struct {
	Factors     Factors
	Predictions []Prediction
	Paths       int
}

// Options tune a run; zero values are the defaults.
type Options struct {
	// Paths is the number of Monte Carlo paths (DefaultPaths).
	Paths int
	// Horizons in days, ascending (Horizons).
	Horizons []int
	// Smoothing is the run-rate window in days (SmoothingDays); 1 means none.
	Smoothing int
}

func (o Options) withDefaults() Options {
	if o.Paths <= 0 {
		o.Paths = DefaultPaths
	}
	if len(o.Horizons) == 0 {
		o.Horizons = Horizons
	}
	if o.Smoothing <= 0 {
		o.Smoothing = SmoothingDays
	}
	return o
}

// Seed derives the random stream's seed from the creator and the as-of date (its UTC day).
func Seed(creatorID [16]byte, asOf time.Time) [2]uint64 {
	h := sha256.New()
	h.Write(creatorID[:])
	h.Write([]byte(asOf.UTC().Format(time.DateOnly)))
	sum := h.Sum(nil)
	return [2]uint64{binary.BigEndian.Uint64(sum[:8]), binary.BigEndian.Uint64(sum[8:16])}
}

// Forecast estimates the factors from h and simulates from them.
func Forecast(h History, seed [2]uint64, opts Options) (Result, error) {
	opts = opts.withDefaults()
	f, err := Estimate(h, opts.Smoothing)
	if err != nil {
		return Result{}, err
	}
	preds, err := Simulate(f, seed, opts.Paths, opts.Horizons)
	if err != nil {
		return Result{}, err
	}
	return Result{Factors: f, Predictions: preds, Paths: opts.Paths}, nil
}

// RunRate is the trailing-window revenue per 30 days on each day from the first full window
// on. The window shrinks so that at least MinDays points remain.
func RunRate(revenue []float64, window int) []float64 {
	if window > len(revenue)-MinDays+1 {
		window = len(revenue) - MinDays + 1
	}
	if window < 1 {
		window = 1
	}
	out := make([]float64, 0, len(revenue)-window+1)
	var sum float64
	for i, v := range revenue {
		sum += v
		if i >= window {
			sum -= revenue[i-window]
		}
		if i >= window-1 {
			s := sum
			if s < 0 { // rounding of the running sum
				s = 0
			}
			out = append(out, s*30/float64(window))
		}
	}
	return out
}

// Estimate computes the factors of h with a run-rate window of smoothing days.
func Estimate(h History, smoothing int) (Factors, error) {
	if len(h.Revenue) < MinDays {
		return Factors{}, fmt.Errorf("%w: %d days, need at least %d", ErrShortHistory, len(h.Revenue), MinDays)
	}
	if h.Streams < 0 || h.Cancellations < 0 || h.ActiveStreams < 0 {
		return Factors{}, fmt.Errorf("%w: negative stream counts", ErrInvalidInput)
	}
	hasRevenue := false
	for _, v := range h.Revenue {
		if v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return Factors{}, fmt.Errorf("%w: daily revenue must be finite and not negative", ErrInvalidInput)
		}
		if v > 0 {
			hasRevenue = true
		}
	}
	if !hasRevenue {
		return Factors{}, ErrNoRevenue
	}
	if smoothing <= 0 {
		smoothing = SmoothingDays
	}
	rate := RunRate(h.Revenue, smoothing)

	var xs, ys []float64
	for i, v := range rate {
		if v > 0 {
			xs = append(xs, float64(i))
			ys = append(ys, math.Log(v))
		}
	}
	if len(xs) < MinPositiveDays {
		return Factors{}, fmt.Errorf("%w: %d days with revenue, need at least %d", ErrShortHistory, len(xs), MinPositiveDays)
	}
	slope := Slope(xs, ys)
	growth := math.Expm1(30 * slope)

	var returns []float64
	for i := 1; i < len(rate); i++ {
		if rate[i] > 0 && rate[i-1] > 0 {
			returns = append(returns, math.Log(rate[i]/rate[i-1]))
		}
	}
	vol := 0.0
	if len(returns) >= 2 {
		vol = stat.StdDev(returns, nil)
	}
	vol = min(vol, MaxVolatility)

	f := Factors{
		BaseRevenue: rate[len(rate)-1],
		ChurnRate:   Churn(h.Cancellations, h.Streams, len(h.Revenue)),
		GrowthRate:  growth,
		Volatility:  vol,
		StreamCount: h.ActiveStreams,
	}
	if !finite(f.BaseRevenue, f.ChurnRate, f.GrowthRate, f.Volatility) {
		return Factors{}, fmt.Errorf("%w: factors are not finite", ErrInvalidInput)
	}
	return f, nil
}

// Slope is the least-squares slope of ys against xs.
func Slope(xs, ys []float64) float64 {
	_, beta := stat.LinearRegression(xs, ys, nil, false)
	if math.IsNaN(beta) || math.IsInf(beta, 0) {
		return 0
	}
	return beta
}

// Churn is cancellations over streams in a window of days, per 30 days, in [0, 1].
func Churn(cancellations, streams, days int) float64 {
	if streams <= 0 || days <= 0 {
		return 0
	}
	c := float64(cancellations) * 30 / (float64(streams) * float64(days))
	return math.Min(math.Max(c, 0), 1)
}

// Simulate runs paths Monte Carlo paths of max(horizons) days from f and summarises each
// horizon.
func Simulate(f Factors, seed [2]uint64, paths int, horizons []int) ([]Prediction, error) {
	if paths < 2 {
		return nil, fmt.Errorf("%w: need at least 2 paths", ErrInvalidInput)
	}
	if len(horizons) == 0 || horizons[0] < 1 {
		return nil, fmt.Errorf("%w: horizons must be ascending and positive", ErrInvalidInput)
	}
	for i := 1; i < len(horizons); i++ {
		if horizons[i] <= horizons[i-1] {
			return nil, fmt.Errorf("%w: horizons must be ascending and positive", ErrInvalidInput)
		}
	}
	if !finite(f.BaseRevenue, f.ChurnRate, f.GrowthRate, f.Volatility) || f.BaseRevenue < 0 || f.Volatility < 0 {
		return nil, fmt.Errorf("%w: factors", ErrInvalidInput)
	}
	out := make([]Prediction, len(horizons))
	if f.BaseRevenue == 0 {
		for i, h := range horizons {
			out[i] = Prediction{PeriodDays: h}
		}
		return out, nil
	}
	at := simulatePaths(f, seed, paths, horizons)
	for k, h := range horizons {
		v := at[k]
		mean := stat.Mean(v, nil)
		slices.Sort(v)
		lo := stat.Quantile((1-ConfidenceLevel)/2, stat.LinInterp, v, nil)
		hi := stat.Quantile(1-(1-ConfidenceLevel)/2, stat.LinInterp, v, nil)
		if !finite(mean, lo, hi) {
			return nil, fmt.Errorf("%w: the simulation overflowed", ErrInvalidInput)
		}
		out[k] = Prediction{PeriodDays: h, Mean: mean, Lower: lo, Upper: hi}
	}
	return out, nil
}

// simulatePaths returns, for each horizon, the value of every path on that day.
func simulatePaths(f Factors, seed [2]uint64, paths int, horizons []int) [][]float64 {
	rng := rand.New(rand.NewPCG(seed[0], seed[1]))
	drift := 1 + (f.GrowthRate-f.ChurnRate)/30
	vol := f.Volatility
	last := horizons[len(horizons)-1]
	at := make([][]float64, len(horizons))
	for k := range at {
		at[k] = make([]float64, paths)
	}
	// Day by day across all paths: each day draws one shock per path, then applies them.
	// The paths are independent, so the second loop has no chain from one step to the next.
	r := make([]float64, paths)
	for p := range r {
		r[p] = f.BaseRevenue
	}
	shocks := make([]float64, paths)
	k := 0
	for d := 1; d <= last; d++ {
		for p := range shocks {
			shocks[p] = rng.NormFloat64()
		}
		for p, z := range shocks {
			v := r[p] * drift * (1 + vol*z)
			if v < 0 {
				v = 0
			}
			r[p] = v
		}
		if d == horizons[k] {
			copy(at[k], r)
			k++
		}
	}
	return at
}

// ClosedForm is the expected value at day t: R0·(1 + (g − c)/30)^t (the noise has mean zero).
func ClosedForm(f Factors, t int) float64 {
	return f.BaseRevenue * math.Pow(1+(f.GrowthRate-f.ChurnRate)/30, float64(t))
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
