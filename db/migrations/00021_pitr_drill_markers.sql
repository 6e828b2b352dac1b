-- Point-in-time recovery drills (issue 17): a PITR drill writes two marker rows into the
-- production database a moment apart, restores the physical backups and WAL to a moment
-- between them, and checks the first is there and the second is not. The rows stay as the
-- drill's evidence (two a quarter).

-- +goose Up
CREATE TABLE IF NOT EXISTS pitr_drill_markers (
    drill_id   text        NOT NULL,
    seq        smallint    NOT NULL CHECK (seq > 0),
    written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (drill_id, seq)
);
GRANT SELECT, INSERT ON pitr_drill_markers TO orchestrator_app;
GRANT SELECT ON pitr_drill_markers TO orchestrator_backup;

-- +goose Down
DROP TABLE IF EXISTS pitr_drill_markers;
