-- Revenue forecasts: the daily metrics the engine reads (views over revenue_events and
-- subscriptions, so they are always in step with them) and the stored forecasts.

-- +goose Up
-- Revenue per creator and UTC day, split by kind. Days without revenue have no row.
CREATE VIEW creator_daily_revenue AS
    SELECT creator_id,
           (occurred_at AT TIME ZONE 'UTC')::date AS day,
           sum(amount_stroops)::bigint AS revenue_stroops,
           (sum(amount_stroops) FILTER (WHERE kind = 'subscription_payment'))::bigint AS subscription_stroops,
           (sum(amount_stroops) FILTER (WHERE kind = 'tip'))::bigint AS tip_stroops,
           count(*) AS payments
      FROM revenue_events
     GROUP BY creator_id, (occurred_at AT TIME ZONE 'UTC')::date;

-- A revenue stream is a subscription: it starts, may be cancelled, and brings its tier's
-- price each period. It is live from started_at until ends_at (the cancellation or the end of
-- the last paid period, whichever is first).
CREATE VIEW revenue_streams AS
    SELECT s.id, s.creator_id, s.fan_id, s.tier_id, t.level, t.price_stroops, t.asset, t.period_days,
           s.status, s.started_at, s.cancelled_at,
           least(coalesce(s.cancelled_at, 'infinity'::timestamptz), s.current_period_end) AS ends_at
      FROM subscriptions s JOIN subscription_tiers t ON t.id = s.tier_id;

-- One forecast per creator, as-of day and model version; a refresh of the same day replaces
-- it. Predictions hold the horizons: [{period_days, predicted_revenue, lower_bound,
-- upper_bound}] in stroops per 30 days.
CREATE TABLE forecasts (
    id               uuid             PRIMARY KEY,
    creator_id       uuid             NOT NULL REFERENCES creators (id),
    as_of            date             NOT NULL,
    model_version    text             NOT NULL CHECK (char_length(model_version) BETWEEN 1 AND 64),
    paths            integer          NOT NULL CHECK (paths > 0),
    history_days     integer          NOT NULL CHECK (history_days > 0),
    confidence_level double precision NOT NULL CHECK (confidence_level > 0 AND confidence_level < 1),
    base_revenue     bigint           NOT NULL CHECK (base_revenue >= 0),
    churn_rate       double precision NOT NULL CHECK (churn_rate BETWEEN 0 AND 1),
    growth_rate      double precision NOT NULL CHECK (growth_rate > -1),
    volatility       double precision NOT NULL CHECK (volatility >= 0),
    stream_count     integer          NOT NULL CHECK (stream_count >= 0),
    predictions      jsonb            NOT NULL CHECK (jsonb_typeof(predictions) = 'array'),
    created_at       timestamptz      NOT NULL DEFAULT now(),
    UNIQUE (creator_id, as_of, model_version)
);
CREATE INDEX forecasts_latest ON forecasts (creator_id, as_of DESC, created_at DESC);

-- +goose Down
DROP TABLE forecasts;
DROP VIEW revenue_streams;
DROP VIEW creator_daily_revenue;
