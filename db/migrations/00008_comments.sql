-- Subscriber-only threaded comments on a creator's page, and their likes. Only fans with an
-- active subscription to the creator (see active_subscription_level) and the creator
-- themself may write here; the gate is part of the INSERT statement in db/comments.go.

-- +goose Up
CREATE TABLE comments (
    id         uuid        PRIMARY KEY,
    creator_id uuid        NOT NULL REFERENCES creators (id),
    author_id  uuid        NOT NULL REFERENCES users (id),
    -- The comment replied to, on the same creator page (the foreign key proves it).
    parent_id  uuid,
    -- The top-level comment of the thread (itself for a top-level comment), so a page of
    -- threads is read with one index scan.
    root_id    uuid        NOT NULL,
    -- 0 for a top-level comment, the parent's depth + 1 for a reply; at most 4.
    depth      smallint    NOT NULL CHECK (depth BETWEEN 0 AND 4),
    -- Emptied when the comment is deleted: a deleted body is not kept.
    content    text        NOT NULL,
    created_at timestamptz NOT NULL,
    edited_at  timestamptz,
    deleted_at timestamptz,
    deleted_by uuid,
    UNIQUE (id, creator_id),
    FOREIGN KEY (parent_id, creator_id) REFERENCES comments (id, creator_id),
    CHECK ((parent_id IS NULL) = (depth = 0)),
    CHECK ((parent_id IS NULL) = (root_id = id)),
    CHECK (CASE WHEN deleted_at IS NULL THEN char_length(content) BETWEEN 1 AND 10000 ELSE content = '' END),
    CHECK ((deleted_at IS NULL) = (deleted_by IS NULL))
);
-- A page of threads, newest first.
CREATE INDEX comments_threads ON comments (creator_id, created_at DESC, id DESC) WHERE parent_id IS NULL;
-- Every comment of a thread.
CREATE INDEX comments_root ON comments (root_id, created_at);
CREATE INDEX comments_author ON comments (author_id, created_at);

-- One like per comment and user.
CREATE TABLE comment_likes (
    comment_id uuid        NOT NULL REFERENCES comments (id),
    user_id    uuid        NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL,
    PRIMARY KEY (comment_id, user_id)
);
CREATE INDEX comment_likes_user ON comment_likes (user_id);

-- +goose Down
DROP TABLE comment_likes;
DROP TABLE comments;
