-- Bailouts on the real network (issue 13): a pool of channel accounts (each pending bailout's
-- payment has its own channel as transaction source, so its sequence number is its own), the
-- API's record of a request before any workflow runs (state 'requested': the workflow's
-- reservation must match it), a bailout's envelope (channel, sequence, hash), and the outcome
-- 'failed' with its BailoutFailed event (the payment was refused or failed on chain).

-- +goose Up
ALTER TABLE treasury.bailouts DROP CONSTRAINT bailouts_state_check;
ALTER TABLE treasury.bailouts ADD CONSTRAINT bailouts_state_check
    CHECK (state IN ('requested', 'pending', 'rejected', 'cancelled', 'expired', 'executed', 'failed'));
ALTER TABLE treasury.bailouts
    ADD COLUMN channel      text,
    ADD COLUMN tx_seq       bigint,
    ADD COLUMN result_codes text;

ALTER TABLE treasury.events DROP CONSTRAINT events_type_check;
ALTER TABLE treasury.events ADD CONSTRAINT events_type_check
    CHECK (type IN ('InsuranceFundCapitalized', 'BailoutRequested', 'BailoutApproved', 'BailoutCancelled',
                    'BailoutExpired', 'BailoutExecuted', 'BailoutFailed'));

-- A channel is free when bailout_id is NULL; allocation takes one FOR UPDATE SKIP LOCKED.
CREATE TABLE treasury.channels (
    account      text        PRIMARY KEY CHECK (account ~ '^G[A-Z2-7]{55}$'),
    bailout_id   uuid        UNIQUE REFERENCES treasury.bailouts (id),
    allocated_at timestamptz,
    added_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((bailout_id IS NULL) = (allocated_at IS NULL))
);
-- Owned by orchestrator_owner (migration 00010); the treasury's default privileges
-- (SELECT, INSERT, UPDATE) are what db/treasury_channels.go does.

-- +goose Down
DROP TABLE treasury.channels;
ALTER TABLE treasury.events DROP CONSTRAINT events_type_check;
ALTER TABLE treasury.events ADD CONSTRAINT events_type_check
    CHECK (type IN ('InsuranceFundCapitalized', 'BailoutRequested', 'BailoutApproved', 'BailoutCancelled',
                    'BailoutExpired', 'BailoutExecuted'));
ALTER TABLE treasury.bailouts DROP COLUMN channel, DROP COLUMN tx_seq, DROP COLUMN result_codes;
ALTER TABLE treasury.bailouts DROP CONSTRAINT bailouts_state_check;
ALTER TABLE treasury.bailouts ADD CONSTRAINT bailouts_state_check
    CHECK (state IN ('pending', 'cancelled', 'expired', 'executed'));
