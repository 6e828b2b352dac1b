// Package forecast is the revenue forecast engine: pure Go, no I/O. From one creator's daily
// revenue history in one asset it estimates growth and volatility (and how uncertain both
// estimates are), then runs a seeded Monte Carlo simulation and reports, for each horizon, the
// median of the paths (the point forecast; the mean too, see Prediction) and a 95% interval (the 2.5th and 97.5th percentiles). All horizons come
// from one pass over the same paths. Amounts are in one asset's stroops: the engine never adds
// currencies (see Assets).
//
// # The model (ModelVersion "mc-latentwalk-v2")
//
// Daily revenue follows a latent level L (in logs) that is a random walk with drift:
// L(d) = L(d−1) + μ + σ·ε, ε ~ N(0, 1). Daily revenue is lumpy (a subscriber pays once per 30
// days), so the engine reads the level through the W-day run rate: R(t) = the revenue of the W
// days ending on day t, per 30 days (W = SmoothingDays, 30, shrunk on short histories). The
// quantity forecast for a horizon of T days is the revenue of the 30 days that end T days after
// the as-of date (for T = 30, "the next 30 days").
//
// # Estimation
//
//   - μ (daily log drift): the least-squares slope of ln R against the day, over the trailing
//     run of days whose run rate is positive. Growth per 30 days is e^(30μ) − 1.
//   - σ (daily volatility of the latent level): consecutive run rates share W − 1 days, so the
//     daily log returns of R are a moving average of W latent shocks: Var = σ²/W, and they are
//     correlated with lags up to W − 1. σ² = W · Σ(r − r̄)² / E, where E is the exact expected
//     value of that sum of squares for such correlated returns (not n − 1).
//   - How uncertain both are: the slope's variance q·σ² is computed exactly from the weights
//     the regression puts on each latent shock; the variance estimate is treated as
//     σ²·χ²(ν)/ν, ν from Satterthwaite's two-moment match (about 3.4 for 120 days of history:
//     overlapping windows leave few independent observations).
//   - Churn (cancellations per stream per 30 days) is reported, not simulated: revenue's slope
//     already nets the revenue lost to cancellations (v1 subtracted it a second time).
//
// # Simulation
//
// Each path first draws its own parameters from their estimation error: σp² = σ̂²·ν/χ²(ν) and
// μp = μ̂ + σp·√q·z, clamped to the growth cap (MaxGrowth, MinGrowth per 30 days). It then
// draws the latent level at the as-of date, which the run rate hides: the last day's level
// differs from the W-day average by a known ramp of the last W − 1 shocks, correlated with
// the slope's error (both computed exactly). From there the path walks day by day, the level
// multiplied by e^(μp + σp²/8)·(1 + σp·ε/4)⁴ — e^(μp + σp·ε) to second order in log (the same
// median drift μp and log variance σp², mean e^(μp + σp²/2) to second order) at the cost of
// three multiplications instead of an exponential — and sums each horizon's 30-day window.
// (v2's first draft used e^(μp + σp²/2)·(1 + σp·ε) floored at 0: right in mean, but for a
// drawn σp of 0.3 or more its log drift is far below μp and paths die at the floor; the demo
// backtest's median forecast was 0 at 90 days.) Over
// paths the answer is a Student-t-like predictive distribution: wide when the history is short
// or noisy, calibrated on series drawn from the model (TestIntervalCoverageModelSeries).
//
// The summaries are found without sorting: per horizon a running sum (the mean), two bounded
// heaps that keep the 26 smallest and 26 largest values (with 1,000 paths) for the
// percentiles, and for the median a selection among the values a small sample brackets (see
// quantile). The random stream is a PCG seeded from (creator
// id, asset, as-of date), so the same inputs give the same numbers on any machine.
//
// # Short and odd histories
//
//   - fewer than MinDays days (a single day, say): ErrShortHistory.
//   - no revenue at all (all zero): ErrNoRevenue.
//   - gaps: the estimation uses the trailing run of days with a positive run rate; fewer than
//     MinPositiveDays of them, or too few independent returns (ν < MinDF): ErrShortHistory.
//   - no revenue in the last W days: a forecast of zero with a zero-width interval.
//   - an asset not in Assets: ErrUnsupportedAsset.
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
	"sync"
	"time"

	"gonum.org/v1/gonum/mat"
)

// ModelVersion names this engine's method; stored beside each forecast.
const ModelVersion = "mc-latentwalk-v2"

// Defaults and limits of the engine.
const (
	// DefaultPaths is the number of Monte Carlo paths.
	DefaultPaths = 1000
	// MinDays is the shortest history the engine accepts.
	MinDays = 14
	// MinPositiveDays is how many run-rate points with revenue the regression needs.
	MinPositiveDays = 7
	// MinDF is the fewest effective degrees of freedom of the volatility estimate accepted.
	MinDF = 2
	// SmoothingDays is the trailing window of the run rate.
	SmoothingDays = 30
	// WindowDays is the length of the period a prediction is the revenue of.
	WindowDays = 30
	// HistoryDays is how much history callers should pass (the smoothing window plus 90
	// points for the regression).
	HistoryDays = 120
	// MaxVolatility caps the daily volatility of the level (and of each path's draw).
	MaxVolatility = 0.5
	// MaxGrowth caps growth at +50% per 30 days, for the estimate and for every path's draw:
	// a ramp-up from nothing (a new creator's first months) is not extrapolated for months.
	MaxGrowth = 0.5
	// MinGrowth is the same cap downwards (the same distance in logs: −33.3% per 30 days).
	MinGrowth = 1/(1+MaxGrowth) - 1
	// ConfidenceLevel is the interval's coverage.
	ConfidenceLevel = 0.95
)

