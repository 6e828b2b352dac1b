package db

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// MessagesChannel is the PostgreSQL NOTIFY channel a new message is announced on. The payload
// is a MessageEvent: ids only, never ciphertext.
const MessagesChannel = "messages"

// Message limits.
const (
	// MaxCiphertextBytes bounds a message's ciphertext (64 KiB).
	MaxCiphertextBytes = 64 << 10
	// NonceBytes is the XChaCha20-Poly1305 nonce size.
	NonceBytes = 24
	// PublicKeyBytes is the X25519 public key size.
	PublicKeyBytes = 32
	// DMTierLevel is the subscription tier level a fan needs to message a creator (Gold).
	DMTierLevel = 3
)

// PublicKey is a user's published X25519 public key.
type PublicKey struct {
	UserID    uuid.UUID
	Key       []byte
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PutPublicKey publishes (or replaces) user's public key. created reports a first key.
func PutPublicKey(ctx context.Context, q Querier, user uuid.UUID, key []byte, now time.Time) (PublicKey, bool, error) {
	if len(key) != PublicKeyBytes {
		return PublicKey{}, false, invalid("invalid_public_key", "public_key must be 32 bytes")
	}
	var k PublicKey
	var created bool
	err := q.QueryRow(ctx, `
		INSERT INTO user_keys (user_id, public_key, created_at, updated_at)
		SELECT $1, $2, $3, $3 WHERE EXISTS (SELECT 1 FROM users WHERE id = $1)
		ON CONFLICT (user_id) DO UPDATE SET public_key = EXCLUDED.public_key, updated_at = EXCLUDED.updated_at
		RETURNING user_id, public_key, created_at, updated_at, (xmax = 0)`, user, key, now).
		Scan(&k.UserID, &k.Key, &k.CreatedAt, &k.UpdatedAt, &created)
	if errors.Is(err, pgx.ErrNoRows) {
		return PublicKey{}, false, invalid("user_not_found", "the caller has no user record; ask the back office to create it")
	}
	return k, created, err
}

// GetPublicKey returns user's public key.
func GetPublicKey(ctx context.Context, q Querier, user uuid.UUID) (PublicKey, error) {
	var k PublicKey
	err := q.QueryRow(ctx, `SELECT user_id, public_key, created_at, updated_at FROM user_keys WHERE user_id = $1`, user).
		Scan(&k.UserID, &k.Key, &k.CreatedAt, &k.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return PublicKey{}, missing("key_not_found", "this user has published no key")
	}
	return k, err
}

// Message is one direct message as stored: ciphertext and nonce only.
type Message struct {
	ID          uuid.UUID
	SenderID    uuid.UUID
	RecipientID uuid.UUID
	Ciphertext  []byte
	Nonce       []byte
	SentAt      time.Time
	ReadAt      *time.Time
	DeletedAt   *time.Time
}

// MessageInput is a message to send.
type MessageInput struct {
	SenderID    uuid.UUID
	RecipientID uuid.UUID
	Ciphertext  []byte
	Nonce       []byte
}

// MessageEvent is the NOTIFY payload of a new message: ids only.
type MessageEvent struct {
	ID          uuid.UUID `json:"id"`
	SenderID    uuid.UUID `json:"sender_id"`
	RecipientID uuid.UUID `json:"recipient_id"`
}

const messageColumns = `id, sender_id, recipient_id, ciphertext, nonce, sent_at, read_at, deleted_at`

func scanMessage(row pgx.Row) (Message, error) {
	var m Message
	err := row.Scan(&m.ID, &m.SenderID, &m.RecipientID, &m.Ciphertext, &m.Nonce, &m.SentAt, &m.ReadAt, &m.DeletedAt)
	return m, err
}

// SendMessage stores a message when the sender may write to the recipient, and announces it
// on MessagesChannel in the same statement (so the notification is sent exactly when the row
// commits). The rule and the insert are one statement: a subscription cancelled at the same
// instant cannot slip through. The rule: the sender holds an active subscription of level 3
// or more to the recipient (a fan writing to a creator), or the sender is a creator and the
// recipient has written to them before (a reply).
func SendMessage(ctx context.Context, q Querier, in MessageInput, now time.Time) (Message, error) {
	switch {
	case in.SenderID == in.RecipientID:
		return Message{}, invalid("invalid_recipient", "you cannot message yourself")
	case len(in.Ciphertext) == 0 || len(in.Ciphertext) > MaxCiphertextBytes:
		return Message{}, invalid("invalid_encrypted_content", "encrypted_content must be 1 byte to 64 KiB")
	case len(in.Nonce) != NonceBytes:
		return Message{}, invalid("invalid_nonce", "nonce must be 24 bytes")
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Message{}, err
	}
	var m Message
	var notified bool
	err = q.QueryRow(ctx, `
		WITH ins AS (
			INSERT INTO messages (id, sender_id, recipient_id, ciphertext, nonce, sent_at)
			SELECT $1, $2, $3, $4, $5, $6
			 WHERE COALESCE(active_subscription_level($2, $3, $6), 0) >= $7
			    OR (EXISTS (SELECT 1 FROM creators WHERE id = $2)
			        AND EXISTS (SELECT 1 FROM messages WHERE sender_id = $3 AND recipient_id = $2))
			RETURNING `+messageColumns+`
		)
		SELECT ins.*, pg_notify($8, json_build_object('id', id, 'sender_id', sender_id, 'recipient_id', recipient_id)::text) IS NULL
		  FROM ins`, id, in.SenderID, in.RecipientID, in.Ciphertext, in.Nonce, now, DMTierLevel, MessagesChannel).
		Scan(&m.ID, &m.SenderID, &m.RecipientID, &m.Ciphertext, &m.Nonce, &m.SentAt, &m.ReadAt, &m.DeletedAt, &notified)
	if err == nil {
		return m, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Message{}, err
	}
	var exists bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, in.RecipientID).Scan(&exists); err != nil {
		return Message{}, err
	}
	if !exists {
		return Message{}, missing("recipient_not_found", "there is no user with this recipient_id")
	}
	return Message{}, &Error{Kind: KindForbidden, Code: "messages_not_allowed",
		Message: "a fan may message a creator only with an active Gold (level 3+) subscription; a creator may reply only to fans who wrote to them"}
}

