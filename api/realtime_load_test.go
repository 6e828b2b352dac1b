package api

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
)

// Tests of issue 15: delivery at load and in the situations a mobile client lives in.

// sendDirect stores and announces a message as the API's send does (one statement, NOTIFY on
// commit) without the per-user rate limit, so a test can make many.
func sendDirect(t *testing.T, e *env, from, to uuid.UUID, size int) db.Message {
	t.Helper()
	ct := make([]byte, size)
	ct[0] = 1
	m, err := db.SendMessage(context.Background(), e.pool, db.MessageInput{SenderID: from, RecipientID: to, Ciphertext: ct, Nonce: make([]byte, 24)}, time.Now())
	require.NoError(t, err)
	return m
}

// readIDs reads NewMessage ids until n arrived (other frames are skipped).
func (c *wsClient) readIDs(n int) []string {
	c.t.Helper()
	var ids []string
	for len(ids) < n {
		ids = append(ids, c.next("NewMessage")["message_id"].(string))
	}
	return ids
}

func requireExactlyOnceInOrder(t *testing.T, want []db.Message, got []string) {
	t.Helper()
	seen := map[string]bool{}
	for _, id := range got {
		require.False(t, seen[id], "message %s delivered twice", id)
		seen[id] = true
	}
	ids := make([]string, len(want))
	for i, m := range want {
		ids[i] = m.ID.String()
	}
	require.Equal(t, ids, got)
}

// A client that missed 5,000 messages of 64 KiB each (about 430 MiB of frames) gets all of
// them, in order, without being disconnected, while the server never holds more than a few
// pages of them.
func TestWSReplayFiveThousandLargeMessagesFlowControlled(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	first := sendDirect(t, e, w.gold.ID, w.creator.ID, 16)
	var want []string
	for _, m := range insertMissed(t, e, w.gold.ID, w.creator.ID, first.SentAt, 5000) {
		want = append(want, m.ID.String())
	}
	base := heapInUse()
	var peak atomic.Uint64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				if h := heapInUse(); h > peak.Load() {
					peak.Store(h)
				}
			}
		}
	})
	c := in.dial(t, w.creator.Token, "after="+first.ID.String())
	for i, id := range want {
		require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(30*time.Second)))
		_, data, err := c.conn.ReadMessage()
		require.NoError(t, err, "disconnected after %d messages", i)
		var f newMessageFrame
		require.NoError(t, json.Unmarshal(data, &f))
		require.Equal(t, "NewMessage", f.Type)
		require.Equal(t, id, f.MessageID.String(), "message %d out of order", i)
		require.Len(t, f.EncryptedContent, 87384) // base64 of 64 KiB
	}
	close(stop)
	sampler.Wait()
	c.quiet()
	grew := int64(peak.Load()) - int64(base)
	t.Logf("heap in use: %d MiB before, peak %d MiB during the replay of 5,000 x 64 KiB", base>>20, peak.Load()>>20)
	require.Less(t, grew, int64(96<<20), "the replay must not hold the missed messages in memory")
}