// Horizons are the forecast horizons in days.
var Horizons = []int{30, 60, 90}

// Assets are the currencies revenue is forecast in, each in its own stroops. There is no
// conversion between them.
var Assets = []string{"USDC", "XLM"}

// SupportedAsset reports whether the engine forecasts revenue in asset.
func SupportedAsset(asset string) bool { return slices.Contains(Assets, asset) }

// Errors for histories the engine does not forecast.
var (
	ErrShortHistory     = errors.New("not enough revenue history to forecast")
	ErrNoRevenue        = errors.New("no revenue in the history")
	ErrInvalidInput     = errors.New("invalid forecast input")
	ErrUnsupportedAsset = errors.New("revenue in an asset the forecasts do not support")
)

// IsRefusal reports whether err is the engine declining a history (too short, gaps, no
// revenue, an unsupported asset, values it cannot use), not a fault.
func IsRefusal(err error) bool {
	return errors.Is(err, ErrShortHistory) || errors.Is(err, ErrNoRevenue) ||
		errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrUnsupportedAsset)
}

// History is one creator's input in one asset.
type History struct {
	// Revenue is the revenue of each day in one asset's stroops, oldest first, ending on the
	// day before the as-of date. Days without revenue are zeros, not missing.
	Revenue []float64
	// Streams is the number of revenue streams (subscriptions) in this asset active at any time
	// in the window Revenue covers; Cancellations is how many of them were cancelled in it.
	Streams       int
	Cancellations int
	// ActiveStreams is the number of streams active at the as-of date (reported only).
	ActiveStreams int
}

// Factors are what the simulation used.
type Factors struct {
	// BaseRevenue is the run rate on the last day: the revenue of the last 30 days.
	BaseRevenue float64 `json:"base_revenue"`
	ChurnRate   float64 `json:"churn_rate"`
	// GrowthRate is e^(30μ̂) − 1 per 30 days, within [MinGrowth, MaxGrowth].
	GrowthRate float64 `json:"growth_rate"`
	// GrowthStdError is the standard error of 30μ̂ (log growth per 30 days).
	GrowthStdError float64 `json:"growth_std_error"`
	// Volatility is σ̂, the daily volatility of the latent level.
	Volatility float64 `json:"volatility"`
	// VolatilityDF is ν, the effective degrees of freedom of σ̂².
	VolatilityDF float64 `json:"volatility_df"`
	StreamCount  int     `json:"stream_count"`
	// Smoothing is the run-rate window W used; Points the run-rate points regressed.
	Smoothing int `json:"smoothing_days"`
	Points    int `json:"points"`
}

// Prediction is the forecast for one horizon.
type Prediction struct {
	PeriodDays int `json:"period_days"`
	// Median of the paths: the point forecast (what is stored and served as predicted).
	Median float64 `json:"predicted_revenue"`
	// Mean of the paths: reported for completeness, not a usable point forecast. With the
	// volatility drawn from its estimation error (few effective degrees of freedom), the
	// predictive mean of a log random walk is infinite in theory and set by the caps in
	// practice: a handful of paths with a large drawn volatility dominate it (on the demo
	// backtest the mean was off by 10³–10⁴ times where the median was not).
	Mean  float64 `json:"mean_revenue"`
	Lower float64 `json:"lower_bound"`
	Upper float64 `json:"upper_bound"`
}

// Result is a whole forecast.
type Result struct {
	Factors     Factors
	Predictions []Prediction
	Paths       int
	// PathValues holds, per horizon, every path's value (only with Options.PathValues).
	PathValues [][]float64
}

