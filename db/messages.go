package db

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
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

// mayWrite is the SQL rule "sender $2 may write to recipient $3 at $6" with $7 the tier level
// a fan needs: an active subscription of that level, or a creator replying to a fan who wrote.
const mayWrite = `(COALESCE(active_subscription_level($2, $3, $6), 0) >= $7
			    OR (EXISTS (SELECT 1 FROM creators WHERE id = $2)
			        AND EXISTS (SELECT 1 FROM messages WHERE sender_id = $3 AND recipient_id = $2)))`

// messageNotify is the pg_notify of a new message in the row ins (ids only).
const messageNotify = `pg_notify($8, json_build_object('id', ins.id, 'sender_id', ins.sender_id, 'recipient_id', ins.recipient_id)::text)`

func checkMessageInput(in MessageInput) error {
	switch {
	case in.SenderID == in.RecipientID:
		return invalid("invalid_recipient", "you cannot message yourself")
	case len(in.Ciphertext) == 0 || len(in.Ciphertext) > MaxCiphertextBytes:
		return invalid("invalid_encrypted_content", "encrypted_content must be 1 byte to 64 KiB")
	case len(in.Nonce) != NonceBytes:
		return invalid("invalid_nonce", "nonce must be 24 bytes")
	}
	return nil
}

var errMessagesNotAllowed = &Error{Kind: KindForbidden, Code: "messages_not_allowed",
	Message: "a fan may message a creator only with an active Gold (level 3+) subscription; a creator may reply only to fans who wrote to them"}

// SendLimit is the rate limit a send counts against: a bucket (one per sender) and its
// limit, shared by every API instance.
type SendLimit struct {
	Bucket string
	Limit  Limit
}

// SendMessageAudited is the API's send: the rate limit hit, the tier rule, the insert, the
// NOTIFY and the access-log row audit (its action, target and detail are set here) in one
// statement, so one round trip and all or nothing. A send the limit refuses changes nothing
// and returns a Decision that is not Allowed; a send the rule refuses still counts against
// the limit.
func SendMessageAudited(ctx context.Context, q Querier, in MessageInput, lim SendLimit, audit AccessLogEntry, now time.Time) (Message, Decision, error) {
	st, err := newAuditedSend(SendRequest{In: in, Limit: lim, Audit: audit, Now: now})
	if err != nil {
		return Message{}, Decision{}, err
	}
	r := st.result(q.QueryRow(ctx, sendAuditedSQL, st.args...))
	return r.Message, r.Decision, r.Err
}

// SendRequest is one send of SendMessagesAudited: SendMessageAudited's arguments.
type SendRequest struct {
	In    MessageInput
	Limit SendLimit
	Audit AccessLogEntry
	Now   time.Time
}

// SendResult is what SendMessageAudited returns for one send.
type SendResult struct {
	Message  Message
	Decision Decision
	Err      error
}

