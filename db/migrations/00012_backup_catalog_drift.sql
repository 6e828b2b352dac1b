-- The backup catalog is a cache of the object store: a backup the catalog lists as complete
-- whose manifest is gone from the store is marked 'missing' when the two are reconciled.

-- +goose Up
ALTER TABLE backups DROP CONSTRAINT backups_status_check;
ALTER TABLE backups ADD CONSTRAINT backups_status_check
    CHECK (status IN ('running', 'complete', 'failed', 'pruned', 'missing'));

-- +goose Down
UPDATE backups SET status = 'pruned' WHERE status = 'missing';
ALTER TABLE backups DROP CONSTRAINT backups_status_check;
ALTER TABLE backups ADD CONSTRAINT backups_status_check
    CHECK (status IN ('running', 'complete', 'failed', 'pruned'));