// Options tune a run; zero values are the defaults.
type Options struct {
	// Paths is the number of Monte Carlo paths (DefaultPaths).
	Paths int
	// Horizons in days, ascending, each at least WindowDays (Horizons).
	Horizons []int
	// Smoothing is the run-rate window in days (SmoothingDays); 1 means none.
	Smoothing int
	// PathValues keeps every path's value in the result (for backtests).
	PathValues bool
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

// Seed derives the random stream's seed from the creator, the asset and the as-of date (its
// UTC day).
func Seed(creatorID [16]byte, asset string, asOf time.Time) [2]uint64 {
	h := sha256.New()
	h.Write(creatorID[:])
	h.Write([]byte(asset))
	h.Write([]byte{0})
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
	preds, values, err := simulate(f, seed, opts.Paths, opts.Horizons, opts.PathValues)
	if err != nil {
		return Result{}, err
	}
	return Result{Factors: f, Predictions: preds, Paths: opts.Paths, PathValues: values}, nil
}

// ForecastAsset is Forecast for revenue in asset: an asset not in Assets is refused.
func ForecastAsset(asset string, h History, seed [2]uint64, opts Options) (Result, error) {
	if !SupportedAsset(asset) {
		return Result{}, fmt.Errorf("%w: %q (supported: %v)", ErrUnsupportedAsset, asset, Assets)
	}
	return Forecast(h, seed, opts)
}

// Window is the run-rate window used for a history of n days with a requested smoothing: at
// most a quarter of the history, so that enough nearly independent returns remain.
func Window(n, smoothing int) int {
	if smoothing <= 0 {
		smoothing = SmoothingDays
	}
	return max(1, min(smoothing, n/4))
}

// RunRate is the trailing-window revenue per 30 days on each day from the first full window
// on.
func RunRate(revenue []float64, window int) []float64 {
	window = max(1, min(window, len(revenue)))
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

// Estimate computes the factors of h with a run-rate window of (at most) smoothing days.
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
	w := Window(len(h.Revenue), smoothing)
	rate := RunRate(h.Revenue, w)
	f := Factors{
		BaseRevenue: rate[len(rate)-1],
		ChurnRate:   Churn(h.Cancellations, h.Streams, len(h.Revenue)),
		StreamCount: h.ActiveStreams,
		Smoothing:   w,
	}
	if f.BaseRevenue == 0 {
		return f, nil // nothing in the last W days: a zero forecast
	}
	start := len(rate) - 1
	for start > 0 && rate[start-1] > 0 {
		start--
	}
	ys := make([]float64, len(rate)-start)
	for i, v := range rate[start:] {
		ys[i] = math.Log(v)
	}
	m := len(ys)
	if m < MinPositiveDays {
		return Factors{}, fmt.Errorf("%w: the last %d days with revenue follow a gap of %d days or more, need at least %d",
			ErrShortHistory, m+w-1, w, MinPositiveDays+w-1)
	}
	g := geometryOf(m, w)
	if g.df < MinDF {
		return Factors{}, fmt.Errorf("%w: %d days since the last gap leave too few independent observations", ErrShortHistory, m+w-1)
	}
	slope := Slope(ys)
	var mean float64
	for i := 1; i < m; i++ {
		mean += ys[i] - ys[i-1]
	}
	mean /= float64(m - 1)
	var ss float64
	for i := 1; i < m; i++ {
		d := ys[i] - ys[i-1] - mean
		ss += d * d
	}
	vol := math.Min(math.Sqrt(float64(w)*ss/g.eq), MaxVolatility)
	f.GrowthRate = math.Min(math.Max(math.Expm1(30*slope), MinGrowth), MaxGrowth)
	f.GrowthStdError = 30 * vol * math.Sqrt(g.q)
	f.Volatility = vol
	f.VolatilityDF = g.df
	f.Points = m
	if !finite(f.BaseRevenue, f.ChurnRate, f.GrowthRate, f.GrowthStdError, f.Volatility, f.VolatilityDF) {
		return Factors{}, fmt.Errorf("%w: factors are not finite", ErrInvalidInput)
	}
	return f, nil
}

// Slope is the least-squares slope of ys against 0, 1, 2, ...
func Slope(ys []float64) float64 {
	n := float64(len(ys))
	if len(ys) < 2 {
		return 0
	}
	xbar := (n - 1) / 2
	var ybar float64
	for _, y := range ys {
		ybar += y
	}
	ybar /= n
	var sxy, sxx float64
	for i, y := range ys {
		dx := float64(i) - xbar
		sxy += dx * (y - ybar)
		sxx += dx * dx
	}
	b := sxy / sxx
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return 0
	}
	return b
}

// Churn is cancellations over streams in a window of days, per 30 days, in [0, 1].
func Churn(cancellations, streams, days int) float64 {
	if streams <= 0 || days <= 0 {
		return 0
	}
	c := float64(cancellations) * 30 / (float64(streams) * float64(days))
	return math.Min(math.Max(c, 0), 1)
}

// geometry is what the estimators' errors are, in units of σ², for m run-rate points with a
// window of w days. The latent shocks e(1..D−1) move the level L(0..D−1), D = m + w − 1; the
// point t is the mean of L over days t..t+w−1; each estimator is linear in the shocks.
type geometry struct {
	q     float64 // Var(μ̂)/σ²
	c     float64 // Cov(μ̂, O)/σ², O = L(D−1) − (the last point)
	o2    float64 // Var(O)/σ²
	oMean float64 // E[O]/μ
	eq    float64 // E[Σ(r − r̄)²]/(σ²/w), r the m − 1 log returns of the points
	df    float64 // Satterthwaite degrees of freedom of Σ(r − r̄)²
}

// memo caches what depends only on a history's shape, (points or returns, window), for all
// goroutines: a refresh meets few distinct shapes.
type memo[V any] struct {
	sync.RWMutex
	m map[[2]int]V
}

func (c *memo[V]) get(a, b int, build func(a, b int) V) V {
	key := [2]int{a, b}
	c.RLock()
	v, ok := c.m[key]
	c.RUnlock()
	if ok {
		return v
	}
	v = build(a, b)
	c.Lock()
	if c.m == nil {
		c.m = make(map[[2]int]V)
	}
	c.m[key] = v
	c.Unlock()
	return v
}

var (
	geometries  memo[geometry]
	squaresLaws memo[squaresLaw]
)

func geometryOf(m, w int) geometry { return geometries.get(m, w, newGeometry) }

