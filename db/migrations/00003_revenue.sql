-- Money that reached creators: subscription payments and tips, in integer stroops. The
-- external id (a Stellar transaction hash, a processor's payment id) is unique, so importing
-- the same payment twice changes nothing. Forecasts read daily revenue from here.

-- +goose Up
CREATE TABLE revenue_events (
    id              uuid        PRIMARY KEY,
    external_id     text        NOT NULL UNIQUE CHECK (char_length(external_id) BETWEEN 1 AND 128),
    creator_id      uuid        NOT NULL REFERENCES creators (id),
    fan_id          uuid        REFERENCES users (id),
    subscription_id uuid,
    kind            text        NOT NULL CHECK (kind IN ('subscription_payment', 'tip')),
    amount_stroops  bigint      NOT NULL CHECK (amount_stroops > 0),
    asset           text        NOT NULL CHECK (asset IN ('USDC', 'XLM')),
    occurred_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (subscription_id, creator_id) REFERENCES subscriptions (id, creator_id),
    CHECK (kind <> 'subscription_payment' OR subscription_id IS NOT NULL)
);
CREATE INDEX revenue_events_creator_time ON revenue_events (creator_id, occurred_at);

-- +goose Down
DROP TABLE revenue_events;
