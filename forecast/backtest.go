package forecast

import (
	"fmt"
	"math"
)

// Actual is what a forecast made at day cutoff (the index of the as-of day in revenue,
// which holds days before and after it) predicts for horizon days: the revenue of the 30 days
// ending horizon days after the as-of date, i.e. revenue[cutoff+horizon−30 : cutoff+horizon].
// It reports false when revenue does not reach that far.
func Actual(revenue []float64, cutoff, horizon int) (float64, bool) {
	end := cutoff + horizon
	start := end - WindowDays
	if start < 0 || end > len(revenue) || horizon < 1 {
		return 0, false
	}
	var sum float64
	for _, v := range revenue[start:end] {
		sum += v
	}
	return sum, true
}

// Score accumulates, for one horizon, how forecasts made in the past fared against what
// happened: the share of actual values inside the interval (coverage), the errors of the point
// forecast, the paths' median (as Prophet's cross-validation reports them) and, where the paths were kept, where each
// actual value fell among them (its probability integral transform, for a reliability chart).
type Score struct {
	PeriodDays int
	N          int
	Inside     int
	sumAbs     float64
	sumSq      float64
	sumAbsPct  float64
	sumPct     float64
	nPct       int
	pits       []float64
}

// Add records one forecast and its actual value.
func (s *Score) Add(p Prediction, actual float64) {
	s.N++
	if actual >= p.Lower && actual <= p.Upper {
		s.Inside++
	}
	e := p.Median - actual
	s.sumAbs += math.Abs(e)
	s.sumSq += e * e
	if actual > 0 {
		s.sumAbsPct += math.Abs(e) / actual
		s.sumPct += e / actual
		s.nPct++
	}
}

// AddPaths records where actual fell among one forecast's path values: the share below it
// (ties count half).
func (s *Score) AddPaths(values []float64, actual float64) {
	if len(values) == 0 {
		return
	}
	var below float64
	for _, v := range values {
		switch {
		case v < actual:
			below++
		case v == actual:
			below += 0.5
		}
	}
	s.pits = append(s.pits, below/float64(len(values)))
}

// Coverage is the share of actual values inside the interval.
func (s *Score) Coverage() float64 {
	if s.N == 0 {
		return 0
	}
	return float64(s.Inside) / float64(s.N)
}

// MAE is the mean absolute error of the point forecast (the median).
func (s *Score) MAE() float64 {
	if s.N == 0 {
		return 0
	}
	return s.sumAbs / float64(s.N)
}

// RMSE is the root mean squared error of the point forecast.
func (s *Score) RMSE() float64 {
	if s.N == 0 {
		return 0
	}
	return math.Sqrt(s.sumSq / float64(s.N))
}

// MAPE is the mean absolute percentage error over actual values above zero.
func (s *Score) MAPE() float64 {
	if s.nPct == 0 {
		return 0
	}
	return s.sumAbsPct / float64(s.nPct)
}

// Bias is the mean signed percentage error, (predicted − actual) / actual, over actual values
// above zero: positive when the forecasts were too high.
func (s *Score) Bias() float64 {
	if s.nPct == 0 {
		return 0
	}
	return s.sumPct / float64(s.nPct)
}

// ReliabilityLevels are the nominal central-interval levels a reliability chart shows.
var ReliabilityLevels = []float64{0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99}

// Reliability is, for each nominal level, the share of actual values inside the central
// interval of that level of their forecast's paths (a calibrated forecast gives the level
// itself). Empty without recorded paths.
func (s *Score) Reliability(levels []float64) []float64 {
	if len(s.pits) == 0 {
		return nil
	}
	out := make([]float64, len(levels))
	for i, l := range levels {
		lo, hi := (1-l)/2, (1+l)/2
		var in int
		for _, p := range s.pits {
			if p >= lo && p <= hi {
				in++
			}
		}
		out[i] = float64(in) / float64(len(s.pits))
	}
	return out
}

// Backtest scores forecasts made at a cut-off against what came after it, per horizon.
type Backtest struct {
	Paths   int
	Scores  []Score
	Tested  int
	Skipped int
}

// NewBacktest scores the default horizons with paths Monte Carlo paths per forecast.
func NewBacktest(paths int) *Backtest {
	b := &Backtest{Paths: paths}
	for _, h := range Horizons {
		b.Scores = append(b.Scores, Score{PeriodDays: h})
	}
	return b
}

// Add forecasts one series in asset from before (ending the day before the cut-off) and
// scores each horizon against after (the revenue from the cut-off on). A history the engine
// refuses is counted as skipped; any other error is returned.
func (b *Backtest) Add(asset string, before History, after []float64, seed [2]uint64) error {
	res, err := ForecastAsset(asset, before, seed, Options{Paths: b.Paths, PathValues: true})
	if IsRefusal(err) {
		b.Skipped++
		return nil
	}
	if err != nil {
		return fmt.Errorf("backtest: %w", err)
	}
	b.Tested++
	full := append(append(make([]float64, 0, len(before.Revenue)+len(after)), before.Revenue...), after...)
	for k, p := range res.Predictions {
		if actual, ok := Actual(full, len(before.Revenue), p.PeriodDays); ok {
			b.Scores[k].Add(p, actual)
			b.Scores[k].AddPaths(res.PathValues[k], actual)
		}
	}
	return nil
}

// Merge adds o's counts and scores into b (same horizons).
func (b *Backtest) Merge(o *Backtest) {
	b.Tested += o.Tested
	b.Skipped += o.Skipped
	for k := range b.Scores {
		s, t := &b.Scores[k], o.Scores[k]
		s.N += t.N
		s.Inside += t.Inside
		s.sumAbs += t.sumAbs
		s.sumSq += t.sumSq
		s.sumAbsPct += t.sumAbsPct
		s.sumPct += t.sumPct
		s.nPct += t.nPct
		s.pits = append(s.pits, t.pits...)
	}
}