func newGeometry(m, w int) geometry {
	d := m + w - 1
	// Weight of the regression on each level: u(day) = Σ over points t covering it of
	// (t − t̄)/Sxx / w. Weight of O on each level: 1 on the last day, −1/w on each of the last w.
	tbar := float64(m-1) / 2
	var sxx float64
	for t := range m {
		sxx += (float64(t) - tbar) * (float64(t) - tbar)
	}
	u := make([]float64, d)
	v := make([]float64, d)
	for t := range m {
		wt := (float64(t) - tbar) / sxx / float64(w)
		for day := t; day < t+w; day++ {
			u[day] += wt
		}
	}
	v[d-1] = 1
	for day := d - w; day < d; day++ {
		v[day] -= 1 / float64(w)
	}
	// A shock at day j moves every level from j on: its coefficient is the suffix sum.
	var g geometry
	var a, o float64
	for j := d - 1; j >= 1; j-- {
		a += u[j]
		o += v[j]
		g.q += a * a
		g.c += a * o
		g.o2 += o * o
		g.oMean += o
	}
	// The returns r(t) = y(t+1) − y(t), t < n = m − 1, have correlation max(0, 1 − |k|/w).
	n := m - 1
	rho := func(k int) float64 { return math.Max(0, 1-math.Abs(float64(k))/float64(w)) }
	var s1, s2, r2 float64
	for s := range n {
		var row float64
		for t := max(0, s-w+1); t < min(n, s+w); t++ {
			p := rho(s - t)
			row += p
			s2 += p * p
		}
		s1 += row
		r2 += row * row
	}
	fn := float64(n)
	g.eq = fn - s1/fn
	if den := s2 - 2*r2/fn + s1*s1/(fn*fn); den > 0 && g.eq > 0 {
		g.df = g.eq * g.eq / den
	}
	return g
}

// Simulate runs paths Monte Carlo paths of max(horizons) days from f and summarises each
// horizon.
func Simulate(f Factors, seed [2]uint64, paths int, horizons []int) ([]Prediction, error) {
	preds, _, err := simulate(f, seed, paths, horizons, false)
	return preds, err
}

func simulate(f Factors, seed [2]uint64, paths int, horizons []int, keep bool) ([]Prediction, [][]float64, error) {
	if paths < 2 {
		return nil, nil, fmt.Errorf("%w: need at least 2 paths", ErrInvalidInput)
	}
	if len(horizons) == 0 || horizons[0] < WindowDays {
		return nil, nil, fmt.Errorf("%w: horizons must be ascending and at least %d days", ErrInvalidInput, WindowDays)
	}
	for i := 1; i < len(horizons); i++ {
		if horizons[i] <= horizons[i-1] {
			return nil, nil, fmt.Errorf("%w: horizons must be ascending and at least %d days", ErrInvalidInput, WindowDays)
		}
	}
	if !finite(f.BaseRevenue, f.ChurnRate, f.GrowthRate, f.Volatility, f.VolatilityDF) || f.BaseRevenue < 0 ||
		f.Volatility < 0 || f.GrowthRate <= -1 {
		return nil, nil, fmt.Errorf("%w: factors", ErrInvalidInput)
	}
	out := make([]Prediction, len(horizons))
	for i, h := range horizons {
		out[i] = Prediction{PeriodDays: h}
	}
	if f.BaseRevenue == 0 {
		var values [][]float64
		if keep {
			values = make([][]float64, len(horizons))
			for k := range values {
				values[k] = make([]float64, paths)
			}
		}
		return out, values, nil
	}
	if f.Points < 2 || f.Smoothing < 1 || (f.Volatility > 0 && f.VolatilityDF < 1) {
		return nil, nil, fmt.Errorf("%w: factors lack the estimation's geometry", ErrInvalidInput)
	}
	s := newSimulation(f, horizons, paths, keep)
	s.run(&pcg{hi: seed[0], lo: seed[1]})
	for k := range horizons {
		lo, hi := s.interval(k)
		mean := s.sums[k] / float64(paths)
		if !finite(mean, lo, hi, s.medians[k]) {
			return nil, nil, fmt.Errorf("%w: the simulation overflowed", ErrInvalidInput)
		}
		out[k].Median, out[k].Mean, out[k].Lower, out[k].Upper = s.medians[k], mean, lo, hi
	}
	return out, s.values, nil
}

// simulation is one creator's Monte Carlo run.
type simulation struct {
	f        Factors
	g        geometry
	paths    int
	marks    []int    // days at which the running sum is recorded: h − 30 and h for each horizon
	window   [][2]int // per horizon, the indices in marks of its window's start and end
	horizons []int
	sums     []float64 // per horizon, the sum over paths (for the mean)
	medians  []float64 // per horizon, the median of the paths
	low      []boundedHeap
	high     []boundedHeap
	values   [][]float64
	pLo, pHi float64 // positions of the percentiles among the sorted paths
}

func newSimulation(f Factors, horizons []int, paths int, keep bool) *simulation {
	s := &simulation{f: f, g: geometryOf(f.Points, f.Smoothing), paths: paths, horizons: horizons,
		sums: make([]float64, len(horizons)), medians: make([]float64, len(horizons))}
	for _, h := range horizons {
		s.marks = append(s.marks, h-WindowDays, h)
	}
	slices.Sort(s.marks)
	s.marks = slices.Compact(s.marks)
	for _, h := range horizons {
		from, _ := slices.BinarySearch(s.marks, h-WindowDays)
		to, _ := slices.BinarySearch(s.marks, h)
		s.window = append(s.window, [2]int{from, to})
	}
	tail := (1 - ConfidenceLevel) / 2
	s.pLo, s.pHi = tail*float64(paths-1), (1-tail)*float64(paths-1)
	kLo := min(paths, int(s.pLo)+2)
	kHi := min(paths, paths-int(s.pHi))
	for range horizons {
		s.low = append(s.low, newBoundedHeap(kLo, true))
		s.high = append(s.high, newBoundedHeap(kHi, false))
	}
	if keep {
		s.values = make([][]float64, len(horizons))
		for k := range s.values {
			s.values[k] = make([]float64, 0, paths)
		}
	}
	return s
}

