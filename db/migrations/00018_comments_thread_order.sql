-- +goose Up
-- A page of threads carries each thread's first replies breadth first (db.RepliesPerThread),
-- the rest are paged in the same order: one index walk per thread either way. IF NOT EXISTS:
-- databases made by a pre-release 00015 that carried this index already have it.
CREATE INDEX IF NOT EXISTS comments_thread_order ON comments (root_id, depth, created_at, id);

-- +goose Down
DROP INDEX IF EXISTS comments_thread_order;
