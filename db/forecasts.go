package db

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// CreatorHistory is what the forecast engine reads for one creator: revenue per UTC day and
// the stream counts of the same window.
type CreatorHistory struct {
	CreatorID uuid.UUID
	// From is the first day; Revenue[i] is the revenue of From + i days, in stroops.
	From    time.Time
	Revenue []int64
	// Streams were live at any time in the window; Cancellations of them were cancelled in
	// it; Active are live at the window's end.
	Streams       int
	Cancellations int
	Active        int
}

// Day truncates t to its UTC day.
func Day(t time.Time) time.Time { return t.UTC().Truncate(24 * time.Hour) }

// CreatorHistories reads the histories of creators for the days [to − days, to): revenue per
// day (zero where there was none) and stream counts. A creator id that does not exist gets an
// all-zero history.
func CreatorHistories(ctx context.Context, q Querier, creators []uuid.UUID, to time.Time, days int) ([]CreatorHistory, error) {
	to = Day(to)
	from := to.AddDate(0, 0, -days)
	out := make([]CreatorHistory, len(creators))
	index := make(map[uuid.UUID]int, len(creators))
	for i, id := range creators {
		out[i] = CreatorHistory{CreatorID: id, From: from, Revenue: make([]int64, days)}
		index[id] = i
	}
	if len(creators) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `
		SELECT creator_id, (occurred_at AT TIME ZONE 'UTC')::date, sum(amount_stroops)::bigint
		  FROM revenue_events
		 WHERE creator_id = ANY($1) AND occurred_at >= $2 AND occurred_at < $3
		 GROUP BY 1, 2`, creators, from, to)
	if err != nil {
		return nil, err
	}
	var id uuid.UUID
	var day time.Time
	var amount int64
	_, err = pgx.ForEachRow(rows, []any{&id, &day, &amount}, func() error {
		i, ok := index[id]
		d := int(day.Sub(from).Hours() / 24)
		if ok && d >= 0 && d < days {
			out[i].Revenue[d] += amount
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rows, err = q.Query(ctx, `
		SELECT creator_id,
		       count(*) FILTER (WHERE started_at < $3 AND ends_at > $2),
		       count(*) FILTER (WHERE cancelled_at >= $2 AND cancelled_at < $3),
		       count(*) FILTER (WHERE started_at <= $3 AND ends_at > $3)
		  FROM revenue_streams
		 WHERE creator_id = ANY($1)
		 GROUP BY 1`, creators, from, to)
	if err != nil {
		return nil, err
	}
	var streams, cancels, active int
	_, err = pgx.ForEachRow(rows, []any{&id, &streams, &cancels, &active}, func() error {
		if i, ok := index[id]; ok {
			out[i].Streams, out[i].Cancellations, out[i].Active = streams, cancels, active
		}
		return nil
	})
	return out, err
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

// ForecastPrediction is one horizon of a stored forecast, in stroops per 30 days.
type ForecastPrediction struct {
	PeriodDays int   `json:"period_days"`
	Predicted  int64 `json:"predicted_revenue"`
	Lower      int64 `json:"lower_bound"`
	Upper      int64 `json:"upper_bound"`
}

// Forecast is a stored forecast.
type Forecast struct {
	ID              uuid.UUID
	CreatorID       uuid.UUID
	AsOf            time.Time
	ModelVersion    string
	Paths           int
	HistoryDays     int
	ConfidenceLevel float64
	BaseRevenue     int64
	ChurnRate       float64
	GrowthRate      float64
	Volatility      float64
	StreamCount     int
	Predictions     []ForecastPrediction
	CreatedAt       time.Time
}

const forecastColumns = `id, creator_id, as_of, model_version, paths, history_days, confidence_level, base_revenue,
	churn_rate, growth_rate, volatility, stream_count, predictions, created_at`

func scanForecast(row pgx.Row) (Forecast, error) {
	var f Forecast
	var preds []byte
	err := row.Scan(&f.ID, &f.CreatorID, &f.AsOf, &f.ModelVersion, &f.Paths, &f.HistoryDays, &f.ConfidenceLevel,
		&f.BaseRevenue, &f.ChurnRate, &f.GrowthRate, &f.Volatility, &f.StreamCount, &preds, &f.CreatedAt)
	if err != nil {
		return f, err
	}
	return f, json.Unmarshal(preds, &f.Predictions)
}

// UpsertForecasts stores forecasts in one statement; one of the same creator, as-of day and
// model version is replaced.
func UpsertForecasts(ctx context.Context, q Querier, fs []Forecast, now time.Time) error {
	if len(fs) == 0 {
		return nil
	}
	n := len(fs)
	ids, creators := make([]uuid.UUID, n), make([]uuid.UUID, n)
	asOf, versions := make([]time.Time, n), make([]string, n)
	paths, historyDays, streams := make([]int32, n), make([]int32, n), make([]int32, n)
	conf, churn, growth, vol := make([]float64, n), make([]float64, n), make([]float64, n), make([]float64, n)
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
		ids[i], creators[i], asOf[i], versions[i] = id, f.CreatorID, Day(f.AsOf), f.ModelVersion
		paths[i], historyDays[i], streams[i] = int32(f.Paths), int32(f.HistoryDays), int32(f.StreamCount)
		conf[i], churn[i], growth[i], vol[i] = f.ConfidenceLevel, f.ChurnRate, f.GrowthRate, f.Volatility
		base[i], preds[i] = f.BaseRevenue, string(b)
	}
	_, err := q.Exec(ctx, `
		INSERT INTO forecasts (id, creator_id, as_of, model_version, paths, history_days, confidence_level,
		                       base_revenue, churn_rate, growth_rate, volatility, stream_count, predictions, created_at)
		SELECT u.*, $14 FROM unnest($1::uuid[], $2::uuid[], $3::date[], $4::text[], $5::int[], $6::int[],
		                            $7::float8[], $8::bigint[], $9::float8[], $10::float8[], $11::float8[],
		                            $12::int[], $13::jsonb[]) AS u
		ON CONFLICT (creator_id, as_of, model_version) DO UPDATE
		   SET paths = EXCLUDED.paths, history_days = EXCLUDED.history_days,
		       confidence_level = EXCLUDED.confidence_level, base_revenue = EXCLUDED.base_revenue,
		       churn_rate = EXCLUDED.churn_rate, growth_rate = EXCLUDED.growth_rate,
		       volatility = EXCLUDED.volatility, stream_count = EXCLUDED.stream_count,
		       predictions = EXCLUDED.predictions, created_at = EXCLUDED.created_at`,
		ids, creators, asOf, versions, paths, historyDays, conf, base, churn, growth, vol, streams, preds, now)
	if pgCode(err) == codeForeignKeyViolation {
		return invalid("creator_not_found", "there is no creator with this id")
	}
	return err
}

// LatestForecast returns the creator's most recent stored forecast.
func LatestForecast(ctx context.Context, q Querier, creatorID uuid.UUID) (Forecast, error) {
	f, err := scanForecast(q.QueryRow(ctx, `SELECT `+forecastColumns+` FROM forecasts
		 WHERE creator_id = $1 ORDER BY as_of DESC, created_at DESC LIMIT 1`, creatorID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Forecast{}, missing("forecast_not_found", "there is no forecast for this creator yet")
	}
	return f, err
}

// StreamSummary is a creator's revenue streams at a time.
type StreamSummary struct {
	Active int
	// Cancellations30d were in the 30 days before the time; CancellationsTotal ever.
	Cancellations30d   int
	CancellationsTotal int
	Total              int
	// TipStroops is revenue that came from no stream (tips).
	TipStroops int64
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

// CreatorStreams summarises the creator's streams at time at and pages through them, newest
// first.
func CreatorStreams(ctx context.Context, q Querier, creatorID uuid.UUID, at time.Time, p Page) (StreamSummary, []Stream, *Cursor, error) {
	if err := requireCreator(ctx, q, creatorID, missing); err != nil {
		return StreamSummary{}, nil, nil, err
	}
	var sum StreamSummary
	err := q.QueryRow(ctx, `
		SELECT count(*) FILTER (WHERE started_at <= $2 AND ends_at > $2),
		       count(*) FILTER (WHERE cancelled_at > $2 - interval '30 days' AND cancelled_at <= $2),
		       count(*) FILTER (WHERE cancelled_at IS NOT NULL),
		       count(*),
		       (SELECT coalesce(sum(amount_stroops), 0)::bigint FROM revenue_events WHERE creator_id = $1 AND kind = 'tip')
		  FROM revenue_streams WHERE creator_id = $1`, creatorID, at).
		Scan(&sum.Active, &sum.Cancellations30d, &sum.CancellationsTotal, &sum.Total, &sum.TipStroops)
	if err != nil {
		return sum, nil, nil, err
	}
	cat, cid := cursorArgs(p.After)
	rows, err := q.Query(ctx, `
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
		return sum, nil, nil, err
	}
	streams, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Stream, error) {
		var s Stream
		err := r.Scan(&s.ID, &s.FanID, &s.Level, &s.PriceStroops, &s.Asset, &s.Status, &s.StartedAt, &s.CancelledAt, &s.EndsAt, &s.RevenueStroops)
		return s, err
	})
	if err != nil {
		return sum, nil, nil, err
	}
	items, next := pageOf(streams, p.Limit, func(s Stream) Cursor { return Cursor{At: s.StartedAt, ID: s.ID} })
	return sum, items, next, nil
}