// run simulates every path, one after another, and folds each into the summaries.
func (s *simulation) run(src *pcg) {
	f, g := s.f, s.g
	mu := math.Log1p(f.GrowthRate) / 30
	muLo, muHi := math.Log1p(MinGrowth)/30, math.Log1p(MaxGrowth)/30
	sq := math.Sqrt(g.q)
	so := math.Sqrt(g.o2)
	rho := 0.0
	if g.q > 0 && g.o2 > 0 {
		// O and the slope's error μ̂ − μ have covariance c·σ²; a path's μp − μ̂ stands for
		// μ − μ̂, so O is drawn with the opposite sign of correlation.
		rho = math.Max(-1, math.Min(1, -g.c/(sq*so)))
	}
	rho2 := math.Sqrt(1 - rho*rho)
	daily := f.BaseRevenue / 30
	var law squaresLaw
	if f.Volatility > 0 {
		law = sumOfSquaresLaw(f.Points-1, f.Smoothing)
	}
	// Each path's parameters and starting level.
	n := s.paths
	work := getWork(n, (1+len(s.marks))*n)
	defer works.Put(work)
	ps, buf := work.paths, work.values
	// First every path's draws, in the stream's order, held in its record (then the
	// arithmetic, which waits on no draw, overlaps from one path to the next).
	// The volatility first, in a loop of its own: its divisions and square root are long
	// chains, which overlap better across paths without the rest in between.
	drawParameters(src, ps, f.Volatility > 0)
	if f.Volatility > 0 {
		for p := range ps {
			// Stratified: path p draws from the p-th of n equal slices of the law.
			u := (float64(p) + ps[p].level) / float64(n)
			// (the built-in min and max: math.Min and math.Max, same results, are not inlined)
			ps[p].level = min(f.Volatility*math.Sqrt(law.mean/law.at(u)), MaxVolatility)
		}
	} else {
		for p := range ps {
			ps[p].level = f.Volatility
		}
	}
	for p := range ps {
		d := &ps[p]
		sigma, z1, z2 := d.level, d.add, d.mul
		mup := min(max(mu+sigma*sq*z1, muLo), muHi)
		o := sigma * so * (rho*z1 + rho2*z2)
		start := mup*g.oMean + o
		var level float64
		if math.Abs(start) <= 0.14 {
			level = daily * expSmall(start)
		} else {
			level = daily * math.Exp(start)
		}
		// The fourth root of the day's factor: e^((μp + σp²/8)/4)·(1 + σp·ε/4).
		add := expSmall(mup/4 + sigma*sigma/32)
		// (every field written: a pooled buffer holds an earlier run's numbers)
		ps[p] = pathState{level: level, add: add, mul: add * sigma / 4}
	}
	// Day by day across the paths: no step depends on the one before in the same loop, so
	// the arithmetic overlaps the next draw (path by path, with the level and running sum in
	// registers, measured slower). The running sums are kept at each mark.
	snaps := make([][]float64, len(s.marks))
	for i := range snaps {
		snaps[i] = buf[i*n : (i+1)*n]
	}
	day := 0
	for i, mark := range s.marks {
		for ; day < mark; day++ {
			walkDay(src, ps)
		}
		for p := range ps {
			snaps[i][p] = ps[p].cum
		}
	}
	// Each horizon's summaries in one pass over its paths: the sum, the percentiles' heaps, and
	// the values inside the median's bracket (see quantile).
	scratch := buf[len(s.marks)*n : (len(s.marks)+1)*n]
	mi, mNext, mFrac := ranks(n, 0.5)
	for k, w := range s.window {
		from, to := snaps[w[0]], snaps[w[1]]
		to = to[:len(from)]
		low, high := &s.low[k], &s.high[k]
		var sample [quantileSample]float64
		for j := range sample {
			q := sampleIndex(j, n)
			sample[j] = to[q] - from[q]
		}
		lo, hi := bracket(&sample, mi, n)
		var sum float64
		below, m := 0, 0
		for p, start := range from {
			v := to[p] - start
			sum += v
			if len(low.v) < low.k || v < low.v[0] {
				low.offer(v)
			}
			if len(high.v) < high.k || v > high.v[0] {
				high.offer(v)
			}
			b, in := inBracket(v, lo, hi)
			scratch[m] = v
			below += b
			m += in
		}
		s.sums[k] = sum
		if bracketHolds(mi, mNext, below, m) {
			s.medians[k] = orderStats(scratch[:m], mi-below, mFrac, mNext)
		} else {
			for p, start := range from {
				scratch[p] = to[p] - start
			}
			s.medians[k] = orderStats(scratch, mi, mFrac, mNext)
		}
		if s.values != nil {
			s.values[k] = append(s.values[k], to...)
			for p := range s.values[k] {
				s.values[k][p] -= from[p]
			}
		}
	}
}

// drawParameters draws each path's random numbers for its parameters and starting level, in
// this order: a uniform (when withUniform; into level), two normals (into add and mul).
func drawParameters(src *pcg, ps []pathState, withUniform bool) {
	for p := range ps {
		var u float64
		if withUniform {
			u = src.uniform()
		}
		z1 := src.normal()
		z2 := src.normal()
		ps[p] = pathState{level: u, add: z1, mul: z2}
	}
}

