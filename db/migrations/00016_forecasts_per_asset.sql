-- Forecasts per asset (issue 16). Model v1 added USDC and XLM stroops together, a number in
-- no currency: those rows are removed (the next refresh stores one forecast per asset), and
-- every forecast now names its asset. The daily revenue view is split by asset too.

-- +goose Up
DELETE FROM forecasts;
ALTER TABLE forecasts
    ADD COLUMN asset            text             NOT NULL CHECK (asset IN ('USDC', 'XLM')),
    ADD COLUMN growth_std_error double precision NOT NULL CHECK (growth_std_error >= 0),
    ADD COLUMN volatility_df    double precision NOT NULL CHECK (volatility_df >= 0),
    DROP CONSTRAINT forecasts_creator_id_as_of_model_version_key,
    ADD CONSTRAINT forecasts_creator_asset_day_model UNIQUE (creator_id, as_of, model_version, asset);

DROP VIEW creator_daily_revenue;
-- Revenue per creator, asset and UTC day, split by kind. Days without revenue have no row.
CREATE VIEW creator_daily_revenue AS
    SELECT creator_id,
           asset,
           (occurred_at AT TIME ZONE 'UTC')::date AS day,
           sum(amount_stroops)::bigint AS revenue_stroops,
           (sum(amount_stroops) FILTER (WHERE kind = 'subscription_payment'))::bigint AS subscription_stroops,
           (sum(amount_stroops) FILTER (WHERE kind = 'tip'))::bigint AS tip_stroops,
           count(*) AS payments
      FROM revenue_events
     GROUP BY creator_id, asset, (occurred_at AT TIME ZONE 'UTC')::date;
-- A new view: the runtime role and the backup read it (00010's default privileges would grant
-- the app DML on it too; a view only needs SELECT).
REVOKE ALL ON creator_daily_revenue FROM orchestrator_app, orchestrator_backup;
GRANT SELECT ON creator_daily_revenue TO orchestrator_app, orchestrator_backup;

-- +goose Down
DROP VIEW creator_daily_revenue;
CREATE VIEW creator_daily_revenue AS
    SELECT creator_id,
           (occurred_at AT TIME ZONE 'UTC')::date AS day,
           sum(amount_stroops)::bigint AS revenue_stroops,
           (sum(amount_stroops) FILTER (WHERE kind = 'subscription_payment'))::bigint AS subscription_stroops,
           (sum(amount_stroops) FILTER (WHERE kind = 'tip'))::bigint AS tip_stroops,
           count(*) AS payments
      FROM revenue_events
     GROUP BY creator_id, (occurred_at AT TIME ZONE 'UTC')::date;
REVOKE ALL ON creator_daily_revenue FROM orchestrator_app, orchestrator_backup;
GRANT SELECT ON creator_daily_revenue TO orchestrator_app, orchestrator_backup;
DELETE FROM forecasts;
ALTER TABLE forecasts
    DROP CONSTRAINT forecasts_creator_asset_day_model,
    DROP COLUMN asset,
    DROP COLUMN growth_std_error,
    DROP COLUMN volatility_df,
    ADD CONSTRAINT forecasts_creator_id_as_of_model_version_key UNIQUE (creator_id, as_of, model_version);
