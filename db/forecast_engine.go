package db

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/forecast"
)

// This file adapts stored histories to the pure engine and its results to stored forecasts;
// it does no I/O. The refresh activity, the API's on-demand forecast and the backtest use it.

// Engine is the engine's view of the history in one asset.
func (h AssetHistory) Engine() forecast.History {
	in := forecast.History{Revenue: make([]float64, len(h.Revenue)), Streams: h.Streams,
		Cancellations: h.Cancellations, ActiveStreams: h.Active}
	for i, v := range h.Revenue {
		in.Revenue[i] = float64(v)
	}
	return in
}

// Refusal is an asset of a creator the engine declined to forecast, and why.
type Refusal struct {
	Asset string
	Err   error
}

// ForecastHistory runs the engine on each asset of a creator's history as of a day (the
// history must end on the day before it) and returns the forecasts to store, one per asset,
// and the assets it declined (too short, gaps, no revenue, an unsupported asset). An error
// that is not a refusal is returned as such.
func ForecastHistory(h CreatorHistory, asOf time.Time, paths int) ([]Forecast, []Refusal, error) {
	if paths <= 0 {
		paths = forecast.DefaultPaths
	}
	day := Day(asOf)
	var out []Forecast
	var refused []Refusal
	for _, a := range h.Assets {
		res, err := forecast.ForecastAsset(a.Asset, a.Engine(), forecast.Seed(h.CreatorID, a.Asset, day), forecast.Options{Paths: paths})
		if forecast.IsRefusal(err) {
			refused = append(refused, Refusal{Asset: a.Asset, Err: err})
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("forecast %s in %s: %w", h.CreatorID, a.Asset, err)
		}
		out = append(out, ForecastFromResult(h.CreatorID, a.Asset, day, len(a.Revenue), res))
	}
	if len(h.Assets) == 0 {
		refused = append(refused, Refusal{Err: forecast.ErrNoRevenue})
	}
	return out, refused, nil
}

// ForecastFromResult is the stored form of an engine result.
func ForecastFromResult(creator uuid.UUID, asset string, asOf time.Time, historyDays int, res forecast.Result) Forecast {
	f := Forecast{
		CreatorID: creator, Asset: asset, AsOf: Day(asOf), ModelVersion: forecast.ModelVersion, Paths: res.Paths,
		HistoryDays: historyDays, ConfidenceLevel: forecast.ConfidenceLevel, BaseRevenue: Stroops(res.Factors.BaseRevenue),
		ChurnRate: res.Factors.ChurnRate, GrowthRate: res.Factors.GrowthRate, GrowthStdError: res.Factors.GrowthStdError,
		Volatility: res.Factors.Volatility, VolatilityDF: res.Factors.VolatilityDF, StreamCount: res.Factors.StreamCount,
	}
	for _, p := range res.Predictions {
		f.Predictions = append(f.Predictions, ForecastPrediction{PeriodDays: p.PeriodDays,
			Predicted: Stroops(p.Median), Lower: Stroops(p.Lower), Upper: Stroops(p.Upper)})
	}
	return f
}

// Stroops rounds a forecast amount to whole stroops, within int64 (NaN and negatives are 0).
func Stroops(v float64) int64 {
	switch {
	case v <= 0 || math.IsNaN(v):
		return 0
	case v >= math.MaxInt64/2:
		return math.MaxInt64 / 2
	}
	return int64(math.Round(v))
}

// RefusalError is the answer for a creator none of whose assets could be forecast: a
// *Error of kind Invalid (422) naming each asset's reason.
func RefusalError(refused []Refusal) error {
	msg := "cannot forecast this creator"
	for i, r := range refused {
		sep := ": "
		if i > 0 {
			sep = "; "
		}
		if r.Asset == "" {
			msg += sep + r.Err.Error()
		} else {
			msg += sep + r.Asset + ": " + r.Err.Error()
		}
	}
	code := "insufficient_history"
	if len(refused) > 0 && errors.Is(refused[0].Err, forecast.ErrUnsupportedAsset) {
		code = "unsupported_asset"
	}
	return &Error{Kind: KindInvalid, Code: code, Message: msg}
}
