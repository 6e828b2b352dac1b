-- Rate limit counters shared by every API instance: hits per bucket (e.g. comments by one
-- user) per fixed window. A sliding estimate weighs the previous window in, so a burst at a
-- window boundary cannot double the limit.

-- +goose Up
CREATE TABLE rate_limits (
    bucket       text        NOT NULL,
    window_start timestamptz NOT NULL,
    hits         integer     NOT NULL,
    PRIMARY KEY (bucket, window_start)
);

-- +goose Down
DROP TABLE rate_limits;
