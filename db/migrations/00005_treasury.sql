-- The insurance treasury: fund balances per asset (never negative, pending bailouts reserve
-- their amount), yield events (idempotent by id), bailouts, and an append-only hash-chained
-- event log. Everything lives in schema treasury, owned by the role orchestrator_treasury;
-- PUBLIC has no rights on it, and the treasury code writes only after SET LOCAL ROLE (or
-- through TREASURY_DATABASE_URL logged in as that role).

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orchestrator_treasury') THEN
        CREATE ROLE orchestrator_treasury NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL; -- another database on this server created it at the same moment
END
$$;
-- +goose StatementEnd
-- +goose StatementBegin
DO $$
BEGIN
    -- the migrating (application) user may SET ROLE to the treasury role
    EXECUTE format('GRANT orchestrator_treasury TO %I', current_user);
EXCEPTION WHEN OTHERS THEN
    NULL; -- already a member, or a superuser (who needs no membership)
END
$$;
-- +goose StatementEnd

CREATE SCHEMA treasury AUTHORIZATION orchestrator_treasury;
REVOKE ALL ON SCHEMA treasury FROM PUBLIC;

CREATE TABLE treasury.balances (
    asset            text        PRIMARY KEY CHECK (asset IN ('USDC', 'XLM')),
    balance_stroops  bigint      NOT NULL DEFAULT 0 CHECK (balance_stroops >= 0),
    reserved_stroops bigint      NOT NULL DEFAULT 0 CHECK (reserved_stroops >= 0),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (reserved_stroops <= balance_stroops)
);
INSERT INTO treasury.balances (asset) VALUES ('USDC'), ('XLM');

CREATE TABLE treasury.yield_events (
    id            uuid        PRIMARY KEY,
    asset         text        NOT NULL CHECK (asset IN ('USDC', 'XLM')),
    gross_stroops bigint      NOT NULL CHECK (gross_stroops > 0),
    fee_stroops   bigint      NOT NULL CHECK (fee_stroops >= 0),
    net_stroops   bigint      NOT NULL CHECK (net_stroops >= 0),
    occurred_at   timestamptz NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    CHECK (fee_stroops + net_stroops = gross_stroops)
);

CREATE TABLE treasury.bailouts (
    id             uuid        PRIMARY KEY,
    workflow_id    text        NOT NULL UNIQUE,
    asset          text        NOT NULL CHECK (asset IN ('USDC', 'XLM')),
    amount_stroops bigint      NOT NULL CHECK (amount_stroops > 0),
    destination    text        NOT NULL,
    reason         text        NOT NULL,
    requested_by   uuid,
    requested_at   timestamptz NOT NULL,
    unlock_at      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    state          text        NOT NULL DEFAULT 'pending'
                               CHECK (state IN ('pending', 'cancelled', 'expired', 'executed')),
    tx_hash        text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK (state <> 'executed' OR tx_hash IS NOT NULL)
);

CREATE TABLE treasury.events (
    seq         bigint      PRIMARY KEY CHECK (seq > 0),
    type        text        NOT NULL CHECK (type IN ('InsuranceFundCapitalized', 'BailoutRequested',
                            'BailoutApproved', 'BailoutCancelled', 'BailoutExpired', 'BailoutExecuted')),
    bailout_id  uuid,
    payload     text        NOT NULL,
    occurred_at timestamptz NOT NULL,
    prev_hash   text        NOT NULL CHECK (prev_hash ~ '^[0-9a-f]{64}$'),
    hash        text        NOT NULL UNIQUE CHECK (hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX events_bailout ON treasury.events (bailout_id, seq);

-- +goose StatementBegin
CREATE FUNCTION treasury.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'treasury.events is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON treasury.events
    FOR EACH ROW EXECUTE FUNCTION treasury.refuse_change();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON treasury.events
    FOR EACH STATEMENT EXECUTE FUNCTION treasury.refuse_change();

ALTER TABLE treasury.balances OWNER TO orchestrator_treasury;
ALTER TABLE treasury.yield_events OWNER TO orchestrator_treasury;
ALTER TABLE treasury.bailouts OWNER TO orchestrator_treasury;
ALTER TABLE treasury.events OWNER TO orchestrator_treasury;
ALTER FUNCTION treasury.refuse_change() OWNER TO orchestrator_treasury;

-- +goose Down
DROP SCHEMA treasury CASCADE;