// SendMessagesAudited runs many sends, each exactly as SendMessageAudited would, in one
// transaction (pipelined: one round trip). A transaction that NOTIFYs holds PostgreSQL's
// notification-queue lock through its commit, WAL flush included, so sending transactions
// commit one at a time: one commit for many sends is what lets a busy instance send more than
// a few hundred messages a second. The statements take their rate-limit rows in bucket order
// (one sender's sends keep their order), so two such transactions cannot deadlock on them.
// When the transaction fails, each send is tried again on its own, so that one send's error
// is not the others'.
func SendMessagesAudited(ctx context.Context, pool *pgxpool.Pool, reqs []SendRequest) []SendResult {
	out := make([]SendResult, len(reqs))
	sends := make([]*auditedSend, 0, len(reqs))
	for i, r := range reqs {
		st, err := newAuditedSend(r)
		if err != nil {
			out[i].Err = err
			continue
		}
		st.index = i
		sends = append(sends, st)
	}
	if len(sends) == 0 {
		return out
	}
	if len(sends) == 1 {
		out[sends[0].index] = sends[0].result(pool.QueryRow(ctx, sendAuditedSQL, sends[0].args...))
		return out
	}
	slices.SortStableFunc(sends, func(a, b *auditedSend) int { return strings.Compare(a.bucket, b.bucket) })
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, st := range sends {
			b.Queue(sendAuditedSQL, st.args...).QueryRow(func(row pgx.Row) error {
				var err error
				out[st.index], err = st.scan(row)
				return err // a database error; a refused send is a result
			})
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if err == nil {
		return out
	}
	for _, st := range sends { // rolled back: nothing of the batch happened
		out[st.index] = st.result(pool.QueryRow(ctx, sendAuditedSQL, st.args...))
	}
	return out
}

// sendAuditedSQL is one audited send; auditedSend holds its arguments.
const sendAuditedSQL = `
		WITH rl AS MATERIALIZED (SELECT * FROM take_rate_limit($9, $10, $11, $12, $13)),
		ins AS (
			INSERT INTO messages (id, sender_id, recipient_id, ciphertext, nonce, sent_at)
			SELECT $1, $2, $3, $4, $5, $6 FROM rl
			 WHERE rl.allowed AND ` + mayWrite + `
			RETURNING ` + messageColumns + `
		),
		audit AS (
			INSERT INTO access_log (user_id, role, action, target, detail, ip, user_agent)
			SELECT $2, NULLIF($14, ''), 'message.send', ins.id::text, 'to ' || ins.recipient_id::text, $15, $16 FROM ins
		)
		SELECT rl.allowed, rl.prev_hits, rl.cur_hits, EXISTS (SELECT 1 FROM users WHERE id = $3),
		       ins.id, ins.sender_id, ins.recipient_id, ins.ciphertext, ins.nonce, ins.sent_at,
		       CASE WHEN ins.id IS NOT NULL THEN ` + messageNotify + ` END IS NULL
		  FROM rl LEFT JOIN ins ON true`

type auditedSend struct {
	req    SendRequest
	args   []any
	bucket string
	index  int
}

func newAuditedSend(r SendRequest) (*auditedSend, error) {
	if err := checkMessageInput(r.In); err != nil {
		return nil, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, err
	}
	audit := r.Audit.sanitized()
	cur, prev, overlap := limitArgs(r.Limit.Limit, r.Now)
	return &auditedSend{req: r, bucket: r.Limit.Bucket, args: []any{
		id, r.In.SenderID, r.In.RecipientID, r.In.Ciphertext, r.In.Nonce, r.Now, DMTierLevel, MessagesChannel,
		r.Limit.Bucket, cur, prev, overlap, r.Limit.Limit.Max, audit.Role, audit.IP, audit.UserAgent}}, nil
}

// result reads the row of sendAuditedSQL.
func (st *auditedSend) result(row pgx.Row) SendResult {
	r, _ := st.scan(row)
	return r
}

// scan reads the row of sendAuditedSQL; the error is the database's, also in the result.
func (st *auditedSend) scan(row pgx.Row) (SendResult, error) {
	var allowed, recipient bool
	var prevHits, curHits int
	var mid, sender, to *uuid.UUID
	var sentAt *time.Time
	var m Message
	err := row.Scan(&allowed, &prevHits, &curHits, &recipient, &mid, &sender, &to, &m.Ciphertext, &m.Nonce, &sentAt, new(bool))
	switch {
	case err != nil:
		return SendResult{Err: err}, err
	case !allowed:
		return SendResult{Decision: decision(false, prevHits, curHits, st.req.Limit.Limit, st.req.Now)}, nil
	case mid != nil:
		m.ID, m.SenderID, m.RecipientID, m.SentAt = *mid, *sender, *to, *sentAt
		return SendResult{Message: m, Decision: Decision{Allowed: true}}, nil
	case !recipient:
		return SendResult{Decision: Decision{Allowed: true}, Err: missing("recipient_not_found", "there is no user with this recipient_id")}, nil
	}
	return SendResult{Decision: Decision{Allowed: true}, Err: errMessagesNotAllowed}, nil
}

// SendMessage stores a message when the sender may write to the recipient, and announces it
// on MessagesChannel in the same statement (so the notification is sent exactly when the row
// commits). The rule and the insert are one statement: a subscription cancelled at the same
// instant cannot slip through. The rule: the sender holds an active subscription of level 3
// or more to the recipient (a fan writing to a creator), or the sender is a creator and the
// recipient has written to them before (a reply).
func SendMessage(ctx context.Context, q Querier, in MessageInput, now time.Time) (Message, error) {
	if err := checkMessageInput(in); err != nil {
		return Message{}, err
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
			 WHERE `+mayWrite+`
			RETURNING `+messageColumns+`
		)
		SELECT ins.*, `+messageNotify+` IS NULL
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
	return Message{}, errMessagesNotAllowed
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

// MessageKey is a message's place in delivery order: (sent_at, id), as replays page.
type MessageKey struct {
	At time.Time
	ID uuid.UUID
}

// Key is m's place in delivery order.
func (m Message) Key() MessageKey { return MessageKey{At: m.SentAt, ID: m.ID} }

// MessageKeyFor returns the key of message id when user sent or received it: where a replay
// after it starts. Any other id, existing or not, is not found.
func MessageKeyFor(ctx context.Context, q Querier, user, id uuid.UUID) (MessageKey, error) {
	k := MessageKey{ID: id}
	err := q.QueryRow(ctx, `SELECT sent_at FROM messages WHERE id = $1 AND (sender_id = $2 OR recipient_id = $2)`, id, user).Scan(&k.At)
	if errors.Is(err, pgx.ErrNoRows) {
		return MessageKey{}, missing("message_not_found", "after is not a message of yours")
	}
	return k, err
}

// MessagesAfterKey returns up to limit live messages to user after key, oldest first: one
// page of what a WebSocket client missed.
func MessagesAfterKey(ctx context.Context, q Querier, user uuid.UUID, key MessageKey, limit int) ([]Message, error) {
	rows, err := q.Query(ctx, `SELECT `+messageColumns+` FROM messages
		WHERE recipient_id = $1 AND deleted_at IS NULL AND (sent_at, id) > ($2, $3)
		ORDER BY sent_at, id LIMIT $4`, user, key.At, key.ID, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Message, error) { return scanMessage(r) })
}

// MessagesAfter returns up to limit messages to user that came after message after, oldest
// first: what a reconnecting WebSocket client missed. An after that is not the user's message
// is not found.
func MessagesAfter(ctx context.Context, q Querier, user, after uuid.UUID, limit int) ([]Message, error) {
	k, err := MessageKeyFor(ctx, q, user, after)
	if err != nil {
		return nil, err
	}
	return MessagesAfterKey(ctx, q, user, k, limit)
}

// MessagesByID loads the live messages among ids, in one query, in no particular order: the
// real-time hub's batched fetch of what was announced. The caller delivers each only to its
// recipient.
func MessagesByID(ctx context.Context, q Querier, ids []uuid.UUID) ([]Message, error) {
	rows, err := q.Query(ctx, `SELECT `+messageColumns+` FROM messages WHERE id = ANY ($1) AND deleted_at IS NULL`, ids)
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

// WSSession is one open WebSocket of a user on an API instance.
type WSSession struct {
	ID       uuid.UUID
	UserID   uuid.UUID
	Instance uuid.UUID
}

// liveSession is the SQL condition "session s belongs to an instance whose lease holds", with
// the lease in seconds as $lease.
func liveSession(s, lease string) string {
	return `EXISTS (SELECT 1 FROM ws_instances i WHERE i.id = ` + s + `.instance_id
		AND i.heartbeat_at > now() - make_interval(secs => ` + lease + `))`
}

// OpenSession records an open WebSocket unless its user already has maxPerUser of them on live
// instances (then it reports false and writes nothing), and, when it is the user's first
// anywhere, announces them online (in the same statement). lease is how long an instance's
// heartbeat counts.
func OpenSession(ctx context.Context, q Querier, s WSSession, now time.Time, maxPerUser int, lease time.Duration) (bool, error) {
	var opened bool
	err := q.QueryRow(ctx, `
		WITH cnt AS (SELECT count(*) AS n FROM ws_sessions s WHERE s.user_id = $2 AND `+liveSession("s", "$7")+`),
		ins AS (
			INSERT INTO ws_sessions (id, user_id, instance_id, connected_at)
			SELECT $1, $2, $3, $4 FROM cnt WHERE cnt.n < $6 RETURNING user_id
		)
		SELECT EXISTS (SELECT 1 FROM ins),
		       (SELECT pg_notify($5, json_build_object('user_id', $2::uuid, 'status', 'online', 'last_seen', $4::timestamptz)::text)
		          FROM ins, cnt WHERE cnt.n = 0) IS NULL`,
		s.ID, s.UserID, s.Instance, now, PresenceChannel, maxPerUser, lease.Seconds()).Scan(&opened, new(bool))
	return opened, err
}

// ReopenSessions records sessions again after their instance's lease lapsed and they were
// removed, while the sockets stayed open (a long pause of the instance). Sessions still there
// are left alone.
func ReopenSessions(ctx context.Context, q Querier, ss []WSSession, now time.Time) error {
	ids, users, insts := make([]uuid.UUID, len(ss)), make([]uuid.UUID, len(ss)), make([]uuid.UUID, len(ss))
	for i, s := range ss {
		ids[i], users[i], insts[i] = s.ID, s.UserID, s.Instance
	}
	_, err := q.Exec(ctx, `INSERT INTO ws_sessions (id, user_id, instance_id, connected_at)
		SELECT id, u, inst, $4 FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) AS t(id, u, inst)
		ON CONFLICT (id) DO NOTHING`, ids, users, insts, now)
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

// Heartbeat renews instance's lease (the database's clock). It reports false when the lease
// was gone (never taken, or lapsed and reaped): the instance's sessions may have been removed
// and should be recorded again.
func Heartbeat(ctx context.Context, q Querier, instance uuid.UUID) (bool, error) {
	var renewed bool
	err := q.QueryRow(ctx, `
		INSERT INTO ws_instances (id) VALUES ($1)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()
		RETURNING xmax <> 0`, instance).Scan(&renewed)
	return renewed, err
}

// ReapSessions removes the instances whose lease lapsed (no heartbeat for lease), their
// sessions and any session of an instance without a lease, records last seen and announces
// offline every user left with no session: one statement, safe for every live instance to
// run. It returns how many sessions went.
func ReapSessions(ctx context.Context, q Querier, lease time.Duration) (int, error) {
	return reap(ctx, q, lease, uuid.Nil)
}

// LeaveInstance gives up instance's lease at shutdown: its remaining sessions go as a lapsed
// instance's do, with the same offline announcements.
func LeaveInstance(ctx context.Context, q Querier, instance uuid.UUID, lease time.Duration) error {
	_, err := reap(ctx, q, lease, instance)
	return err
}

func reap(ctx context.Context, q Querier, lease time.Duration, leaving uuid.UUID) (int, error) {
	var n int
	err := q.QueryRow(ctx, `
		WITH dead AS (
			DELETE FROM ws_instances WHERE heartbeat_at < now() - make_interval(secs => $1) OR id = $3 RETURNING id
		), gone AS (
			DELETE FROM ws_sessions s
			 WHERE s.instance_id IN (SELECT id FROM dead) OR s.instance_id = $3
			    OR NOT EXISTS (SELECT 1 FROM ws_instances i WHERE i.id = s.instance_id)
			RETURNING s.id, s.user_id
		), offline AS (
			SELECT DISTINCT g.user_id FROM gone g
			 WHERE NOT EXISTS (SELECT 1 FROM ws_sessions s WHERE s.user_id = g.user_id
			                      AND s.id NOT IN (SELECT id FROM gone) AND `+liveSession("s", "$1")+`)
		), seen AS (
			INSERT INTO user_last_seen (user_id, last_seen) SELECT user_id, now() FROM offline
			ON CONFLICT (user_id) DO UPDATE SET last_seen = EXCLUDED.last_seen
		)
		SELECT (SELECT count(*) FROM gone),
		       (SELECT count(pg_notify($2, json_build_object('user_id', user_id, 'status', 'offline', 'last_seen', now())::text)) FROM offline)`,
		lease.Seconds(), PresenceChannel, leaving).Scan(&n, new(int))
	return n, err
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

// OnlineContacts returns user's contacts with an open WebSocket on an instance whose lease
// holds: a session left by a dead instance, or restored from a backup, is not online.
func OnlineContacts(ctx context.Context, q Querier, user uuid.UUID, lease time.Duration) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `SELECT DISTINCT s.user_id FROM ws_sessions s
		WHERE s.user_id IN (SELECT CASE WHEN sender_id = $1 THEN recipient_id ELSE sender_id END
		                      FROM messages WHERE sender_id = $1 OR recipient_id = $1)
		  AND `+liveSession("s", "$2"), user, lease.Seconds())
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}