// GetMessageFor returns message id when user sent or received it; otherwise not found.
func GetMessageFor(ctx context.Context, q Querier, user, id uuid.UUID) (Message, error) {
	m, err := scanMessage(q.QueryRow(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE id = $1 AND (sender_id = $2 OR recipient_id = $2)`, id, user))
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, missing("message_not_found", "message not found")
	}
	return m, err
}

// Conversation is one of a user's conversations: the other party, the last message time and
// how many messages to the user are unread.
type Conversation struct {
	UserID        uuid.UUID
	LastMessageAt time.Time
	UnreadCount   int
}

// ListConversations lists user's conversations, most recent first.
func ListConversations(ctx context.Context, q Querier, user uuid.UUID, p Page) ([]Conversation, *Cursor, error) {
	at, after := cursorArgs(p.After)
	rows, err := q.Query(ctx, `
		SELECT other, last_at, unread FROM (
			SELECT CASE WHEN sender_id = $1 THEN recipient_id ELSE sender_id END AS other,
			       max(sent_at) AS last_at,
			       count(*) FILTER (WHERE recipient_id = $1 AND read_at IS NULL AND deleted_at IS NULL) AS unread
			  FROM messages
			 WHERE sender_id = $1 OR recipient_id = $1
			 GROUP BY 1) c
		 WHERE ($2::timestamptz IS NULL OR (last_at, other) < ($2, $3))
		 ORDER BY last_at DESC, other DESC
		 LIMIT $4`, user, at, after, p.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	convs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Conversation, error) {
		var c Conversation
		err := r.Scan(&c.UserID, &c.LastMessageAt, &c.UnreadCount)
		return c, err
	})
	if err != nil {
		return nil, nil, err
	}
	items, next := pageOf(convs, p.Limit, func(c Conversation) Cursor { return Cursor{At: c.LastMessageAt, ID: c.UserID} })
	return items, next, nil
}

// ListMessages lists the messages between user and other, newest first. Deleted messages stay
// in the list with their content removed by the API.
func ListMessages(ctx context.Context, q Querier, user, other uuid.UUID, p Page) ([]Message, *Cursor, error) {
	at, after := cursorArgs(p.After)
	rows, err := q.Query(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE LEAST(sender_id, recipient_id) = LEAST($1::uuid, $2::uuid)
		  AND GREATEST(sender_id, recipient_id) = GREATEST($1::uuid, $2::uuid)
		  AND ($3::timestamptz IS NULL OR (sent_at, id) < ($3, $4))
		ORDER BY sent_at DESC, id DESC
		LIMIT $5`, user, other, at, after, p.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	msgs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
	if err != nil {
		return nil, nil, err
	}
	items, next := pageOf(msgs, p.Limit, func(m Message) Cursor { return Cursor{At: m.SentAt, ID: m.ID} })
	return items, next, nil
}

// MessagesAfter returns up to limit messages to user that came after message after, oldest
// first: what a reconnecting WebSocket client missed. An after that is not the user's message
// is not found.
func MessagesAfter(ctx context.Context, q Querier, user, after uuid.UUID, limit int) ([]Message, error) {
	var at time.Time
	err := q.QueryRow(ctx, `SELECT sent_at FROM messages WHERE id = $1 AND (sender_id = $2 OR recipient_id = $2)`, after, user).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, missing("message_not_found", "after is not a message of yours")
	} else if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE recipient_id = $1 AND deleted_at IS NULL AND (sent_at, id) > ($2, $3)
		ORDER BY sent_at, id LIMIT $4`, user, at, after, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
}

// ReceiptsChannel announces read receipts: a ReceiptEvent, ids and time only.
const ReceiptsChannel = "message_receipts"

// ReceiptEvent is the NOTIFY payload of a read receipt.
type ReceiptEvent struct {
	ID       uuid.UUID `json:"id"`
	SenderID uuid.UUID `json:"sender_id"`
	ReaderID uuid.UUID `json:"reader_id"`
	ReadAt   time.Time `json:"read_at"`
}

// MarkRead marks message id read by its recipient user (idempotent: the first read time
// stays) and announces the receipt on ReceiptsChannel. A message user did not receive is not
// found.
func MarkRead(ctx context.Context, q Querier, user, id uuid.UUID, now time.Time) (Message, error) {
	m, err := scanMessage(q.QueryRow(ctx, `
		UPDATE messages SET read_at = COALESCE(read_at, $3)
		 WHERE id = $1 AND recipient_id = $2 AND deleted_at IS NULL
		RETURNING `+messageColumns, id, user, now))
	if errors.Is(err, pgx.ErrNoRows) {
		return Message{}, missing("message_not_found", "message not found")
	} else if err != nil {
		return Message{}, err
	}
	ev, _ := json.Marshal(ReceiptEvent{ID: m.ID, SenderID: m.SenderID, ReaderID: m.RecipientID, ReadAt: *m.ReadAt})
	if _, err := q.Exec(ctx, `SELECT pg_notify($1, $2)`, ReceiptsChannel, string(ev)); err != nil {
		return Message{}, err
	}
	return m, nil
}

// DeleteMessage soft-deletes message id, by its sender only (idempotent). The ciphertext is
// wiped: a deleted message keeps no content.
func DeleteMessage(ctx context.Context, q Querier, user, id uuid.UUID, now time.Time) (Message, error) {
	m, err := scanMessage(q.QueryRow(ctx, `
		UPDATE messages SET deleted_at = COALESCE(deleted_at, $3), ciphertext = '\x00'::bytea
		 WHERE id = $1 AND sender_id = $2
		RETURNING `+messageColumns, id, user, now))
	if errors.Is(err, pgx.ErrNoRows) {
		// The recipient may see it but not delete it; others do not see it at all.
		if _, gerr := GetMessageFor(ctx, q, user, id); gerr == nil {
			return Message{}, &Error{Kind: KindForbidden, Code: "not_sender", Message: "only the sender may delete a message"}
		}
		return Message{}, missing("message_not_found", "message not found")
	}
	return m, err
}

// MayMessage reports whether from may start or continue a conversation with to: the rule of
// SendMessage, or an existing conversation. It gates typing indicators.
func MayMessage(ctx context.Context, q Querier, from, to uuid.UUID, now time.Time) (bool, error) {
	var ok bool
	err := q.QueryRow(ctx, `SELECT COALESCE(active_subscription_level($1, $2, $3), 0) >= $4
		OR EXISTS (SELECT 1 FROM messages WHERE (sender_id = $1 AND recipient_id = $2) OR (sender_id = $2 AND recipient_id = $1))`,
		from, to, now, DMTierLevel).Scan(&ok)
	return ok, err
}

// Real-time channels: typing indicators and presence, announced with ids only.
const (
	TypingChannel   = "message_typing"
	PresenceChannel = "presence"
)

// TypingEvent is the NOTIFY payload of a typing indicator.
type TypingEvent struct {
	From     uuid.UUID `json:"from"`
	To       uuid.UUID `json:"to"`
	IsTyping bool      `json:"is_typing"`
}

// PresenceEvent is the NOTIFY payload of a user coming online or going offline.
type PresenceEvent struct {
	UserID   uuid.UUID `json:"user_id"`
	Status   string    `json:"status"`
	LastSeen time.Time `json:"last_seen"`
}

// NotifyTyping announces a typing indicator to every instance.
func NotifyTyping(ctx context.Context, q Querier, ev TypingEvent) error {
	b, _ := json.Marshal(ev)
	_, err := q.Exec(ctx, `SELECT pg_notify($1, $2)`, TypingChannel, string(b))
	return err
}

// OpenSession records an open WebSocket of user on an instance and, when it is the user's
// first anywhere, announces them online (in the same statement).
func OpenSession(ctx context.Context, q Querier, session, user, instance uuid.UUID, now time.Time) error {
	_, err := q.Exec(ctx, `
		WITH ins AS (
			INSERT INTO ws_sessions (id, user_id, instance_id, connected_at) VALUES ($1, $2, $3, $4) RETURNING user_id
		)
		SELECT pg_notify($5, json_build_object('user_id', $2::uuid, 'status', 'online', 'last_seen', $4::timestamptz)::text)
		  FROM ins WHERE NOT EXISTS (SELECT 1 FROM ws_sessions WHERE user_id = $2)`,
		session, user, instance, now, PresenceChannel)
	return err
}

// CloseSession removes an open WebSocket and, when it was the user's last anywhere, records
// last seen and announces them offline (in the same statement).
func CloseSession(ctx context.Context, q Querier, session, user uuid.UUID, now time.Time) error {
	_, err := q.Exec(ctx, `
		WITH del AS (DELETE FROM ws_sessions WHERE id = $1 RETURNING user_id),
		seen AS (
			INSERT INTO user_last_seen (user_id, last_seen) SELECT user_id, $3 FROM del
			ON CONFLICT (user_id) DO UPDATE SET last_seen = EXCLUDED.last_seen RETURNING user_id
		)
		SELECT pg_notify($4, json_build_object('user_id', $2::uuid, 'status', 'offline', 'last_seen', $3::timestamptz)::text)
		  FROM del WHERE NOT EXISTS (SELECT 1 FROM ws_sessions WHERE user_id = $2 AND id <> $1)`,
		session, user, now, PresenceChannel)
	return err
}

// Contacts returns the users user has a conversation with.
func Contacts(ctx context.Context, q Querier, user uuid.UUID) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT CASE WHEN sender_id = $1 THEN recipient_id ELSE sender_id END
		FROM messages WHERE sender_id = $1 OR recipient_id = $1`, user)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// OnlineContacts returns user's contacts with an open WebSocket on any instance.
func OnlineContacts(ctx context.Context, q Querier, user uuid.UUID) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT s.user_id FROM ws_sessions s
		WHERE s.user_id IN (SELECT CASE WHEN sender_id = $1 THEN recipient_id ELSE sender_id END
		                      FROM messages WHERE sender_id = $1 OR recipient_id = $1)`, user)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}