// pathState is one path's walk: its level, the running sum of its levels, and the two parts of
// its day factor's fourth root (see dayFactor). Kept together, so that the day loop holds one
// base address, not four (with four the compiler ran out of registers and kept the
// generator's state on the stack).
type pathState struct{ level, cum, add, mul float64 }

// work is a simulation's buffers, reused across runs and goroutines through works (a run's
// work is its own from getWork to works.Put; nothing returned points into it).
type work struct {
	paths  []pathState
	values []float64
}

var works sync.Pool

// getWork is a work with n paths and m values from the pool. Its contents are not zeroed.
func getWork(n, m int) *work {
	w, _ := works.Get().(*work)
	if w == nil {
		w = &work{}
	}
	if cap(w.paths) < n {
		w.paths = make([]pathState, n)
	}
	if cap(w.values) < m {
		w.values = make([]float64, m)
	}
	w.paths, w.values = w.paths[:n], w.values[:m]
	return w
}

// walkDay moves every path one day: level ← level·dayFactor(add, mul, ε), cum += level, with
// ε the next standard normal of src. walkFast moves the paths whose draw is the ziggurat's
// common case, with no call in its loop; a draw that is not is finished here by normalSlow,
// and walkFast goes on from the next path. (With the slow path called from inside the loop,
// the compiler kept the generator's state on the stack, and the loop ran about a fifth slower
// than the bare draws.)
func walkDay(src *pcg, ps []pathState) {
	for p := 0; p < len(ps); p++ {
		k, u := walkFast(src, ps[p:])
		p += k
		if p == len(ps) {
			break
		}
		s := &ps[p]
		v := s.level * dayFactor(s.add, s.mul, normalSlow(src, u))
		s.level = v
		s.cum += v
	}
}

// walkFast moves paths from the first on, the generator's state in locals, until a draw (the
// word u) falls outside its strip's rectangle: it returns how many paths it moved and u, src
// left just after u.
func walkFast(src *pcg, ps []pathState) (int, uint64) {
	hi, lo := src.hi, src.lo
	for p := range ps {
		var u uint64
		hi, lo, u = pcgStep(hi, lo)
		eps, ok := zigFast(u)
		if !ok {
			src.hi, src.lo = hi, lo
			return p, u
		}
		// dayFactor without its floor at 0: a draw in a rectangle has |ε| < zigR, and a path's
		// σ ≤ MaxVolatility, so add + mul·ε = add·(1 + σε/4) > add·(1 − 0.125·3.45) > 0.
		s := &ps[p]
		m := s.add + s.mul*eps
		m *= m
		v := s.level * (m * m)
		s.level = v
		s.cum += v
	}
	src.hi, src.lo = hi, lo
	return len(ps), 0
}

// dayFactor is a day's growth factor of a path from its fourth root's parts (add + mul·ε)⁴:
// e^(μ + σ²/8)·(1 + σε/4)⁴ with add = e^((μ + σ²/8)/4) and mul = add·σ/4.
func dayFactor(add, mul, eps float64) float64 {
	m := add + mul*eps
	if m < 0 {
		return 0 // a shock below −4/σ (never, for σ ≤ 0.5): revenue stops at zero
	}
	m *= m
	return m * m
}

// expSmall is e^x for |x| ≤ 0.14 (the as-of level's offset; a day's factor's fourth root is
// below 0.012), by its Taylor series to x⁵: relative error below 5·10⁻⁷ there, 10⁻¹⁵ for a
// typical |x| < 0.01; math.Exp would be a second exponential per path.
func expSmall(x float64) float64 {
	return 1 + x*(1+x/2*(1+x/3*(1+x/4*(1+x/5))))
}

// interval is the horizon's percentiles, linearly interpolated between order statistics
// (the definition of numpy's default and gonum's LinInterp on the sorted values).
func (s *simulation) interval(k int) (float64, float64) {
	lo1, lo2 := s.low[k].topTwo()         // order statistics kLo−1 and kLo−2 from the bottom
	hi1, hi2 := s.high[k].topTwo()        // order statistics kHi−1 and kHi−2 from the top
	iLo := float64(s.low[k].k - 2)        // index of lo2
	iHi := float64(s.paths - s.high[k].k) // index of hi1
	lo := interpolate(lo2, lo1, s.pLo-iLo)
	hi := interpolate(hi1, hi2, s.pHi-iHi)
	return lo, hi
}

// Quantile is the prob-quantile of vs, linearly interpolated between order statistics as in
// interval, found by selection, never by sorting (see quantile). It may reorder vs.
func Quantile(vs []float64, prob float64) float64 {
	return quantile(vs, prob, make([]float64, len(vs)))
}

// Sizes of quantile's bracketing: a sample of quantileSample values (evenly spaced in vs; the
// engine's paths are in the order of their volatility strata, so this is a stratified sample)
// and a bracket of quantileReach sample ranks either side of the wanted one.
const (
	quantileSample = 64
	quantileReach  = 8
	quantileMinLen = 256 // below this a plain quickselect is as fast
)

