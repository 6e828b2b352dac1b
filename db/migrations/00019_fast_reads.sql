-- Versions of comment pages (issue 15, fast reads): every change that can alter what a page of
-- comments shows moves its creator's version to a new value of a sequence, in the same
-- transaction as the change. An API instance keeps pages it has read in memory and, per request,
-- reads only the reader's gate and the versions (one small statement): an equal version proves
-- the kept page is what the full read would return now, so a listing stays exact (read your own
-- writes, on every instance) without reading the threads again. Author names live on users: a
-- change of any display name moves the version of creator_id 00000000-0000-0000-0000-000000000000.
--
-- And active_subscription_level, every gate's rule, in PL/pgSQL: the rule is unchanged, but a
-- LANGUAGE sql function that cannot be inlined (its body has a FROM) is planned again on every
-- statement that calls it, which cost more than the rest of a send or a listing's gate;
-- PL/pgSQL keeps its plan for the session.
-- Idempotent (IF NOT EXISTS / OR REPLACE), like 00018.

-- +goose Up
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION active_subscription_level(p_fan uuid, p_creator uuid, p_at timestamptz)
RETURNS smallint LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (SELECT t.level
              FROM subscriptions s
              JOIN subscription_tiers t ON t.id = s.tier_id
             WHERE s.fan_id = p_fan AND s.creator_id = p_creator
               AND s.status = 'active' AND s.current_period_end > p_at);
END $$;
-- +goose StatementEnd

CREATE SEQUENCE IF NOT EXISTS comment_page_version_seq;

CREATE TABLE IF NOT EXISTS comment_page_versions (
    -- A creator's page, or the nil uuid for "some author's display name changed".
    creator_id uuid   PRIMARY KEY,
    version    bigint NOT NULL
);

-- One statement's changed pages, each moved once, in creator_id order (two statements touching
-- the same pages lock their rows in the same order, so they cannot deadlock on them).
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION comment_page_versions_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' THEN
        UPDATE comment_page_versions SET version = nextval('comment_page_version_seq');
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        INSERT INTO comment_page_versions AS v (creator_id, version)
        SELECT creator_id, nextval('comment_page_version_seq')
          FROM (SELECT DISTINCT creator_id FROM old_rows ORDER BY creator_id) c
        ON CONFLICT (creator_id) DO UPDATE SET version = excluded.version;
    ELSE
        INSERT INTO comment_page_versions AS v (creator_id, version)
        SELECT creator_id, nextval('comment_page_version_seq')
          FROM (SELECT DISTINCT creator_id FROM new_rows ORDER BY creator_id) c
        ON CONFLICT (creator_id) DO UPDATE SET version = excluded.version;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd

-- Room on each page of comments for the new row versions of like-count updates, so they stay
-- heap-only (like_count is in no index) instead of adding index entries per like.
ALTER TABLE comments SET (fillfactor = 90);

-- Likes change comments.like_count (trigger of 00015), so they are covered by the UPDATE trigger.
DROP TRIGGER IF EXISTS comment_page_versions_ins ON comments;
CREATE TRIGGER comment_page_versions_ins AFTER INSERT ON comments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION comment_page_versions_bump();
DROP TRIGGER IF EXISTS comment_page_versions_upd ON comments;
CREATE TRIGGER comment_page_versions_upd AFTER UPDATE ON comments
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION comment_page_versions_bump();
DROP TRIGGER IF EXISTS comment_page_versions_del ON comments;
CREATE TRIGGER comment_page_versions_del AFTER DELETE ON comments
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION comment_page_versions_bump();
DROP TRIGGER IF EXISTS comment_page_versions_trunc ON comments;
CREATE TRIGGER comment_page_versions_trunc AFTER TRUNCATE ON comments
    FOR EACH STATEMENT EXECUTE FUNCTION comment_page_versions_bump();

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION comment_page_names_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO comment_page_versions (creator_id, version)
    VALUES ('00000000-0000-0000-0000-000000000000', nextval('comment_page_version_seq'))
    ON CONFLICT (creator_id) DO UPDATE SET version = excluded.version;
    RETURN NULL;
END $$;
-- +goose StatementEnd

DROP TRIGGER IF EXISTS comment_page_names ON users;
CREATE TRIGGER comment_page_names AFTER UPDATE OF display_name ON users
    FOR EACH ROW WHEN (OLD.display_name IS DISTINCT FROM NEW.display_name)
    EXECUTE FUNCTION comment_page_names_bump();

-- +goose Down
ALTER TABLE comments RESET (fillfactor);
DROP TRIGGER IF EXISTS comment_page_names ON users;
DROP FUNCTION IF EXISTS comment_page_names_bump();
DROP TRIGGER IF EXISTS comment_page_versions_trunc ON comments;
DROP TRIGGER IF EXISTS comment_page_versions_del ON comments;
DROP TRIGGER IF EXISTS comment_page_versions_upd ON comments;
DROP TRIGGER IF EXISTS comment_page_versions_ins ON comments;
DROP FUNCTION IF EXISTS comment_page_versions_bump();
DROP TABLE IF EXISTS comment_page_versions;
DROP SEQUENCE IF EXISTS comment_page_version_seq;
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION active_subscription_level(p_fan uuid, p_creator uuid, p_at timestamptz)
RETURNS smallint LANGUAGE sql STABLE AS $$
    SELECT t.level
      FROM subscriptions s
      JOIN subscription_tiers t ON t.id = s.tier_id
     WHERE s.fan_id = p_fan AND s.creator_id = p_creator
       AND s.status = 'active' AND s.current_period_end > p_at
$$;
-- +goose StatementEnd
