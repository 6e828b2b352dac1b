package forecast

import (
	"math"
)

// Actual is what a forecast made at day cutoff (the index of the as-of day in revenue,
// which holds days before and after it) predicts for horizon days: the revenue of the 30 days
// ending horizon days after the as-of date, i.e. revenue[cutoff+horizon−30 : cutoff+horizon].
// It reports false when revenue does not reach that far.
func Actual(revenue []float64, cutoff, horizon int) (float64, bool) {
	end := cutoff + horizon
	start := end - SmoothingDays
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
// happened: the share of actual values inside the interval (coverage) and the errors of the
// mean, the way Prophet's cross-validation reports them.
type Score struct {
	PeriodDays int
	N          int
	Inside     int
	sumAbs     float64
	sumAbsPct  float64
	nPct       int
	sumSq      float64
}

// Add records one forecast and its actual value.
func (s *Score) Add(p Prediction, actual float64) {
	s.N++
	if actual >= p.Lower && actual <= p.Upper {
		s.Inside++
	}
	e := p.Mean - actual
	s.sumAbs += math.Abs(e)
	s.sumSq += e * e
	if actual > 0 {
		s.sumAbsPct += math.Abs(e) / actual
		s.nPct++
	}
}

// Coverage is the share of actual values inside the interval.
func (s *Score) Coverage() float64 {
	if s.N == 0 {
		return 0
	}
	return float64(s.Inside) / float64(s.N)
}

// MAE is the mean absolute error of the mean prediction.
func (s *Score) MAE() float64 {
	if s.N == 0 {
		return 0
	}
	return s.sumAbs / float64(s.N)
}

// RMSE is the root mean squared error of the mean prediction.
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
