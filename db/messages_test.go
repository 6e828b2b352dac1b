package db_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// dmFixture makes a creator with a tier of level and a fan subscribed to it.
func dmFixture(t *testing.T, pool *pgxpool.Pool, level int) (fan, creator uuid.UUID) {
	t.Helper()
	ctx := t.Context()
	fan, creator, tier := uuid.New(), uuid.New(), uuid.New()
	_, err := pool.Exec(ctx, `INSERT INTO users (id, role, display_name) VALUES ($1, 'fan', 'f'), ($2, 'creator', 'c')`, fan, creator)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO creators (id, handle) VALUES ($1, $2)`, creator, "c_"+strings.ReplaceAll(creator.String()[:8], "-", ""))
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO subscription_tiers (id, creator_id, name, level, price_stroops, asset) VALUES ($1, $2, 'T', $3, 1, 'USDC')`, tier, creator, level)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO subscriptions (id, fan_id, creator_id, tier_id, started_at, current_period_end)
		VALUES ($1, $2, $3, $4, now() - interval '1 day', now() + interval '29 days')`, uuid.New(), fan, creator, tier)
	require.NoError(t, err)
	return fan, creator
}

func listen(t *testing.T, channel string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), testharness.Postgres(t).URL)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	_, err = conn.Exec(t.Context(), "LISTEN "+pgx.Identifier{channel}.Sanitize())
	require.NoError(t, err)
	return conn
}

func waitNotify(t *testing.T, conn *pgx.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	n, err := conn.WaitForNotification(ctx)
	require.NoError(t, err)
	return n.Payload
}

func TestSendMessageNotifiesIdsOnly(t *testing.T) {
	pool := testharness.Pool(t)
	ctx := t.Context()
	fan, creator := dmFixture(t, pool, 3)
	conn := listen(t, db.MessagesChannel)

	ct := make([]byte, 100)
	_, _ = rand.Read(ct)
	nonce := make([]byte, 24)
	m, err := db.SendMessage(ctx, pool, db.MessageInput{SenderID: fan, RecipientID: creator, Ciphertext: ct, Nonce: nonce}, time.Now())
	require.NoError(t, err)
	payload := waitNotify(t, conn)
	var ev map[string]any
	require.NoError(t, json.Unmarshal([]byte(payload), &ev))
	require.Equal(t, map[string]any{"id": m.ID.String(), "sender_id": fan.String(), "recipient_id": creator.String()}, ev)

	// A Silver fan is refused, and nothing is announced.
	silverFan, silverCreator := dmFixture(t, pool, 2)
	_, err = db.SendMessage(ctx, pool, db.MessageInput{SenderID: silverFan, RecipientID: silverCreator, Ciphertext: ct, Nonce: nonce}, time.Now())
	e, ok := db.AsError(err)
	require.True(t, ok)
	require.Equal(t, db.KindForbidden, e.Kind)
	// The creator may now reply to the fan who wrote.
	_, err = db.SendMessage(ctx, pool, db.MessageInput{SenderID: creator, RecipientID: fan, Ciphertext: ct, Nonce: nonce}, time.Now())
	require.NoError(t, err)
	var ev2 db.MessageEvent
	require.NoError(t, json.Unmarshal([]byte(waitNotify(t, conn)), &ev2))
	require.Equal(t, fan, ev2.RecipientID)
}

func TestPresenceSessions(t *testing.T) {
	pool := testharness.Pool(t)
	ctx := t.Context()
	conn := listen(t, db.PresenceChannel)
	user, inst := uuid.New(), uuid.New()
	s1, s2 := uuid.New(), uuid.New()
	now := time.Now()

	_, err := db.Heartbeat(ctx, pool, inst)
	require.NoError(t, err)
	open := func(id uuid.UUID) {
		t.Helper()
		ok, err := db.OpenSession(ctx, pool, db.WSSession{ID: id, UserID: user, Instance: inst}, now, 20, time.Minute)
		require.NoError(t, err)
		require.True(t, ok)
	}
	open(s1)
	require.Contains(t, waitNotify(t, conn), `"online"`)
	open(s2)                                                      // second device: no event
	require.NoError(t, db.CloseSession(ctx, pool, s1, user, now)) // one left: no event
	require.NoError(t, db.CloseSession(ctx, pool, s2, user, now))
	var ev db.PresenceEvent
	require.NoError(t, json.Unmarshal([]byte(waitNotify(t, conn)), &ev))
	require.Equal(t, "offline", ev.Status)
	require.Equal(t, user, ev.UserID)
	var seen time.Time
	require.NoError(t, pool.QueryRow(ctx, `SELECT last_seen FROM user_last_seen WHERE user_id = $1`, user).Scan(&seen))
}

// An instance that stops renewing its lease loses its sessions to any live instance's reap
// (with the offline announcement), and until then they do not count as online: neither do
// the sessions of a restored database, whose leases are as old as the backup.
func TestPresenceLeasesHeal(t *testing.T) {
	pool, url := testharness.FreshDB(t)
	ctx := t.Context()
	fan, creator := uuid.New(), uuid.New()
	_, err := pool.Exec(ctx, `INSERT INTO users (id, role, display_name) VALUES ($1, 'fan', 'F'), ($2, 'creator', 'C')`, fan, creator)
	require.NoError(t, err)
	_, err = pool.Exec(ctx, `INSERT INTO messages (id, sender_id, recipient_id, ciphertext, nonce, sent_at)
		VALUES ($1, $2, $3, '\x01', $4, now())`, uuid.New(), fan, creator, make([]byte, 24))
	require.NoError(t, err)
	live, dead := uuid.New(), uuid.New()
	for _, inst := range []uuid.UUID{live, dead} {
		renewed, err := db.Heartbeat(ctx, pool, inst)
		require.NoError(t, err)
		require.False(t, renewed, "a first heartbeat takes the lease")
	}
	ok, err := db.OpenSession(ctx, pool, db.WSSession{ID: uuid.New(), UserID: creator, Instance: dead}, time.Now(), 20, time.Minute)
	require.NoError(t, err)
	require.True(t, ok)
	online, err := db.OnlineContacts(ctx, pool, fan, time.Minute)
	require.NoError(t, err)
	require.Equal(t, []uuid.UUID{creator}, online)

	// The dead instance's heartbeat is two minutes old (as in a database restored from a
	// backup): nobody is online, and any live instance's reap removes the session.
	_, err = pool.Exec(ctx, `UPDATE ws_instances SET heartbeat_at = now() - interval '2 minutes' WHERE id = $1`, dead)
	require.NoError(t, err)
	online, err = db.OnlineContacts(ctx, pool, fan, time.Minute)
	require.NoError(t, err)
	require.Empty(t, online)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, "LISTEN "+db.PresenceChannel)
	require.NoError(t, err)
	n, err := db.ReapSessions(ctx, pool, time.Minute)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Contains(t, waitNotify(t, conn), `"offline"`)
	var left int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM ws_sessions`).Scan(&left))
	require.Zero(t, left)
	renewed, err := db.Heartbeat(ctx, pool, dead)
	require.NoError(t, err)
	require.False(t, renewed, "a reaped instance learns its lease had lapsed")
	renewed, err = db.Heartbeat(ctx, pool, live)
	require.NoError(t, err)
	require.True(t, renewed)

	// The cap on sockets per user holds.
	for i := range 3 {
		ok, err := db.OpenSession(ctx, pool, db.WSSession{ID: uuid.New(), UserID: fan, Instance: live}, time.Now(), 2, time.Minute)
		require.NoError(t, err)
		require.Equal(t, i < 2, ok, "session %d", i)
	}
}

