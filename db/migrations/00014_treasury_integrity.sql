-- The treasury's integrity checks (issue 13): the daily reconciliation with the chain appends
-- ReconcileDrift when the books and the network disagree; the chain's head is anchored on
-- Stellar (treasury.anchors is this database's note of what was published: the network, not
-- this table, is what `treasury verify` trusts); every bailout event notifies channel
-- treasury_head so a worker anchors the new head at once.

-- +goose Up
ALTER TABLE treasury.events DROP CONSTRAINT IF EXISTS events_type_check;
ALTER TABLE treasury.events ADD CONSTRAINT events_type_check CHECK (type IN ('InsuranceFundCapitalized',
    'BailoutRequested', 'BailoutApproved', 'BailoutCancelled', 'BailoutExpired', 'BailoutExecuted',
    'BailoutFailed', 'ReconcileDrift'));

CREATE TABLE treasury.anchors (
    tx_hash     text        PRIMARY KEY CHECK (tx_hash ~ '^[0-9a-f]{64}$'),
    seq         bigint      NOT NULL CHECK (seq > 0),
    head_hash   text        NOT NULL CHECK (head_hash ~ '^[0-9a-f]{64}$'),
    anchored_at timestamptz NOT NULL
);
CREATE INDEX anchors_seq ON treasury.anchors (seq DESC);
-- The owner (migration 00010) owns it; the treasury notes what it published and never rewrites it.
REVOKE UPDATE ON treasury.anchors FROM orchestrator_treasury;

-- +goose StatementBegin
CREATE FUNCTION treasury.notify_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('treasury_head', NEW.seq::text);
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER events_notify_head AFTER INSERT ON treasury.events
    FOR EACH ROW WHEN (NEW.bailout_id IS NOT NULL) EXECUTE FUNCTION treasury.notify_head();

-- +goose Down
DROP TRIGGER events_notify_head ON treasury.events;
DROP FUNCTION treasury.notify_head();
DROP TABLE treasury.anchors;
ALTER TABLE treasury.events DROP CONSTRAINT events_type_check;
ALTER TABLE treasury.events ADD CONSTRAINT events_type_check CHECK (type IN ('InsuranceFundCapitalized',
    'BailoutRequested', 'BailoutApproved', 'BailoutCancelled', 'BailoutExpired', 'BailoutExecuted'));
