-- Backups and fire drills. The catalog mirrors what is in S3: a backup is complete only when
-- its manifest exists there, and status 'complete' is written after the manifest. A drill
-- records its outcome and the measured recovery time (RTO) against its target.

-- +goose Up
CREATE TABLE backups (
    id             text        PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('nightly', 'manual')),
    status         text        NOT NULL CHECK (status IN ('running', 'complete', 'failed', 'pruned')),
    database_name  text        NOT NULL DEFAULT '',
    server_version text        NOT NULL DEFAULT '',
    object_key     text        NOT NULL,
    started_at     timestamptz NOT NULL,
    finished_at    timestamptz,
    dump_bytes     bigint      NOT NULL DEFAULT 0 CHECK (dump_bytes >= 0),
    stored_bytes   bigint      NOT NULL DEFAULT 0 CHECK (stored_bytes >= 0),
    sha256         text        NOT NULL DEFAULT '',
    tables         integer     NOT NULL DEFAULT 0,
    verified_at    timestamptz,
    error          text        NOT NULL DEFAULT ''
);
CREATE INDEX backups_started ON backups (started_at DESC);

CREATE TABLE drills (
    id                 text        PRIMARY KEY,
    backup_id          text        NOT NULL DEFAULT '',
    started_at         timestamptz NOT NULL,
    finished_at        timestamptz,
    outcome            text        NOT NULL DEFAULT 'running'
                                   CHECK (outcome IN ('running', 'pass', 'fail', 'rto_exceeded')),
    rto_seconds        integer     NOT NULL DEFAULT 0,
    rto_target_seconds integer     NOT NULL DEFAULT 0,
    detail             text        NOT NULL DEFAULT '',
    report             jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX drills_started ON drills (started_at DESC);

-- +goose Down
DROP TABLE drills;
DROP TABLE backups;
