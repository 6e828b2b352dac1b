-- Every attempt of a backup. A retry reuses the backup's id (and its row in backups), so
-- without this table an attempt that failed, or whose worker was killed mid-upload, vanished
-- from the catalog as soon as the retry completed. An attempt still 'running' when the next
-- one starts was cut off (its worker died) and becomes 'interrupted'.

-- +goose Up
CREATE TABLE backup_attempts (
    backup_id   text        NOT NULL REFERENCES backups (id) ON DELETE CASCADE,
    attempt     integer     NOT NULL CHECK (attempt > 0),
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    outcome     text        NOT NULL DEFAULT 'running'
                            CHECK (outcome IN ('running', 'complete', 'failed', 'interrupted')),
    error       text        NOT NULL DEFAULT '',
    PRIMARY KEY (backup_id, attempt)
);

-- What the catalog knew so far: the last attempt of each backup.
INSERT INTO backup_attempts (backup_id, attempt, started_at, finished_at, outcome, error)
SELECT id, 1, started_at, finished_at,
       CASE WHEN status = 'running' THEN 'running' WHEN status = 'failed' THEN 'failed' ELSE 'complete' END,
       error
FROM backups;

-- +goose Down
DROP TABLE backup_attempts;
