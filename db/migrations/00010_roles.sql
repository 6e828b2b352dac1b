-- The three database identities (see db/bootstrap.sql and README "Production"): the owner
-- (this migration's user) owns every schema and table, the runtime role orchestrator_app has
-- DML on schema public and nothing on schema treasury, and orchestrator_treasury (through
-- its login orchestrator_treasury_login) has only what the treasury code does.
--
-- Before this migration schema treasury and its tables belonged to orchestrator_treasury,
-- and the application user was a member: every query of the API could UPDATE the fund.
-- Owning the tables also let the treasury disable the event log's append-only trigger.
-- Now the owner owns them and the treasury holds plain privileges, which cannot disable a
-- trigger. The roles themselves, memberships and passwords are the bootstrap's: this file
-- creates no role and holds no password.

-- +goose Up
-- +goose StatementBegin
DO $$
BEGIN
    IF (SELECT count(*) FROM pg_roles WHERE rolname IN ('orchestrator_owner', 'orchestrator_app',
            'orchestrator_treasury', 'orchestrator_treasury_login', 'orchestrator_backup')) < 5 THEN
        RAISE EXCEPTION 'the database roles are missing: run `orchestrator db bootstrap` with an administrator URL first (README "Upgrading an existing install")';
    END IF;
    IF current_user <> 'orchestrator_owner' THEN
        RAISE EXCEPTION 'migrations must run as orchestrator_owner, not %: set MIGRATE_DATABASE_URL to the owner''s URL (an existing install first runs `orchestrator db bootstrap --reassign-from %` as an administrator; README "Upgrading an existing install")', current_user, current_user;
    END IF;
END
$$;
-- +goose StatementEnd

ALTER SCHEMA treasury OWNER TO orchestrator_owner;
ALTER TABLE treasury.balances OWNER TO orchestrator_owner;
ALTER TABLE treasury.yield_events OWNER TO orchestrator_owner;
ALTER TABLE treasury.bailouts OWNER TO orchestrator_owner;
ALTER TABLE treasury.events OWNER TO orchestrator_owner;
ALTER FUNCTION treasury.refuse_change() OWNER TO orchestrator_owner;

-- The treasury: exactly what db/treasury.go does.
REVOKE ALL ON SCHEMA treasury FROM PUBLIC;
GRANT USAGE ON SCHEMA treasury TO orchestrator_treasury, orchestrator_backup;
GRANT SELECT, UPDATE ON treasury.balances TO orchestrator_treasury;
GRANT SELECT, INSERT ON treasury.yield_events TO orchestrator_treasury;
GRANT SELECT, INSERT, UPDATE ON treasury.bailouts TO orchestrator_treasury;
GRANT SELECT, INSERT ON treasury.events TO orchestrator_treasury;
GRANT SELECT ON ALL TABLES IN SCHEMA treasury TO orchestrator_backup;
ALTER DEFAULT PRIVILEGES IN SCHEMA treasury GRANT SELECT, INSERT, UPDATE ON TABLES TO orchestrator_treasury;
ALTER DEFAULT PRIVILEGES IN SCHEMA treasury GRANT USAGE, SELECT ON SEQUENCES TO orchestrator_treasury;
ALTER DEFAULT PRIVILEGES IN SCHEMA treasury GRANT SELECT ON TABLES TO orchestrator_backup;
ALTER DEFAULT PRIVILEGES IN SCHEMA treasury GRANT SELECT ON SEQUENCES TO orchestrator_backup;

-- The application: DML on what exists in schema public (later tables get it by default).
GRANT USAGE ON SCHEMA public TO orchestrator_app, orchestrator_backup;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO orchestrator_app;
GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO orchestrator_app;
GRANT SELECT ON ALL TABLES IN SCHEMA public TO orchestrator_backup;
GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO orchestrator_backup;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO orchestrator_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO orchestrator_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO orchestrator_backup;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON SEQUENCES TO orchestrator_backup;

-- The migrations' own bookkeeping is the owner's alone.
-- +goose StatementBegin
DO $$
DECLARE
    seq text;
BEGIN
    IF to_regclass('public.goose_db_version') IS NOT NULL THEN
        REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.goose_db_version FROM orchestrator_app;
        seq := pg_get_serial_sequence('public.goose_db_version', 'id');
        IF seq IS NOT NULL THEN
            EXECUTE format('REVOKE USAGE, UPDATE ON SEQUENCE %s FROM orchestrator_app', seq);
        END IF;
    END IF;
END
$$;
-- +goose StatementEnd

-- +goose Down
ALTER DEFAULT PRIVILEGES IN SCHEMA treasury REVOKE ALL ON TABLES FROM orchestrator_treasury, orchestrator_backup;
ALTER DEFAULT PRIVILEGES IN SCHEMA treasury REVOKE ALL ON SEQUENCES FROM orchestrator_treasury, orchestrator_backup;
REVOKE ALL ON ALL TABLES IN SCHEMA treasury FROM orchestrator_treasury, orchestrator_backup;
REVOKE ALL ON SCHEMA treasury FROM orchestrator_backup;
ALTER SCHEMA treasury OWNER TO orchestrator_treasury;
ALTER FUNCTION treasury.refuse_change() OWNER TO orchestrator_treasury;
ALTER TABLE treasury.events OWNER TO orchestrator_treasury;
ALTER TABLE treasury.bailouts OWNER TO orchestrator_treasury;
ALTER TABLE treasury.yield_events OWNER TO orchestrator_treasury;
ALTER TABLE treasury.balances OWNER TO orchestrator_treasury;
