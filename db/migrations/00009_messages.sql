-- End-to-end encrypted direct messages and the WebSocket's presence. The server keeps public
-- keys, ciphertext and nonces only: no plaintext and no private key ever reaches it.

-- +goose Up
-- Each user's X25519 public key (32 bytes). Clients derive a shared key from it.
CREATE TABLE user_keys (
    user_id    uuid        PRIMARY KEY REFERENCES users (id),
    public_key bytea       NOT NULL CHECK (length(public_key) = 32),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- One direct message: XChaCha20-Poly1305 ciphertext (at most 64 KiB) and its 24-byte nonce.
-- Ids are UUIDv7, so (sent_at, id) orders a conversation and the replay after a reconnect.
CREATE TABLE messages (
    id           uuid        PRIMARY KEY,
    sender_id    uuid        NOT NULL REFERENCES users (id),
    recipient_id uuid        NOT NULL REFERENCES users (id),
    ciphertext   bytea       NOT NULL CHECK (length(ciphertext) BETWEEN 1 AND 65536),
    nonce        bytea       NOT NULL CHECK (length(nonce) = 24),
    sent_at      timestamptz NOT NULL,
    read_at      timestamptz,
    deleted_at   timestamptz,
    CHECK (sender_id <> recipient_id)
);

CREATE INDEX messages_recipient ON messages (recipient_id, sent_at, id);
CREATE INDEX messages_sender ON messages (sender_id, recipient_id, sent_at);
CREATE INDEX messages_pair ON messages (LEAST(sender_id, recipient_id), GREATEST(sender_id, recipient_id), sent_at DESC, id DESC);

-- Open WebSocket connections, per API instance, for presence across instances. A user is
-- online while one row of theirs exists.
CREATE TABLE ws_sessions (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL,
    instance_id  uuid        NOT NULL,
    connected_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ws_sessions_user ON ws_sessions (user_id);

-- When each user's last WebSocket connection closed.
CREATE TABLE user_last_seen (
    user_id   uuid        PRIMARY KEY,
    last_seen timestamptz NOT NULL
);

-- +goose Down
DROP TABLE user_last_seen;
DROP TABLE ws_sessions;
DROP TABLE messages;
DROP TABLE user_keys;
