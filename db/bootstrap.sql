-- orchestrator db bootstrap: the database identities and their privileges.
--
-- Run by an administrator (superuser, or CREATEROLE with the right to grant these roles),
-- connected to the application's database, before `orchestrator migrate up`. Idempotent:
-- run it again after an upgrade, for a new database on the same server, or to repair
-- privileges. It sets no password (the CLI sets those from the URLs it is given, as
-- SCRAM verifiers; a DBA running this file uses `\password ROLE` in psql).
--
--   orchestrator_owner          LOGIN   owns the database, its schemas and tables; migrates
--   orchestrator_app            LOGIN   runtime of API and workers: DML on schema public only
--   orchestrator_treasury       NOLOGIN the treasury's rights on schema treasury
--   orchestrator_treasury_login LOGIN   member of orchestrator_treasury, nothing else
--   orchestrator_backup         LOGIN   reads everything (pg_dump), writes nothing

-- Bootstraps of the same database take turns (roles are cluster-wide: bootstraps of other
-- databases on the server may still run at the same moment; every step tolerates that).
SELECT pg_advisory_xact_lock(7246616373950617453);

-- +bootstrap roles
DO $$
DECLARE
    r record;
BEGIN
    FOR r IN SELECT * FROM (VALUES
        ('orchestrator_owner', true), ('orchestrator_app', true),
        ('orchestrator_treasury', false), ('orchestrator_treasury_login', true),
        ('orchestrator_backup', true)) AS v(name, login)
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s', r.name, CASE WHEN r.login THEN 'LOGIN' ELSE 'NOLOGIN' END);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL; -- a bootstrap of another database created it at the same moment
            END;
        END IF;
        -- No role of the orchestrator may bypass what the privileges below say.
        IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name AND (rolsuper OR rolcreaterole
                   OR rolcreatedb OR rolreplication OR rolbypassrls OR rolcanlogin <> r.login
                   OR NOT rolinherit)) THEN
            EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEROLE NOCREATEDB NOREPLICATION NOBYPASSRLS INHERIT %s',
                r.name, CASE WHEN r.login THEN 'LOGIN' ELSE 'NOLOGIN' END);
        END IF;
    END LOOP;
END
$$;

-- +bootstrap memberships
DO $$
DECLARE
    m record;
BEGIN
    -- The treasury login holds the treasury's rights. The owner is a member so that it can
    -- create and own what the treasury's migrations make.
    FOR m IN SELECT * FROM (VALUES
        ('orchestrator_treasury', 'orchestrator_treasury_login'),
        ('orchestrator_treasury', 'orchestrator_owner')) AS v(role, member)
    LOOP
        IF NOT pg_has_role(m.member, m.role, 'MEMBER') THEN
            BEGIN
                EXECUTE format('GRANT %I TO %I', m.role, m.member);
            EXCEPTION WHEN unique_violation THEN
                NULL;
            END;
        END IF;
    END LOOP;
    -- No other path into the treasury or the owner: the runtime and backup roles are members
    -- of nothing of ours (an old install made the application user a treasury member).
    FOR m IN SELECT g.rolname AS role, u.rolname AS member
             FROM pg_auth_members am
             JOIN pg_roles g ON g.oid = am.roleid
             JOIN pg_roles u ON u.oid = am.member
             WHERE u.rolname IN ('orchestrator_app', 'orchestrator_backup')
               AND g.rolname LIKE 'orchestrator%'
    LOOP
        EXECUTE format('REVOKE %I FROM %I', m.role, m.member);
    END LOOP;
END
$$;

-- +bootstrap database
DO $$
BEGIN
    EXECUTE format('ALTER DATABASE %I OWNER TO orchestrator_owner', current_database());
    EXECUTE format('REVOKE ALL ON DATABASE %I FROM PUBLIC', current_database());
    EXECUTE format('GRANT CONNECT, TEMPORARY ON DATABASE %I TO orchestrator_app', current_database());
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO orchestrator_treasury_login, orchestrator_backup', current_database());
END
$$;
ALTER SCHEMA public OWNER TO orchestrator_owner;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
GRANT USAGE ON SCHEMA public TO orchestrator_app, orchestrator_backup;

-- What later migrations create gets its privileges without a GRANT of its own.
ALTER DEFAULT PRIVILEGES FOR ROLE orchestrator_owner IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO orchestrator_app;
ALTER DEFAULT PRIVILEGES FOR ROLE orchestrator_owner IN SCHEMA public
    GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO orchestrator_app;
ALTER DEFAULT PRIVILEGES FOR ROLE orchestrator_owner IN SCHEMA public
    GRANT SELECT ON TABLES TO orchestrator_backup;
ALTER DEFAULT PRIVILEGES FOR ROLE orchestrator_owner IN SCHEMA public
    GRANT SELECT ON SEQUENCES TO orchestrator_backup;
-- Schema treasury's defaults are set by migration 00010, which runs as the owner once the
-- schema exists.
