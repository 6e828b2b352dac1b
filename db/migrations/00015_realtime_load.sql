-- The app API at production load (issue 15): like counts kept on the comment, one-statement
-- rate limits, the aggregated record of failed authentications, and the leases that let any
-- API instance remove the WebSocket sessions of an instance that died.

-- +goose Up
-- How many likes a comment has, kept by a trigger on comment_likes so a listing reads it
-- instead of counting. Whether the reader liked it stays an exact primary-key lookup.
ALTER TABLE comments ADD COLUMN like_count integer NOT NULL DEFAULT 0 CHECK (like_count >= 0);
UPDATE comments c SET like_count = l.n
  FROM (SELECT comment_id, count(*) AS n FROM comment_likes GROUP BY comment_id) l
 WHERE l.comment_id = c.id;

-- +goose StatementBegin
CREATE FUNCTION comment_likes_count() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE comments SET like_count = like_count + 1 WHERE id = NEW.comment_id;
    ELSE
        UPDATE comments SET like_count = like_count - 1 WHERE id = OLD.comment_id;
    END IF;
    RETURN NULL;
END $$;
-- +goose StatementEnd
CREATE TRIGGER comment_likes_count AFTER INSERT OR DELETE ON comment_likes
    FOR EACH ROW EXECUTE FUNCTION comment_likes_count();

-- One hit of a rate limit in one call (db.TakeRateLimit, and inside the send statement of a
-- direct message): the sliding-window estimate of 00004, the previous window's hits weighted
-- by p_overlap. A denied hit is not counted. Now and then, windows older than a day go.
-- +goose StatementBegin
CREATE FUNCTION take_rate_limit(p_bucket text, p_cur timestamptz, p_prev timestamptz, p_overlap float8, p_max integer,
                                OUT allowed boolean, OUT prev_hits integer, OUT cur_hits integer)
LANGUAGE plpgsql AS $$
BEGIN
    SELECT r.hits INTO prev_hits FROM rate_limits r WHERE r.bucket = p_bucket AND r.window_start = p_prev;
    prev_hits := coalesce(prev_hits, 0);
    INSERT INTO rate_limits AS r (bucket, window_start, hits)
    SELECT p_bucket, p_cur, 1 WHERE prev_hits * p_overlap + 1 <= p_max
    ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1
     WHERE r.hits + 1 + prev_hits * p_overlap <= p_max
    RETURNING r.hits INTO cur_hits;
    allowed := FOUND;
    IF NOT allowed THEN
        SELECT r.hits INTO cur_hits FROM rate_limits r WHERE r.bucket = p_bucket AND r.window_start = p_cur;
        cur_hits := coalesce(cur_hits, 0);
    ELSIF random() < 1.0 / 256 THEN
        DELETE FROM rate_limits WHERE window_start < p_cur - interval '1 day';
    END IF;
END $$;
-- +goose StatementEnd

-- Failed authentications per source (client address) and minute. Every failure is counted
-- here; only the first few of a source's minute also get their own access_log row, so one
-- source cannot write rows without bound.
CREATE TABLE auth_failures (
    source       text        NOT NULL,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL,
    last_at      timestamptz NOT NULL,
    PRIMARY KEY (source, window_start)
);
CREATE INDEX auth_failures_window ON auth_failures (window_start);

-- API instances that hold WebSockets, each with a lease renewed by a heartbeat. Sessions of an
-- instance whose lease lapsed are removed by any live instance; presence counts only
-- sessions of instances whose lease holds, so a restored database shows nobody online.
CREATE TABLE ws_instances (
    id           uuid        PRIMARY KEY,
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ws_sessions_instance ON ws_sessions (instance_id);

-- +goose Down
DROP INDEX ws_sessions_instance;
DROP TABLE ws_instances;
DROP TABLE auth_failures;
DROP FUNCTION take_rate_limit(text, timestamptz, timestamptz, float8, integer);
DROP TRIGGER comment_likes_count ON comment_likes;
DROP FUNCTION comment_likes_count();
ALTER TABLE comments DROP COLUMN like_count;
