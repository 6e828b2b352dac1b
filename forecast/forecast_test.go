package forecast

import (
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/gonum/stat"
)

var testCreator = [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}

func TestMeanMatchesClosedForm(t *testing.T) {
	cases := []Factors{
		{BaseRevenue: 1000, GrowthRate: 0.10, ChurnRate: 0.03, Volatility: 0.05},
		{BaseRevenue: 5e8, GrowthRate: -0.05, ChurnRate: 0.08, Volatility: 0.10},
		{BaseRevenue: 42, GrowthRate: 0.30, ChurnRate: 0, Volatility: 0.02},
		{BaseRevenue: 1e7, GrowthRate: 0, ChurnRate: 0, Volatility: 0},
	}
	for i, f := range cases {
		seed := Seed(testCreator, time.Date(2026, 1, 1+i, 0, 0, 0, 0, time.UTC))
		at := simulatePaths(f, seed, DefaultPaths, Horizons)
		for k, h := range Horizons {
			mean := stat.Mean(at[k], nil)
			se := stat.StdDev(at[k], nil) / math.Sqrt(float64(len(at[k])))
			want := ClosedForm(f, h)
			require.InDeltaf(t, want, mean, 4*se+1e-9*want, "case %d horizon %d: mean %.4f closed form %.4f se %.4f", i, h, mean, want, se)
		}
		preds, err := Simulate(f, seed, DefaultPaths, Horizons)
		require.NoError(t, err)
		for k, p := range preds {
			require.Equal(t, Horizons[k], p.PeriodDays)
			require.LessOrEqual(t, p.Lower, p.Mean)
			require.LessOrEqual(t, p.Mean, p.Upper)
		}
	}
}

// TestIntervalCoverageKnownFactors: futures drawn from the model itself (with other random
// streams) fall inside the 95% interval about 95% of the time.
func TestIntervalCoverageKnownFactors(t *testing.T) {
	f := Factors{BaseRevenue: 1000, GrowthRate: 0.08, ChurnRate: 0.04, Volatility: 0.04}
	preds, err := Simulate(f, Seed(testCreator, time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)), DefaultPaths, Horizons)
	require.NoError(t, err)
	const trials = 2000
	rng := rand.New(rand.NewPCG(7, 11))
	inside := make([]int, len(Horizons))
	for range trials {
		r, k := f.BaseRevenue, 0
		for d := 1; d <= 90; d++ {
			r *= (1 + (f.GrowthRate-f.ChurnRate)/30) * (1 + f.Volatility*rng.NormFloat64())
			if d == Horizons[k] {
				if r >= preds[k].Lower && r <= preds[k].Upper {
					inside[k]++
				}
				k++
			}
		}
	}
	for k := range Horizons {
		cov := float64(inside[k]) / trials
		require.InDeltaf(t, 0.95, cov, 0.02, "horizon %d coverage %.3f", Horizons[k], cov)
	}
}