// quantile is Quantile with a scratch buffer at least as long as vs. For long inputs it
// brackets the wanted order statistics between two values of a small sorted sample (bracket),
// then in one pass over vs counts the values below the bracket and copies those inside it into
// scratch (inBracket), and selects in scratch (about a quarter of vs with the engine's 1,000
// paths). When the bracket misses (the sample was unlucky, a few percent of the time), it
// selects in vs itself (Hoare's quickselect, median-of-three pivots), as it does for short
// inputs: the answer is the same exact order statistics either way.
func quantile(vs []float64, prob float64, scratch []float64) float64 {
	n := len(vs)
	if n == 0 {
		return 0
	}
	i, next, frac := ranks(n, prob)
	if n >= quantileMinLen && len(scratch) >= n {
		var sample [quantileSample]float64
		for j := range sample {
			sample[j] = vs[sampleIndex(j, n)]
		}
		lo, hi := bracket(&sample, i, n)
		scratch = scratch[:n]
		below, m := 0, 0
		for _, v := range vs {
			b, in := inBracket(v, lo, hi)
			scratch[m] = v
			below += b
			m += in
		}
		if bracketHolds(i, next, below, m) {
			return orderStats(scratch[:m], i-below, frac, next)
		}
	}
	return orderStats(vs, i, frac, next)
}

// ranks are the order statistics the prob-quantile of n values needs: the i-th (0-based),
// and the next one when next, interpolated by frac.
func ranks(n int, prob float64) (i int, next bool, frac float64) {
	pos := math.Min(math.Max(prob, 0), 1) * float64(n-1)
	i = int(pos)
	return i, i+1 < n && pos != float64(i), pos - float64(i)
}

// sampleIndex is the index of the j-th of quantileSample values sampled evenly from n.
func sampleIndex(j, n int) int { return j * (n - 1) / (quantileSample - 1) }

// bracket sorts the sample and returns the values quantileReach sample ranks either side of
// where rank i of n falls.
func bracket(sample *[quantileSample]float64, i, n int) (lo, hi float64) {
	insertionSort(sample[:])
	r := i * (quantileSample - 1) / (n - 1)
	return sample[max(r-quantileReach, 0)], sample[min(r+quantileReach, quantileSample-1)]
}

// inBracket is, without branches (where a value falls is random, so a branch would often be
// mispredicted), whether v is below the bracket [lo, hi] and whether it is inside it. The
// caller writes every value at scratch[m] and moves m on by in.
func inBracket(v, lo, hi float64) (below, in int) {
	in = 1
	if v < lo {
		below = 1
	}
	if v < lo || v > hi {
		in = 0
	}
	return below, in
}

// bracketHolds reports whether the values inside the bracket, below of them under it and m
// inside, hold the order statistics ranks named.
func bracketHolds(i int, next bool, below, m int) bool {
	need := i
	if next {
		need++
	}
	return below <= i && need < below+m
}

// orderStats is the i-th smallest value of vs (0-based), interpolated by frac towards the next
// one when next. It reorders vs.
func orderStats(vs []float64, i int, frac float64, next bool) float64 {
	a := selectKth(vs, i)
	if !next {
		return a
	}
	// After the selection everything right of i is ≥ vs[i]: the next order statistic is
	// their minimum.
	b := vs[i+1]
	for _, v := range vs[i+2:] {
		b = math.Min(b, v)
	}
	return interpolate(a, b, frac)
}

// insertionSort sorts a short slice in place.
func insertionSort(vs []float64) {
	for i := 1; i < len(vs); i++ {
		v := vs[i]
		j := i
		for ; j > 0 && vs[j-1] > v; j-- {
			vs[j] = vs[j-1]
		}
		vs[j] = v
	}
}

// selectKth reorders vs so that vs[k] is its k-th smallest value (0-based), no value left of
// it larger and none right of it smaller, and returns it.
func selectKth(vs []float64, k int) float64 {
	lo, hi := 0, len(vs)-1
	for hi > lo {
		mid := lo + (hi-lo)/2
		// Median of three as the pivot, moved to vs[mid].
		if vs[mid] < vs[lo] {
			vs[mid], vs[lo] = vs[lo], vs[mid]
		}
		if vs[hi] < vs[lo] {
			vs[hi], vs[lo] = vs[lo], vs[hi]
		}
		if vs[hi] < vs[mid] {
			vs[hi], vs[mid] = vs[mid], vs[hi]
		}
		pivot := vs[mid]
		i, j := lo, hi
		for i <= j {
			for vs[i] < pivot {
				i++
			}
			for vs[j] > pivot {
				j--
			}
			if i <= j {
				vs[i], vs[j] = vs[j], vs[i]
				i++
				j--
			}
		}
		// Now vs[lo..j] ≤ pivot ≤ vs[i..hi], and any values between j and i equal the pivot.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return vs[k]
		}
	}
	return vs[k]
}

func interpolate(a, b, frac float64) float64 {
	if frac <= 0 {
		return a
	}
	return a + (b-a)*math.Min(frac, 1)
}

// boundedHeap keeps the k smallest (max-heap, keepSmall) or the k largest (min-heap) of the
// values offered.
type boundedHeap struct {
	k         int
	keepSmall bool
	v         []float64
}

func newBoundedHeap(k int, keepSmall bool) boundedHeap {
	return boundedHeap{k: max(k, 1), keepSmall: keepSmall, v: make([]float64, 0, max(k, 1))}
}

// above reports whether a belongs nearer the root than b.
func (h *boundedHeap) above(a, b float64) bool {
	if h.keepSmall {
		return a > b
	}
	return a < b
}