// TestSendMessagesAuditedInOneTransaction: a batch of sends gives each send the result it
// would have had alone (sent, refused by the rule, by the limit, unknown recipient, bad input),
// commits the sent ones in one transaction with their access-log rows and announcements, and
// when one send makes the transaction fail, the others still go out on their own.
func TestSendMessagesAuditedInOneTransaction(t *testing.T) {
	pool := testharness.Pool(t)
	ctx := t.Context()
	fan, creator := dmFixture(t, pool, 3)
	fan2, creator2 := dmFixture(t, pool, 3)
	silverFan, silverCreator := dmFixture(t, pool, 2)
	conn := listen(t, db.MessagesChannel)
	now := time.Now()
	ct, nonce := []byte("sealed"), make([]byte, db.NonceBytes)
	req := func(from, to uuid.UUID, max int) db.SendRequest {
		return db.SendRequest{In: db.MessageInput{SenderID: from, RecipientID: to, Ciphertext: ct, Nonce: nonce},
			Limit: db.SendLimit{Bucket: "batch-test:" + from.String(), Limit: db.Limit{Max: max, Window: time.Minute}},
			Audit: db.AccessLogEntry{Role: "fan", IP: "192.0.2.1", UserAgent: "test"}, Now: now}
	}
	bad := req(fan, creator, 20)
	bad.In.Nonce = nil
	reqs := []db.SendRequest{
		req(fan2, creator2, 2), req(fan, creator, 20), req(fan2, creator2, 2), req(silverFan, silverCreator, 20),
		req(fan2, creator2, 2), req(fan, uuid.New(), 20), bad, req(fan, creator, 20),
	}
	res := db.SendMessagesAudited(ctx, pool, reqs)
	require.Len(t, res, len(reqs))
	sent := []int{0, 1, 2, 7}
	for _, i := range sent {
		require.NoError(t, res[i].Err, i)
		require.True(t, res[i].Decision.Allowed, i)
		require.NotEqual(t, uuid.Nil, res[i].Message.ID, i)
	}
	require.False(t, res[4].Decision.Allowed, "fan2's third send in the minute: over its limit of 2")
	require.NoError(t, res[4].Err)
	for i, code := range map[int]string{3: "messages_not_allowed", 5: "recipient_not_found", 6: "invalid_nonce"} {
		e, ok := db.AsError(res[i].Err)
		require.True(t, ok, "%d: %v", i, res[i].Err)
		require.Equal(t, code, e.Code, i)
	}
	ids := []uuid.UUID{res[0].Message.ID, res[1].Message.ID, res[2].Message.ID, res[7].Message.ID}
	var txs, logged int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM messages WHERE id = ANY($1)`, ids).Scan(&txs))
	require.Equal(t, 1, txs, "one transaction for the batch")
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM access_log WHERE action = 'message.send' AND target = ANY($1)`,
		[]string{ids[0].String(), ids[1].String(), ids[2].String(), ids[3].String()}).Scan(&logged))
	require.Equal(t, 4, logged)
	// Announced, each sender's messages in the order they were asked for.
	var order []uuid.UUID
	for len(order) < len(ids) {
		var ev db.MessageEvent
		require.NoError(t, json.Unmarshal([]byte(waitNotify(t, conn)), &ev))
		if slices.Contains(ids, ev.ID) { // other tests of the package may be sending
			order = append(order, ev.ID)
		}
	}
	require.ElementsMatch(t, ids, order)
	pos := func(id uuid.UUID) int { return slices.Index(order, id) }
	require.Less(t, pos(res[0].Message.ID), pos(res[2].Message.ID))
	require.Less(t, pos(res[1].Message.ID), pos(res[7].Message.ID))

	// A send that fails in the database (a bucket PostgreSQL cannot store) fails alone.
	broken := req(fan, creator, 20)
	broken.Limit.Bucket = "nul\x00bucket"
	res = db.SendMessagesAudited(ctx, pool, []db.SendRequest{req(fan, creator, 20), broken, req(fan, creator, 20)})
	require.NoError(t, res[0].Err)
	require.Error(t, res[1].Err)
	require.NoError(t, res[2].Err)
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(DISTINCT xmin::text) FROM messages WHERE id = ANY($1)`,
		[]uuid.UUID{res[0].Message.ID, res[2].Message.ID}).Scan(&txs))
	require.Equal(t, 2, txs, "after the failed batch, each send on its own")
}