// TestIntervalCoverageSyntheticSeries: series generated from known parameters, forecast from
// their first 120 days (factors estimated, not given), are inside the interval at the horizon
// close to 95% of the time. Estimation error widens the truth's spread a little, so the bound
// is looser than with known factors.
func TestIntervalCoverageSyntheticSeries(t *testing.T) {
	const series = 300
	rng := rand.New(rand.NewPCG(2026, 6))
	inside := make([]int, len(Horizons))
	var growthErr float64
	for s := range series {
		g, vol := 0.10, 0.03
		daily := math.Log1p(g) / 30
		n := HistoryDays + 90
		rev := make([]float64, n)
		r := 1e6
		for i := range rev {
			r *= math.Exp(daily - vol*vol/2 + vol*rng.NormFloat64())
			rev[i] = r
		}
		h := History{Revenue: rev[:HistoryDays], Streams: 100, Cancellations: 0, ActiveStreams: 100}
		seed := Seed([16]byte{byte(s), byte(s >> 8)}, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		res, err := Forecast(h, seed, Options{Smoothing: 1})
		require.NoError(t, err)
		growthErr += math.Abs(res.Factors.GrowthRate - g)
		for k, p := range res.Predictions {
			actual := 30 * rev[HistoryDays-1+p.PeriodDays] // per 30 days, as the run rate
			if actual >= p.Lower && actual <= p.Upper {
				inside[k]++
			}
		}
	}
	// The slope of a random walk's log level is uncertain (its error grows with the horizon),
	// which the interval does not include: coverage falls below 95% further out. Measured:
	// about 0.91, 0.90, 0.83 at 30, 60, 90 days.
	minCoverage := []float64{0.87, 0.85, 0.78}
	for k := range Horizons {
		cov := float64(inside[k]) / series
		t.Logf("horizon %d: coverage %.3f", Horizons[k], cov)
		require.GreaterOrEqualf(t, cov, minCoverage[k], "horizon %d coverage %.3f", Horizons[k], cov)
		require.LessOrEqualf(t, cov, 1.0, "horizon %d coverage %.3f", Horizons[k], cov)
	}
	require.Less(t, growthErr/series, 0.15, "mean absolute error of the estimated growth")
}

func TestSlopeHandComputed(t *testing.T) {
	// x̄ = 1.5, ȳ = 2.75, Σ(x−x̄)(y−ȳ) = 5.5, Σ(x−x̄)² = 5: slope 1.1.
	require.InDelta(t, 1.1, Slope([]float64{0, 1, 2, 3}, []float64{1, 3, 2, 5}), 1e-12)
}

func TestGrowthFromExponentialSeries(t *testing.T) {
	rev := make([]float64, 60)
	for i := range rev {
		rev[i] = 100 * math.Exp(0.01*float64(i))
	}
	f, err := Estimate(History{Revenue: rev, Streams: 10, Cancellations: 2, ActiveStreams: 8}, 1)
	require.NoError(t, err)
	require.InDelta(t, math.Exp(0.3)-1, f.GrowthRate, 1e-9)        // e^(30·0.01) − 1
	require.InDelta(t, 0, f.Volatility, 1e-9)                      // constant log returns
	require.InDelta(t, 30*100*math.Exp(0.59), f.BaseRevenue, 1e-6) // per 30 days
	require.InDelta(t, 2.0*30/(10*60), f.ChurnRate, 1e-12)
	require.Equal(t, 8, f.StreamCount)
}

func TestVolatilityHandComputed(t *testing.T) {
	// Alternating 100, 110: log returns +ln 1.1, −ln 1.1, ... (20 of them, mean 0), so the
	// sample standard deviation is ln 1.1 · sqrt(20/19).
	rev := make([]float64, 21)
	for i := range rev {
		rev[i] = 100
		if i%2 == 1 {
			rev[i] = 110
		}
	}
	f, err := Estimate(History{Revenue: rev}, 1)
	require.NoError(t, err)
	require.InDelta(t, math.Log(1.1)*math.Sqrt(20.0/19), f.Volatility, 1e-12)
}

func TestChurnHandComputed(t *testing.T) {
	require.InDelta(t, 0.05, Churn(3, 20, 90), 1e-12) // 3·30 / (20·90)
	require.Equal(t, 0.0, Churn(5, 0, 90))            // no streams
	require.Equal(t, 1.0, Churn(50, 1, 14))           // clamped
	require.InDelta(t, 30.0/90, Churn(1, 1, 90), 1e-12)
}

func TestRunRate(t *testing.T) {
	rev := []float64{0, 0, 30, 0, 0, 60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	// 17 days: the window shrinks to 17 − 14 + 1 = 4 days; each point is the 4-day sum × 30/4.
	rr := RunRate(rev, 30)
	require.Len(t, rr, 14)
	require.InDelta(t, 30*30.0/4, rr[0], 1e-12)
	require.InDelta(t, 90*30.0/4, rr[2], 1e-12)
	require.Equal(t, 0.0, rr[13])
	require.Len(t, RunRate(make([]float64, 120), 30), 91)
}

func TestDeterministic(t *testing.T) {
	rev := make([]float64, 120)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range rev {
		if rng.Float64() < 0.4 {
			rev[i] = float64(rng.IntN(1e8))
		}
	}
	h := History{Revenue: rev, Streams: 12, Cancellations: 3, ActiveStreams: 9}
	day := time.Date(2026, 11, 26, 0, 0, 0, 0, time.UTC)
	a, err := Forecast(h, Seed(testCreator, day), Options{})
	require.NoError(t, err)
	b, err := Forecast(h, Seed(testCreator, day.Add(13*time.Hour)), Options{}) // same UTC day
	require.NoError(t, err)
	require.Equal(t, a, b)
	c, err := Forecast(h, Seed(testCreator, day.AddDate(0, 0, 1)), Options{})
	require.NoError(t, err)
	require.Equal(t, a.Factors, c.Factors)
	require.NotEqual(t, a.Predictions, c.Predictions)
	// The seed itself is pinned: it must not change between machines or releases.
	require.Equal(t, Seed(testCreator, day), Seed(testCreator, day))
	require.NotEqual(t, Seed(testCreator, day), Seed([16]byte{}, day))
}

func TestOddHistories(t *testing.T) {
	seed := Seed(testCreator, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	_, err := Forecast(History{Revenue: make([]float64, 13)}, seed, Options{})
	require.ErrorIs(t, err, ErrShortHistory)
	_, err = Forecast(History{Revenue: make([]float64, 120)}, seed, Options{})
	require.ErrorIs(t, err, ErrNoRevenue)
	_, err = Forecast(History{Revenue: []float64{1, 2, math.NaN(), 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}}, seed, Options{})
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = Forecast(History{Revenue: append([]float64{-1}, make([]float64, 20)...)}, seed, Options{})
	require.ErrorIs(t, err, ErrInvalidInput)

	// Gappy: unsmoothed, one payment every 10 days leaves too few positive days.
	gappy := make([]float64, 40)
	for i := 0; i < len(gappy); i += 10 {
		gappy[i] = 5e7
	}
	_, err = Forecast(History{Revenue: gappy}, seed, Options{Smoothing: 1})
	require.ErrorIs(t, err, ErrShortHistory)

	// Smoothed, the same gappy history forecasts, finite.
	res, err := Forecast(History{Revenue: gappy, Streams: 1, ActiveStreams: 1}, seed, Options{})
	require.NoError(t, err)
	requireFinite(t, res)

	// A single stream paying monthly for 120 days, then cancelled.
	single := make([]float64, 120)
	for i := 0; i < 120; i += 30 {
		single[i] = 5e7
	}
	res, err = Forecast(History{Revenue: single, Streams: 1, Cancellations: 1}, seed, Options{})
	require.NoError(t, err)
	requireFinite(t, res)
	require.InDelta(t, 30.0/120, res.Factors.ChurnRate, 1e-12)

	// Revenue long ago, none in the last 30 days: base 0, zero forecast.
	old := make([]float64, 120)
	for i := 0; i < 60; i++ {
		old[i] = 1e6
	}
	res, err = Forecast(History{Revenue: old}, seed, Options{})
	require.NoError(t, err)
	require.Equal(t, 0.0, res.Factors.BaseRevenue)
	for _, p := range res.Predictions {
		require.Equal(t, Prediction{PeriodDays: p.PeriodDays}, p)
	}

	// Extremely volatile: volatility capped, still finite.
	wild := make([]float64, 60)
	for i := range wild {
		wild[i] = math.Pow(10, float64(i%5))
	}
	res, err = Forecast(History{Revenue: wild}, seed, Options{Smoothing: 1})
	require.NoError(t, err)
	require.Equal(t, MaxVolatility, res.Factors.Volatility)
	requireFinite(t, res)
}

func requireFinite(t *testing.T, r Result) {
	t.Helper()
	require.True(t, finite(r.Factors.BaseRevenue, r.Factors.ChurnRate, r.Factors.GrowthRate, r.Factors.Volatility))
	require.Len(t, r.Predictions, 3)
	for _, p := range r.Predictions {
		require.True(t, finite(p.Mean, p.Lower, p.Upper))
		require.GreaterOrEqual(t, p.Lower, 0.0)
	}
}

func TestSimulateRejectsBadArguments(t *testing.T) {
	f := Factors{BaseRevenue: 1}
	_, err := Simulate(f, [2]uint64{}, 1, Horizons)
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = Simulate(f, [2]uint64{}, 10, []int{60, 30})
	require.ErrorIs(t, err, ErrInvalidInput)
	_, err = Simulate(Factors{BaseRevenue: math.Inf(1)}, [2]uint64{}, 10, Horizons)
	require.ErrorIs(t, err, ErrInvalidInput)
}

// BenchmarkEngine compares one creator's simulation (1000 paths × 90 days) with drawing
// 90,000 normal variates from the same generator, in the same run. Target ratio ≤ 1.5.
func BenchmarkEngine(b *testing.B) {
	f := Factors{BaseRevenue: 1e9, GrowthRate: 0.1, ChurnRate: 0.05, Volatility: 0.03}
	seed := Seed(testCreator, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	// Interleaved and the fastest of many repetitions of each, so that other load on the
	// machine does not land on one side only.
	const reps = 200
	var sink float64
	normals, engine := time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)
	for range reps {
		start := time.Now()
		rng := rand.New(rand.NewPCG(seed[0], seed[1]))
		for range DefaultPaths * 90 {
			sink += rng.NormFloat64()
		}
		normals = min(normals, time.Since(start))
		start = time.Now()
		preds, err := Simulate(f, seed, DefaultPaths, Horizons)
		if err != nil {
			b.Fatal(err)
		}
		sink += preds[0].Mean
		engine = min(engine, time.Since(start))
	}
	ratio := float64(engine) / float64(normals)
	b.Logf("engine: one creator %v, 90,000 normals %v, ratio %.2f (target ≤ 1.5) [%g]", engine, normals, ratio, sink*0)
	b.ReportMetric(ratio, "ratio")
	b.ReportMetric(float64(engine.Microseconds()), "µs/creator")
}

func TestActualAndScore(t *testing.T) {
	rev := make([]float64, 200)
	for i := range rev {
		rev[i] = float64(i)
	}
	got, ok := Actual(rev, 100, 30)
	require.True(t, ok)
	require.Equal(t, float64((100+129)*30/2), got) // days 100..129
	got, ok = Actual(rev, 100, 90)
	require.True(t, ok)
	require.Equal(t, float64((160+189)*30/2), got)
	_, ok = Actual(rev, 150, 90)
	require.False(t, ok)

	s := Score{PeriodDays: 30}
	s.Add(Prediction{Mean: 100, Lower: 80, Upper: 120}, 110) // inside, error 10, 1/11
	s.Add(Prediction{Mean: 100, Lower: 80, Upper: 120}, 130) // outside, error 30
	s.Add(Prediction{Mean: 10, Lower: 0, Upper: 20}, 0)      // inside, error 10, no percentage
	require.Equal(t, 3, s.N)
	require.InDelta(t, 2.0/3, s.Coverage(), 1e-12)
	require.InDelta(t, 50.0/3, s.MAE(), 1e-12)
	require.InDelta(t, math.Sqrt(1100.0/3), s.RMSE(), 1e-12)
	require.InDelta(t, (10.0/110+30.0/130)/2, s.MAPE(), 1e-12)
}