// insertMissed stores n messages of 64 KiB from one user to another after at, with SQL (fast),
// and returns them in delivery order (ciphertext left out).
func insertMissed(t *testing.T, e *env, from, to uuid.UUID, at time.Time, n int) []db.Message {
	t.Helper()
	rows, err := e.pool.Query(t.Context(), `
		INSERT INTO messages (id, sender_id, recipient_id, ciphertext, nonce, sent_at)
		SELECT gen_random_uuid(), $1, $2, decode(repeat(lpad(to_hex(i % 256), 2, '0'), 65536), 'hex'), $3,
		       $4::timestamptz + make_interval(secs => i / 1000.0)
		  FROM generate_series(1, $5::int) i
		RETURNING id, sent_at`, from, to, make([]byte, 24), at, n)
	require.NoError(t, err)
	var out []db.Message
	for rows.Next() {
		var m db.Message
		require.NoError(t, rows.Scan(&m.ID, &m.SentAt))
		out = append(out, m)
	}
	require.NoError(t, rows.Err())
	require.Len(t, out, n)
	slices.SortFunc(out, func(a, b db.Message) int {
		if c := a.SentAt.Compare(b.SentAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID.String(), b.ID.String())
	})
	return out
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// A message committed while a client reconnects with ?after= is delivered once, in order:
// the catch-up and the live announcement meet at the replay watermark.
func TestWSReconnectWhileMessagesFlowDeliversEachOnceInOrder(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	first := sendDirect(t, e, w.gold.ID, w.creator.ID, 16)
	const total = 120
	sent := make(chan db.Message, total)
	go func() {
		for range total {
			sent <- sendDirect(t, e, w.gold.ID, w.creator.ID, 32)
			time.Sleep(2 * time.Millisecond)
		}
		close(sent)
	}()
	var got []string
	last := first.ID.String()
	for round := 0; len(got) < total; round++ {
		c := in.dial(t, w.creator.Token, "after="+last)
		n := min(total-len(got), 7+round%5)
		ids := c.readIDs(n)
		got = append(got, ids...)
		last = ids[len(ids)-1]
		_ = c.conn.Close()
	}
	var want []db.Message
	for m := range sent {
		want = append(want, m)
	}
	requireExactlyOnceInOrder(t, want, got)
}

// terminateListeners ends the LISTEN connections of every hub on the test's database, as a
// failover or a network cut does.
func terminateListeners(t *testing.T, e *env) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE application_name = $1 AND datname = current_database()`, listenerName).Scan(&n))
	return n
}

func listeners(t *testing.T, e *env) int {
	return e.count(`SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()`, listenerName)
}

// The LISTEN connections of both instances are cut while messages flow: after they reconnect,
// each instance delivers what was committed in the gap, then the new messages; every socket
// gets every message exactly once, in order.
func TestWSListenerTerminatedMidStreamLosesNothing(t *testing.T) {
	e := wsEnv(t)
	a := serve(t, e)
	b := serve(t, newEnvOn(t, e.pool, withContext(t.Context())))
	w := e.dmWorld()
	onA := a.dial(t, w.creator.Token, "")
	onB := b.dial(t, w.creator.Token, "")
	onA.quiet()
	onB.quiet()

	const total = 150
	var want []db.Message
	for i := range total {
		if i == total/3 || i == 2*total/3 {
			require.Eventually(t, func() bool { return listeners(t, e) == 2 }, 10*time.Second, 10*time.Millisecond)
			require.Equal(t, 2, terminateListeners(t, e))
		}
		want = append(want, sendDirect(t, e, w.gold.ID, w.creator.ID, 32))
		time.Sleep(3 * time.Millisecond)
	}
	requireExactlyOnceInOrder(t, want, onA.readIDs(total))
	requireExactlyOnceInOrder(t, want, onB.readIDs(total))
	onA.quiet()
	onB.quiet()
}

// An open socket closes at its token's exp with 4001, mid-replay too; the client reconnects
// with a fresh token and after= and gets the rest, once each.
func TestWSTokenExpiryClosesWith4001AndResumes(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	first := sendDirect(t, e, w.gold.ID, w.creator.ID, 16)
	want := insertMissed(t, e, w.gold.ID, w.creator.ID, first.SentAt, 300)
	short, err := IssueToken(testSecret, w.creator.ID, RoleCreator, 2*time.Second, time.Now())
	require.NoError(t, err)
	c := in.dial(t, short, "after="+first.ID.String())
	var got []string
	var closeErr error
	for closeErr == nil {
		require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, data, err := c.conn.ReadMessage()
		if err != nil {
			closeErr = err
			break
		}
		var f map[string]any
		require.NoError(t, json.Unmarshal(data, &f))
		if f["type"] == "NewMessage" {
			got = append(got, f["message_id"].(string))
			time.Sleep(20 * time.Millisecond) // a slow reader: the token expires mid-replay
		}
	}
	require.True(t, websocket.IsCloseError(closeErr, closeTokenExpired), "got %v", closeErr)
	require.NotEmpty(t, got)
	require.Less(t, len(got), len(want), "the token expired before the replay ended")

	c = in.dial(t, w.creator.Token, "after="+got[len(got)-1])
	got = append(got, c.readIDs(len(want)-len(got))...)
	requireExactlyOnceInOrder(t, want, got)
	c.quiet()
}

// Typing frames: at most one per user and conversation per interval is passed on (and costs a
// query); MarkRead frames are limited per socket; a user's sockets are capped.
func TestWSTypingMarkReadThrottledAndSocketsCapped(t *testing.T) {
	e := wsEnv(t, withRealtime(RealtimeOptions{MaxSocketsPerUser: 2, MarkReadPerSecond: 1}))
	in := serve(t, e)
	w := e.dmWorld()
	m := sendDirect(t, e, w.gold.ID, w.creator.ID, 16)
	fan := in.dial(t, w.gold.Token, "")
	creator := in.dial(t, w.creator.Token, "")
	for range 10 {
		fan.send(map[string]any{"type": "Typing", "conversation_id": w.creator.ID.String(), "is_typing": true})
	}
	fan.quiet()
	require.Equal(t, "Typing", creator.next("Typing")["type"])
	creator.quiet() // the other nine were dropped

	limited := 0
	for range 6 {
		creator.send(map[string]any{"type": "MarkRead", "message_id": m.ID.String()})
	}
	creator.send(map[string]any{"type": "Ping", "client_id": "end"})
	for {
		f := creator.next("")
		if f["type"] == "Ack" {
			break
		}
		if f["type"] == "Error" {
			require.Equal(t, "rate_limited", f["code"])
			limited++
		}
	}
	require.GreaterOrEqual(t, limited, 3)

	// The creator has one socket; a second is fine, a third is refused before the upgrade.
	in.dial(t, w.creator.Token, "")
	h := http.Header{"Authorization": {"Bearer " + w.creator.Token}}
	_, resp, err := websocket.DefaultDialer.Dial(in.wsURL(""), h)
	require.Error(t, err)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
}

// Bad input on the socket: a defined Error frame each, the socket stays open, and an after=
// that is not the caller's message (someone else's, or none at all) shows nothing.
func TestWSBadInputDefinedAnswers(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	m := sendDirect(t, e, w.gold.ID, w.creator.ID, 16)
	for _, after := range []string{m.ID.String(), uuid.NewString()} {
		c := in.dial(t, w.silver.Token, "after="+after)
		require.Equal(t, "message_not_found", c.next("Error")["code"])
		c.quiet()
	}
	_, resp, err := websocket.DefaultDialer.Dial(in.wsURL("after=not-a-uuid"), http.Header{"Authorization": {"Bearer " + w.silver.Token}})
	require.Error(t, err)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)

	c := in.dial(t, w.gold.Token, "")
	for _, frame := range []string{`[]`, `{"type": 5}`, `{"type":"Typing","conversation_id":"x"}`, `{"type":"Nope"}`, `{}`, `{"type":"MarkRead"`} {
		require.NoError(t, c.conn.WriteMessage(websocket.TextMessage, []byte(frame)))
		require.NotEmpty(t, c.next("Error")["code"], frame)
	}
	c.quiet()
}

// Two instances share the 20 messages a minute of one user; every accepted message has its
// access-log row, written in the same statement.
func TestMessagesRateLimitHoldsAcrossInstancesWithAccessLog(t *testing.T) {
	e := wsEnv(t)
	other := newEnvOn(t, e.pool)
	w := e.dmWorld()
	created, limited := 0, 0
	for i := range 30 {
		inst := e
		if i%2 == 1 {
			inst = other
		}
		switch r := inst.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID)); r.Code {
		case http.StatusCreated:
			created++
		case http.StatusTooManyRequests:
			limited++
			require.NotEmpty(t, r.Header.Get("Retry-After"))
		default:
			t.Fatalf("status %d: %s", r.Code, r.Body)
		}
	}
	require.Equal(t, 20, created)
	require.Equal(t, 10, limited)
	require.Equal(t, 20, e.count(`SELECT count(*) FROM messages`))
	require.Equal(t, 20, e.count(`SELECT count(*) FROM access_log a JOIN messages m ON a.target = m.id::text
		WHERE a.action = 'message.send' AND a.user_id = $1`, w.gold.ID))
}

// A User-Agent of invalid UTF-8 no longer loses the access-log row: it is stored repaired and
// cut by character. Failed authentications from one source write at most a few rows a minute;
// all of them are counted.
func TestAccessLogSanitizedAndAuthFailuresBounded(t *testing.T) {
	e := wsEnv(t)
	w := e.dmWorld()
	ua := "bad\xff\xfe agent \x00 " + strings.Repeat("é", 400)
	post := func(token string) int {
		req := httptest.NewRequest(http.MethodPost, "/api/v1/messages", strings.NewReader(string(mustJSON(dm(w.creator.ID)))))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("User-Agent", ua)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		e.router.ServeHTTP(rec, req)
		return rec.Code
	}
	require.Equal(t, http.StatusCreated, post(w.gold.Token))
	var stored string
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT user_agent FROM access_log WHERE action = 'message.send'`).Scan(&stored))
	require.True(t, utf8.ValidString(stored))
	require.NotContains(t, stored, "\x00")
	require.Equal(t, 256, utf8.RuneCountInString(stored))
	require.True(t, strings.HasPrefix(stored, "bad\uFFFD agent \uFFFD é"), stored)

	for range 25 {
		require.Equal(t, http.StatusUnauthorized, post("not-a-token"))
	}
	require.Equal(t, db.AuthFailuresLogged, e.count(`SELECT count(*) FROM access_log WHERE action = 'auth.failed'`))
	require.Equal(t, 25, e.count(`SELECT coalesce(sum(failures), 0)::int FROM auth_failures`))
	require.Equal(t, db.AuthFailuresLogged, e.count(`SELECT count(*) FROM access_log WHERE action = 'auth.failed' AND user_agent = $1`, stored))
}

// The WebSocket's metrics are on /metrics.
func TestWSMetricsExposed(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	c := in.dial(t, w.gold.Token, "")
	c.quiet()
	r := e.do(http.MethodGet, "/metrics", "", nil)
	require.Equal(t, http.StatusOK, r.Code)
	for _, name := range []string{"orchestrator_ws_open_sockets", "orchestrator_ws_frames_in_total", "orchestrator_ws_frames_out_total",
		"orchestrator_ws_send_buffer_drops_total", "orchestrator_ws_disconnects_total", "orchestrator_ws_delivery_latency_seconds",
		"orchestrator_ws_listener_reconnects_total"} {
		require.Contains(t, string(r.Body), name)
	}
}
