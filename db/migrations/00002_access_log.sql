-- Who did what sensitive thing, when and from where: comment and message writes and deletes,
-- bailout actions, and every failed authentication. Append-only for the application.

-- +goose Up
CREATE TABLE access_log (
    id         bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    user_id    uuid,
    role       text,
    action     text        NOT NULL,
    target     text        NOT NULL DEFAULT '',
    detail     text        NOT NULL DEFAULT '',
    ip         text        NOT NULL DEFAULT '',
    user_agent text        NOT NULL DEFAULT ''
);
CREATE INDEX access_log_user ON access_log (user_id, at);
CREATE INDEX access_log_action ON access_log (action, at);

-- +goose Down
DROP TABLE access_log;
