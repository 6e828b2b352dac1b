package db

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/creatorvault/orchestrator/forecast"
)

// AssetHistory is one creator's revenue in one asset: per UTC day, in that asset's stroops,
// and the streams (subscriptions) whose tier is priced in it.
type AssetHistory struct {
	Asset string
	// Revenue[i] is the revenue of From + i days.
	Revenue []int64
	// Streams were live at any time in the window; Cancellations of them were cancelled in
	// it; Active are live at the window's end.
	Streams       int
	Cancellations int
	Active        int
}

// CreatorHistory is what the forecast engine reads for one creator: one history per asset
// the creator earned in during the window (none for a creator without revenue).
type CreatorHistory struct {
	CreatorID uuid.UUID
	// From is the first day; Days the window's length.
	From   time.Time
	Days   int
	Assets []AssetHistory
}

// Asset returns the history in asset, if the creator earned in it.
func (h CreatorHistory) Asset(asset string) (AssetHistory, bool) {
	for _, a := range h.Assets {
		if a.Asset == asset {
			return a, true
		}
	}
	return AssetHistory{}, false
}

// Day truncates t to its UTC day.
func Day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// creatorHistoriesSQL reads a batch of creators' windows in one query: revenue per creator,
// asset and day (kind 0) and stream counts per creator and asset (kind 1).
const creatorHistoriesSQL = `
	SELECT creator_id, asset, 0, ((occurred_at AT TIME ZONE 'UTC')::date - ($2 AT TIME ZONE 'UTC')::date),
	       sum(amount_stroops)::bigint, 0, 0, 0
	  FROM revenue_events
	 WHERE creator_id = ANY($1) AND occurred_at >= $2 AND occurred_at < $3
	 GROUP BY creator_id, asset, (occurred_at AT TIME ZONE 'UTC')::date
	UNION ALL
	SELECT creator_id, asset, 1, 0, 0,
	       count(*) FILTER (WHERE started_at < $3 AND ends_at > $2),
	       count(*) FILTER (WHERE cancelled_at >= $2 AND cancelled_at < $3),
	       count(*) FILTER (WHERE started_at <= $3 AND ends_at > $3)
	  FROM revenue_streams
	 WHERE creator_id = ANY($1)
	 GROUP BY creator_id, asset`

// CreatorHistories reads the histories of creators for the days [to − days, to), in one query:
// revenue per asset and day (zero where there was none) and stream counts per asset. Only
// assets with revenue in the window are listed (in the engine's asset order, then others
// by name). A creator id that does not exist gets no assets.
func CreatorHistories(ctx context.Context, q Querier, creators []uuid.UUID, to time.Time, days int) ([]CreatorHistory, error) {
	to = Day(to)
	from := to.AddDate(0, 0, -days)
	out := make([]CreatorHistory, len(creators))
	index := make(map[uuid.UUID]int, len(creators))
	for i, id := range creators {
		out[i] = CreatorHistory{CreatorID: id, From: from, Days: days}
		index[id] = i
	}
	if len(creators) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, creatorHistoriesSQL, creators, from, to)
	if err != nil {
		return nil, err
	}
	type streams struct{ n, cancelled, active int }
	counts := map[[2]string]streams{}
	var id uuid.UUID
	var asset string
	var kind, day, n, cancelled, active int
	var amount int64
	_, err = pgx.ForEachRow(rows, []any{&id, &asset, &kind, &day, &amount, &n, &cancelled, &active}, func() error {
		i, ok := index[id]
		if !ok {
			return nil
		}
		if kind == 1 {
			counts[[2]string{id.String(), asset}] = streams{n, cancelled, active}
			return nil
		}
		if day < 0 || day >= days {
			return nil
		}
		h := &out[i]
		k := slices.IndexFunc(h.Assets, func(a AssetHistory) bool { return a.Asset == asset })
		if k < 0 {
			h.Assets = append(h.Assets, AssetHistory{Asset: asset, Revenue: make([]int64, days)})
			k = len(h.Assets) - 1
		}
		h.Assets[k].Revenue[day] += amount
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		h := &out[i]
		for k := range h.Assets {
			c := counts[[2]string{h.CreatorID.String(), h.Assets[k].Asset}]
			h.Assets[k].Streams, h.Assets[k].Cancellations, h.Assets[k].Active = c.n, c.cancelled, c.active
		}
		slices.SortFunc(h.Assets, func(a, b AssetHistory) int { return compareAssets(a.Asset, b.Asset) })
	}
	return out, nil
}

