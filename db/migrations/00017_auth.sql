-- Sign-in, revocable sessions and the right to be forgotten (issue 18).
--
-- credentials: a user's email and Argon2id password hash (PHC string: algorithm, version,
-- parameters, salt and hash together, so parameters can be raised and old hashes rehashed on
-- the next sign-in). auth_sessions: one per sign-in; access tokens carry its id (sid) and stop
-- working when it is revoked. refresh_tokens: opaque, stored as SHA-256 only, rotated on every
-- use; presenting a rotated one revokes the whole session (theft detection).
-- Every revocation and every role change is announced on the auth_events channel, so each API
-- instance keeps its in-memory revocation set without a database round trip per request.

-- +goose Up
CREATE TABLE credentials (
    user_id       uuid        PRIMARY KEY REFERENCES users (id),
    -- Stored as given (trimmed); looked up case-insensitively.
    email         text        NOT NULL CHECK (char_length(email) BETWEEN 3 AND 254),
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX credentials_email ON credentials (lower(email));

CREATE TABLE auth_sessions (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz NOT NULL,
    -- When the session's refresh tokens stop working, however often they are rotated.
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text,
    ip            text        NOT NULL DEFAULT '',
    user_agent    text        NOT NULL DEFAULT '',
    CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL))
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id, created_at);
CREATE INDEX auth_sessions_revoked ON auth_sessions (revoked_at) WHERE revoked_at IS NOT NULL;

CREATE TABLE refresh_tokens (
    -- SHA-256 of the opaque token: a database read does not yield a usable token.
    token_hash bytea       PRIMARY KEY CHECK (length(token_hash) = 32),
    session_id uuid        NOT NULL REFERENCES auth_sessions (id),
    created_at timestamptz NOT NULL,
    -- Set when the token was exchanged for a new one; presenting it again is reuse.
    rotated_at timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- When a user's role last changed (tokens carrying the old role are refused from then on),
-- and when the user was erased.
ALTER TABLE users ADD COLUMN role_changed_at timestamptz;
ALTER TABLE users ADD COLUMN erased_at timestamptz;

-- Erasure results: one row per erased user, ids and times only.
CREATE TABLE erasures (
    user_id      uuid        PRIMARY KEY,
    requested_at timestamptz NOT NULL,
    completed_at timestamptz,
    -- What each step changed (row counts), as JSON.
    result       jsonb       NOT NULL DEFAULT '{}'
);

-- +goose StatementBegin
CREATE FUNCTION auth_notify_session() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.revoked_at IS NOT NULL AND OLD.revoked_at IS NULL THEN
        PERFORM pg_notify('auth_events', json_build_object('kind', 'session_revoked',
            'session_id', NEW.id, 'user_id', NEW.user_id, 'at', NEW.revoked_at)::text);
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER auth_sessions_revoked AFTER UPDATE OF revoked_at ON auth_sessions
    FOR EACH ROW EXECUTE FUNCTION auth_notify_session();

-- +goose StatementBegin
CREATE FUNCTION auth_user_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.role IS DISTINCT FROM OLD.role THEN
        NEW.role_changed_at := now();
    END IF;
    IF NEW.role IS DISTINCT FROM OLD.role OR (NEW.erased_at IS NOT NULL AND OLD.erased_at IS NULL) THEN
        PERFORM pg_notify('auth_events', json_build_object('kind', 'user_changed',
            'user_id', NEW.id, 'role', NEW.role, 'erased', NEW.erased_at IS NOT NULL, 'at', now())::text);
    END IF;
    RETURN NEW;
END $$;
-- +goose StatementEnd
CREATE TRIGGER users_auth_changed BEFORE UPDATE OF role, erased_at ON users
    FOR EACH ROW EXECUTE FUNCTION auth_user_changed();

-- The runtime role (migration 00010, db/bootstrap.sql) gets these tables by default
-- privileges; said here too, so this file states what the API and workers may do. The
-- erasures record is never deleted by the application: it is the proof a request was honoured.
GRANT SELECT, INSERT, UPDATE, DELETE ON credentials, auth_sessions, refresh_tokens TO orchestrator_app;
GRANT SELECT, INSERT, UPDATE ON erasures TO orchestrator_app;
REVOKE DELETE, TRUNCATE ON erasures FROM orchestrator_app;
GRANT SELECT ON credentials, auth_sessions, refresh_tokens, erasures TO orchestrator_backup;

-- +goose Down
DROP TRIGGER users_auth_changed ON users;
DROP FUNCTION auth_user_changed;
DROP TRIGGER auth_sessions_revoked ON auth_sessions;
DROP FUNCTION auth_notify_session;
DROP TABLE erasures;
ALTER TABLE users DROP COLUMN erased_at;
ALTER TABLE users DROP COLUMN role_changed_at;
DROP TABLE refresh_tokens;
DROP TABLE auth_sessions;
DROP TABLE credentials;