func (h *boundedHeap) offer(x float64) {
	if len(h.v) < h.k {
		h.v = append(h.v, x)
		for i := len(h.v) - 1; i > 0; {
			p := (i - 1) / 2
			if !h.above(h.v[i], h.v[p]) {
				break
			}
			h.v[i], h.v[p] = h.v[p], h.v[i]
			i = p
		}
		return
	}
	if !h.above(h.v[0], x) {
		return // not among the k kept
	}
	h.v[0] = x
	n := len(h.v)
	for i := 0; ; {
		c := 2*i + 1
		if c >= n {
			break
		}
		if c+1 < n && h.above(h.v[c+1], h.v[c]) {
			c++
		}
		if !h.above(h.v[c], h.v[i]) {
			break
		}
		h.v[i], h.v[c] = h.v[c], h.v[i]
		i = c
	}
}

// topTwo is the root (the k-th kept value) and the one after it towards the extreme.
func (h *boundedHeap) topTwo() (root, next float64) {
	switch len(h.v) {
	case 0:
		return 0, 0
	case 1:
		return h.v[0], h.v[0]
	case 2:
		return h.v[0], h.v[1]
	}
	next = h.v[1]
	if h.above(h.v[2], next) {
		next = h.v[2]
	}
	return h.v[0], next
}

// squaresLaw is the distribution of Σ(r − r̄)² / Var(r) for n returns whose correlation
// is max(0, 1 − |k|/w): a weighted sum Σ λi·χ²(1) over the eigenvalues λ of M·C·M (C the
// correlation matrix, M the centring). The largest few are drawn exactly; the rest, small
// and many, as one scaled χ² with the same mean and variance (Satterthwaite). With 90 returns
// of a 30-day window about 84% of the sum is in the 4 largest; a two-moment χ² of the whole
// sum instead has a heavier left tail, and the 95% interval covered 97% (measured).
//
// A path draws from the law by its inverse distribution function, a table of quantiles made
// once per (n, w) from a fixed random stream: one uniform per path instead of five normals
// and a gamma variate.
type squaresLaw struct {
	mean      float64 // Σλ = E[Σ(r − r̄)²] / Var(r)
	quantiles []float64
}

// Sizes of the law's table.
const (
	squaresLawTop     = 4
	squaresLawSamples = 1 << 16
	squaresLawSteps   = 2048
)

func sumOfSquaresLaw(n, w int) squaresLaw { return squaresLaws.get(n, w, newSquaresLaw) }

func newSquaresLaw(n, w int) squaresLaw {
	// M·C·M(i, j) = C(i, j) − row(i)/n − row(j)/n + total/n².
	row := make([]float64, n)
	var total float64
	corr := func(i, j int) float64 { return math.Max(0, 1-math.Abs(float64(i-j))/float64(w)) }
	for i := range n {
		for j := range n {
			row[i] += corr(i, j)
		}
		total += row[i]
	}
	fn := float64(n)
	a := mat.NewSymDense(n, nil)
	for i := range n {
		for j := i; j < n; j++ {
			a.SetSym(i, j, corr(i, j)-row[i]/fn-row[j]/fn+total/(fn*fn))
		}
	}
	var eig mat.EigenSym
	var vals []float64
	if eig.Factorize(a, false) {
		vals = eig.Values(nil) // ascending
	} else {
		vals = make([]float64, n) // not expected for a symmetric matrix; fall back to iid
		for i := range vals {
			vals[i] = 1
		}
	}
	var l squaresLaw
	var top []float64
	var r1, r2 float64
	for i := len(vals) - 1; i >= 0; i-- {
		v := math.Max(vals[i], 0)
		l.mean += v
		if len(top) < squaresLawTop {
			top = append(top, v)
			continue
		}
		r1 += v
		r2 += v * v
	}
	var restScale, restDF float64
	if r1 > 1e-9 && r2 > 0 {
		restScale, restDF = r2/r1, r1*r1/r2
	}
	rng := rand.New(rand.NewPCG(uint64(n), uint64(w)))
	samples := make([]float64, squaresLawSamples)
	for i := range samples {
		var d float64
		for _, v := range top {
			z := rng.NormFloat64()
			d += v * z * z
		}
		if restDF > 0 {
			d += restScale * chiSquare(rng, restDF)
		}
		samples[i] = math.Max(d, 1e-9*l.mean)
	}
	slices.Sort(samples) // once per (n, w), not per creator
	l.quantiles = make([]float64, squaresLawSteps+1)
	for i := range l.quantiles {
		l.quantiles[i] = samples[min(len(samples)-1, i*(len(samples)-1)/squaresLawSteps)]
	}
	return l
}

// at is the law's quantile at u in [0, 1], interpolated in the table.
func (l squaresLaw) at(u float64) float64 {
	pos := u * squaresLawSteps
	i := min(int(pos), squaresLawSteps-1)
	return l.quantiles[i] + (l.quantiles[i+1]-l.quantiles[i])*(pos-float64(i))
}

// chiSquare draws from χ²(df) = 2·Gamma(df/2) with Marsaglia and Tsang's method (2000); for a
// shape below 1 it uses Gamma(a) = Gamma(a + 1)·U^(1/a).
func chiSquare(rng *rand.Rand, df float64) float64 {
	a := df / 2
	boost := 1.0
	if a < 1 {
		boost = math.Pow(1-rng.Float64(), 1/a)
		a++
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := rng.NormFloat64()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := rng.Float64()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			if r := 2 * d * v * boost; r > 0 {
				return r
			}
		}
	}
}

func finite(vs ...float64) bool {
	for _, v := range vs {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return false
		}
	}
	return true
}