// compareAssets orders assets as the engine lists them, then any other by name.
func compareAssets(a, b string) int {
	ia, ib := slices.Index(forecast.Assets, a), slices.Index(forecast.Assets, b)
	if ia < 0 {
		ia = len(forecast.Assets)
	}
	if ib < 0 {
		ib = len(forecast.Assets)
	}
	if ia != ib {
		return ia - ib
	}
	return strings.Compare(a, b)
}

// CreatorIDsAfter pages through creator ids in id order: up to limit ids greater than after.
func CreatorIDsAfter(ctx context.Context, q Querier, after uuid.UUID, limit int) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `SELECT id FROM creators WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// CountCreators counts creators.
func CountCreators(ctx context.Context, q Querier) (int, error) {
	var n int
	err := q.QueryRow(ctx, `SELECT count(*) FROM creators`).Scan(&n)
	return n, err
}

// ForecastPrediction is one horizon of a stored forecast, in the asset's stroops per 30 days.
type ForecastPrediction struct {
	PeriodDays int   `json:"period_days"`
	Predicted  int64 `json:"predicted_revenue"`
	Lower      int64 `json:"lower_bound"`
	Upper      int64 `json:"upper_bound"`
}

// Forecast is a stored forecast of one creator's revenue in one asset.
type Forecast struct {
	ID              uuid.UUID
	CreatorID       uuid.UUID
	Asset           string
	AsOf            time.Time
	ModelVersion    string
	Paths           int
	HistoryDays     int
	ConfidenceLevel float64
	BaseRevenue     int64
	ChurnRate       float64
	GrowthRate      float64
	GrowthStdError  float64
	Volatility      float64
	VolatilityDF    float64
	StreamCount     int
	Predictions     []ForecastPrediction
	CreatedAt       time.Time
}

const forecastColumns = `id, creator_id, asset, as_of, model_version, paths, history_days, confidence_level, base_revenue,
	churn_rate, growth_rate, growth_std_error, volatility, volatility_df, stream_count, predictions, created_at`

func scanForecast(row pgx.Row) (Forecast, error) {
	var f Forecast
	var preds []byte
	err := row.Scan(&f.ID, &f.CreatorID, &f.Asset, &f.AsOf, &f.ModelVersion, &f.Paths, &f.HistoryDays, &f.ConfidenceLevel,
		&f.BaseRevenue, &f.ChurnRate, &f.GrowthRate, &f.GrowthStdError, &f.Volatility, &f.VolatilityDF, &f.StreamCount,
		&preds, &f.CreatedAt)
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(preds, &f.Predictions)
}

// UpsertForecasts stores forecasts in one multi-row statement; one of the same creator, asset,
// as-of day and model version is replaced.
func UpsertForecasts(ctx context.Context, q Querier, fs []Forecast, now time.Time) error {
	if len(fs) == 0 {
		return nil
	}
	n := len(fs)
	ids, creators := make([]uuid.UUID, n), make([]uuid.UUID, n)
	assets, asOf, versions := make([]string, n), make([]time.Time, n), make([]string, n)
	paths, historyDays, streams := make([]int32, n), make([]int32, n), make([]int32, n)
	conf, churn, growth, growthErr := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
	vol, volDF := make([]float64, n), make([]float64, n)
	base := make([]int64, n)
	preds := make([]string, n)
	for i, f := range fs {
		id, err := uuid.NewV7()
		if err != nil {
			return err
		}
		b, err := json.Marshal(f.Predictions)
		if err != nil {
			return err
		}
		ids[i], creators[i], assets[i], asOf[i], versions[i] = id, f.CreatorID, f.Asset, Day(f.AsOf), f.ModelVersion
		paths[i], historyDays[i], streams[i] = int32(f.Paths), int32(f.HistoryDays), int32(f.StreamCount)
		conf[i], churn[i], growth[i], growthErr[i] = f.ConfidenceLevel, f.ChurnRate, f.GrowthRate, f.GrowthStdError
		vol[i], volDF[i] = f.Volatility, f.VolatilityDF
		base[i], preds[i] = f.BaseRevenue, string(b)
	}
	_, err := q.Exec(ctx, `
		INSERT INTO forecasts (id, creator_id, asset, as_of, model_version, paths, history_days, confidence_level,
		                       base_revenue, churn_rate, growth_rate, growth_std_error, volatility, volatility_df,
		                       stream_count, predictions, created_at)
		SELECT u.*, $17 FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::date[], $5::text[], $6::int[], $7::int[],
		                            $8::float8[], $9::bigint[], $10::float8[], $11::float8[], $12::float8[],
		                            $13::float8[], $14::float8[], $15::int[], $16::jsonb[]) AS u
		ON CONFLICT (creator_id, as_of, model_version, asset) DO UPDATE
		   SET paths = EXCLUDED.paths, history_days = EXCLUDED.history_days,
		       confidence_level = EXCLUDED.confidence_level, base_revenue = EXCLUDED.base_revenue,
		       churn_rate = EXCLUDED.churn_rate, growth_rate = EXCLUDED.growth_rate,
		       growth_std_error = EXCLUDED.growth_std_error, volatility = EXCLUDED.volatility,
		       volatility_df = EXCLUDED.volatility_df, stream_count = EXCLUDED.stream_count,
		       predictions = EXCLUDED.predictions, created_at = EXCLUDED.created_at`,
		ids, creators, assets, asOf, versions, paths, historyDays, conf, base, churn, growth, growthErr, vol, volDF,
		streams, preds, now)
	switch pgCode(err) {
	case codeForeignKeyViolation:
		return invalid("creator_not_found", "there is no creator with this id")
	case codeCheckViolation:
		return invalid("unsupported_asset", "forecasts are kept only for USDC and XLM")
	}
	return err
}

// LatestForecasts returns the creator's most recent stored forecasts of the current model,
// one per asset (those of the latest as-of day), in the engine's asset order.
func LatestForecasts(ctx context.Context, q Querier, creatorID uuid.UUID) ([]Forecast, error) {
	rows, err := q.Query(ctx, `SELECT `+forecastColumns+` FROM forecasts
		 WHERE creator_id = $1 AND model_version = $2
		   AND as_of = (SELECT max(as_of) FROM forecasts WHERE creator_id = $1 AND model_version = $2)`,
		creatorID, forecast.ModelVersion)
	if err != nil {
		return nil, err
	}
	fs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Forecast, error) { return scanForecast(r) })
	if err != nil {
		return nil, err
	}
	if len(fs) == 0 {
		return nil, missing("forecast_not_found", "there is no forecast for this creator yet")
	}
	slices.SortFunc(fs, func(a, b Forecast) int { return compareAssets(a.Asset, b.Asset) })
	return fs, nil
}

// AssetStreams summarises a creator's revenue streams and revenue in one asset at a time.
type AssetStreams struct {
	Asset  string
	Active int
	// Cancellations30d were in the 30 days before the time; CancellationsTotal ever.
	Cancellations30d   int
	CancellationsTotal int
	Total              int
	// RevenueStroops is all revenue received in the asset; TipStroops the part that came
	// from no stream (tips).
	RevenueStroops int64
	TipStroops     int64
}

// Stream is one revenue stream with the revenue it brought.
type Stream struct {
	ID             uuid.UUID
	FanID          uuid.UUID
	Level          int
	PriceStroops   int64
	Asset          string
	Status         string
	StartedAt      time.Time
	CancelledAt    *time.Time
	EndsAt         time.Time
	RevenueStroops int64
}

// CreatorStreams summarises the creator's streams at time at, one summary per asset the
// creator has streams or revenue in (in the engine's asset order), and pages through the
// streams, newest first.
func CreatorStreams(ctx context.Context, q Querier, creatorID uuid.UUID, at time.Time, p Page) ([]AssetStreams, []Stream, *Cursor, error) {
	if err := requireCreator(ctx, q, creatorID, missing); err != nil {
		return nil, nil, nil, err
	}
	rows, err := q.Query(ctx, `
		WITH s AS (
		    SELECT asset,
		           count(*) FILTER (WHERE started_at <= $2 AND ends_at > $2) AS active,
		           count(*) FILTER (WHERE cancelled_at > $2 - interval '30 days' AND cancelled_at <= $2) AS c30,
		           count(*) FILTER (WHERE cancelled_at IS NOT NULL) AS ctotal,
		           count(*) AS total
		      FROM revenue_streams WHERE creator_id = $1 GROUP BY asset),
		     e AS (
		    SELECT asset, sum(amount_stroops)::bigint AS revenue,
		           coalesce(sum(amount_stroops) FILTER (WHERE kind = 'tip'), 0)::bigint AS tips
		      FROM revenue_events WHERE creator_id = $1 GROUP BY asset)
		SELECT coalesce(s.asset, e.asset), coalesce(s.active, 0), coalesce(s.c30, 0), coalesce(s.ctotal, 0),
		       coalesce(s.total, 0), coalesce(e.revenue, 0), coalesce(e.tips, 0)
		  FROM s FULL JOIN e ON e.asset = s.asset`, creatorID, at)
	if err != nil {
		return nil, nil, nil, err
	}
	sums, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (AssetStreams, error) {
		var a AssetStreams
		err := r.Scan(&a.Asset, &a.Active, &a.Cancellations30d, &a.CancellationsTotal, &a.Total, &a.RevenueStroops, &a.TipStroops)
		return a, err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	slices.SortFunc(sums, func(a, b AssetStreams) int { return compareAssets(a.Asset, b.Asset) })
	cat, cid := cursorArgs(p.After)
	rows, err = q.Query(ctx, `
		SELECT r.id, r.fan_id, r.level, r.price_stroops, r.asset,
		       CASE WHEN r.started_at <= $4 AND r.ends_at > $4 THEN 'active'
		            WHEN r.cancelled_at IS NOT NULL THEN 'cancelled' ELSE 'lapsed' END,
		       r.started_at, r.cancelled_at, r.ends_at,
		       (SELECT coalesce(sum(e.amount_stroops), 0)::bigint FROM revenue_events e
		         WHERE e.subscription_id = r.id AND e.creator_id = r.creator_id)
		  FROM revenue_streams r
		 WHERE r.creator_id = $1 AND ($2::timestamptz IS NULL OR (r.started_at, r.id) < ($2, $3))
		 ORDER BY r.started_at DESC, r.id DESC
		 LIMIT $5`, creatorID, cat, cid, at, p.Limit+1)
	if err != nil {
		return nil, nil, nil, err
	}
	streams, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stream, error) {
		var s Stream
		err := r.Scan(&s.ID, &s.FanID, &s.Level, &s.PriceStroops, &s.Asset, &s.Status, &s.StartedAt, &s.CancelledAt, &s.EndsAt, &s.RevenueStroops)
		return s, err
	})
	if err != nil {
		return nil, nil, nil, err
	}
	items, next := pageOf(streams, p.Limit, func(s Stream) Cursor { return Cursor{At: s.StartedAt, ID: s.ID} })
	return sums, items, next, nil
}
