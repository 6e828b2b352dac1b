-- +goose Up
-- A page of threads carries each thread's first replies breadth first (db.RepliesPerThread),
-- the rest are paged in the same order: one index walk per thread either way.
CREATE INDEX comments_thread_order ON comments (root_id, depth, created_at, id);

-- +goose Down
DROP INDEX comments_thread_order;
