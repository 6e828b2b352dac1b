-- The shared account model: who is who, who creates, which tiers they sell, and who
-- subscribes to whom. Comments, direct messages and forecasts all read these tables.

-- +goose Up
CREATE TABLE users (
    id             uuid        PRIMARY KEY,
    role           text        NOT NULL CHECK (role IN ('fan', 'creator', 'council', 'admin', 'service')),
    display_name   text        NOT NULL CHECK (char_length(display_name) BETWEEN 1 AND 100),
    -- The user's Stellar account, where they have one (creators are paid there).
    stellar_account text       CHECK (stellar_account ~ '^G[A-Z2-7]{55}$'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- A creator is a user with a page that fans subscribe to.
CREATE TABLE creators (
    id         uuid        PRIMARY KEY REFERENCES users (id),
    handle     text        NOT NULL UNIQUE CHECK (handle ~ '^[a-z0-9_]{2,32}$'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Fans are the users who hold the fan role.
CREATE VIEW fans AS
    SELECT id, display_name, stellar_account, created_at, updated_at FROM users WHERE role = 'fan';

-- What a creator sells. The level orders the tiers: Bronze 1, Silver 2, Gold 3. Comments need
-- any active subscription; direct messages need level 3 or more. Permissions list the further
-- perks a tier grants, for clients to show.
CREATE TABLE subscription_tiers (
    id            uuid        PRIMARY KEY,
    creator_id    uuid        NOT NULL REFERENCES creators (id),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 50),
    level         smallint    NOT NULL CHECK (level BETWEEN 1 AND 10),
    price_stroops bigint      NOT NULL CHECK (price_stroops > 0),
    asset         text        NOT NULL CHECK (asset IN ('USDC', 'XLM')),
    period_days   integer     NOT NULL DEFAULT 30 CHECK (period_days BETWEEN 1 AND 366),
    permissions   text[]      NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (creator_id, level),
    -- Lets subscriptions prove, by foreign key, that their tier is their creator's.
    UNIQUE (id, creator_id)
);

-- A fan's subscription to a creator at a tier. "Active" means active now: status 'active' and
-- current_period_end in the future. A subscription whose period ran out without renewal opens
-- nothing, whatever its status says.
CREATE TABLE subscriptions (
    id                 uuid        PRIMARY KEY,
    fan_id             uuid        NOT NULL REFERENCES users (id),
    creator_id         uuid        NOT NULL REFERENCES creators (id),
    tier_id            uuid        NOT NULL,
    status             text        NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'cancelled')),
    started_at         timestamptz NOT NULL,
    current_period_end timestamptz NOT NULL,
    cancelled_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (tier_id, creator_id) REFERENCES subscription_tiers (id, creator_id),
    CHECK (current_period_end > started_at),
    CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
    CHECK (fan_id <> creator_id),
    -- Lets revenue events prove, by foreign key, that a payment's subscription is the creator's.
    UNIQUE (id, creator_id)
);

-- One live subscription per fan and creator; a cancelled one may be followed by a new one.
CREATE UNIQUE INDEX subscriptions_one_live ON subscriptions (fan_id, creator_id) WHERE status = 'active';
CREATE INDEX subscriptions_creator ON subscriptions (creator_id, started_at);
CREATE INDEX subscriptions_fan ON subscriptions (fan_id);

-- The level of the fan's subscription to the creator that is active at the given time, or NULL.
-- The one definition of "active" that every gate uses: status active AND the current period
-- not yet over.
CREATE FUNCTION active_subscription_level(p_fan uuid, p_creator uuid, p_at timestamptz)
RETURNS smallint LANGUAGE sql STABLE AS $$
    SELECT t.level
      FROM subscriptions s
      JOIN subscription_tiers t ON t.id = s.tier_id
     WHERE s.fan_id = p_fan AND s.creator_id = p_creator
       AND s.status = 'active' AND s.current_period_end > p_at
$$;

-- +goose Down
DROP FUNCTION active_subscription_level;
DROP TABLE subscriptions;
DROP TABLE subscription_tiers;
DROP VIEW fans;
DROP TABLE creators;
DROP TABLE users;
