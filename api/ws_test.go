package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

func withRealtime(o RealtimeOptions) envOption { return func(d *Deps) { d.Realtime = o } }
func withContext(ctx context.Context) envOption {
	return func(d *Deps) { d.Context = ctx }
}

// wsInstance is one API instance served over real HTTP.
type wsInstance struct {
	*env
	srv *httptest.Server
}

func serve(t *testing.T, e *env) *wsInstance {
	srv := httptest.NewServer(e.router)
	t.Cleanup(srv.Close)
	return &wsInstance{env: e, srv: srv}
}

func (in *wsInstance) wsURL(query string) string {
	u := "ws" + strings.TrimPrefix(in.srv.URL, "http") + "/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// wsClient is a real gorilla/websocket client.
type wsClient struct {
	t    *testing.T
	conn *websocket.Conn
}

func (in *wsInstance) dial(t *testing.T, token, query string) *wsClient {
	t.Helper()
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	conn, resp, err := websocket.DefaultDialer.Dial(in.wsURL(query), h)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	t.Cleanup(func() { _ = conn.Close() })
	return &wsClient{t: t, conn: conn}
}

// dialSlow connects with a tiny socket receive buffer, so a client that never reads fills
// the TCP window after a few KiB and the server's writes block, whatever the machine's load.
func (in *wsInstance) dialSlow(t *testing.T, token string) *wsClient {
	t.Helper()
	d := *websocket.DefaultDialer
	d.NetDialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var nd net.Dialer
		nd.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			if err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			}); err != nil {
				return err
			}
			return serr
		}
		return nd.DialContext(ctx, network, addr)
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	conn, resp, err := d.Dial(in.wsURL(""), h)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	t.Cleanup(func() { _ = conn.Close() })
	return &wsClient{t: t, conn: conn}
}

func (c *wsClient) send(v any) {
	c.t.Helper()
	require.NoError(c.t, c.conn.WriteJSON(v))
}

// next returns the next frame that is not a Presence (unless want is Presence).
func (c *wsClient) next(want string) map[string]any {
	c.t.Helper()
	for {
		require.NoError(c.t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
		_, data, err := c.conn.ReadMessage()
		require.NoError(c.t, err)
		var m map[string]any
		require.NoError(c.t, json.Unmarshal(data, &m))
		if m["type"] == "Presence" && want != "Presence" {
			continue
		}
		if want != "" {
			require.Equal(c.t, want, m["type"], "frame %s", data)
		}
		return m
	}
}

// quiet proves nothing else was queued for the client: a Ping's answer comes next.
func (c *wsClient) quiet() {
	c.t.Helper()
	id := uuid.NewString()
	c.send(map[string]any{"type": "Ping", "client_id": id})
	m := c.next("Ack")
	require.Equal(c.t, id, m["client_id"])
	require.Equal(c.t, "pong", m["status"])
}

func wsDM(to uuid.UUID, clientID string) map[string]any {
	m := dm(to)
	m["type"] = "SendMessage"
	m["client_id"] = clientID
	return m
}

func (e *env) sessions(u uuid.UUID) int {
	return e.count(`SELECT count(*) FROM ws_sessions WHERE user_id = $1`, u)
}

func TestWSSendAckDeliverAndRESTPush(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	fan := in.dial(t, w.gold.Token, "")
	phone := in.dial(t, w.creator.Token, "")
	laptop := in.dial(t, w.creator.Token, "")

	fan.send(wsDM(w.creator.ID, "c1"))
	ack := fan.next("Ack")
	require.Equal(t, "c1", ack["client_id"])
	require.Equal(t, "sent", ack["status"])
	id := ack["message_id"].(string)
	for _, dev := range []*wsClient{phone, laptop} {
		m := dev.next("NewMessage")
		require.Equal(t, id, m["message_id"])
		require.Equal(t, w.gold.ID.String(), m["sender_id"])
		require.NotEmpty(t, m["encrypted_content"])
		require.NotEmpty(t, m["nonce"])
		require.NotEmpty(t, m["sent_at"])
	}

	// A reply over REST reaches the fan's socket: one delivery path.
	r := e.do(http.MethodPost, "/api/v1/messages", w.creator.Token, dm(w.gold.ID))
	require.Equal(t, http.StatusCreated, r.Code)
	m := fan.next("NewMessage")
	require.Equal(t, r.JSON(t)["id"], m["message_id"])
	fan.quiet()
	require.Equal(t, 1, e.count(`SELECT count(*) FROM access_log WHERE action = 'message.send' AND target = $1`, id))
}

func TestWSTypingAndReadReceiptsReachOnlyTheRightPeople(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	fan := in.dial(t, w.gold.Token, "")
	creator := in.dial(t, w.creator.Token, "")
	bystander := in.dial(t, w.silver.Token, "")

	fan.send(wsDM(w.creator.ID, "c1"))
	id := fan.next("Ack")["message_id"].(string)
	creator.next("NewMessage")

	fan.send(map[string]any{"type": "Typing", "conversation_id": w.creator.ID.String(), "is_typing": true})
	ty := creator.next("Typing")
	require.Equal(t, w.gold.ID.String(), ty["user_id"])
	require.Equal(t, w.gold.ID.String(), ty["conversation_id"])
	require.Equal(t, true, ty["is_typing"])

	creator.send(map[string]any{"type": "MarkRead", "message_id": id})
	rr := fan.next("ReadReceipt")
	require.Equal(t, id, rr["message_id"])
	require.NotEmpty(t, rr["read_at"])

	// The bystander saw none of it, and may not type at the creator.
	bystander.quiet()
	bystander.send(map[string]any{"type": "Typing", "conversation_id": w.creator.ID.String(), "is_typing": true})
	require.Equal(t, "not_found", bystander.next("Error")["code"])
	// Only the recipient may mark read.
	bystander.send(map[string]any{"type": "MarkRead", "message_id": id})
	require.Equal(t, "message_not_found", bystander.next("Error")["code"])
	fan.send(map[string]any{"type": "MarkRead", "message_id": id})
	require.Equal(t, "message_not_found", fan.next("Error")["code"])
	creator.quiet()
	fan.quiet()
}

func TestWSTierRuleAndRateLimit(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	silver := in.dial(t, w.silver.Token, "")
	silver.send(wsDM(w.creator.ID, "s1"))
	er := silver.next("Error")
	require.Equal(t, "messages_not_allowed", er["code"])
	require.Equal(t, "s1", er["client_id"])

	fan := in.dial(t, w.gold.Token, "")
	for i := range 20 {
		fan.send(wsDM(w.creator.ID, "m"))
		require.Equal(t, "sent", fan.next("Ack")["status"], "message %d", i)
	}
	fan.send(wsDM(w.creator.ID, "over"))
	er = fan.next("Error")
	require.Equal(t, "rate_limited", er["code"])
	require.Equal(t, "over", er["client_id"])
	// REST and WS share the limit.
	require.Equal(t, http.StatusTooManyRequests, e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID)).Code)
	require.Equal(t, 20, e.count(`SELECT count(*) FROM messages`))

	// Bad fields are Errors too, and nothing is written.
	bad := wsDM(w.creator.ID, "bad")
	bad["nonce"] = "AAAA"
	fan.send(bad)
	require.Equal(t, "invalid_nonce", fan.next("Error")["code"])
}

func TestWSTwoInstancesDeliverAndPresence(t *testing.T) {
	e := wsEnv(t)
	a := serve(t, e)
	b := serve(t, newEnvOn(t, e.pool, withContext(t.Context())))
	w := e.dmWorld()
	// A conversation exists, so the two see each other's presence.
	require.Equal(t, http.StatusCreated, e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID)).Code)

	creator := b.dial(t, w.creator.Token, "")
	fan := a.dial(t, w.gold.Token, "")
	p := creator.next("Presence")
	require.Equal(t, w.gold.ID.String(), p["user_id"])
	require.Equal(t, "online", p["status"])

	fan.send(wsDM(w.creator.ID, "x"))
	id := fan.next("Ack")["message_id"]
	require.Equal(t, id, creator.next("NewMessage")["message_id"])

	creator.send(map[string]any{"type": "Typing", "conversation_id": w.gold.ID.String(), "is_typing": false})
	require.Equal(t, false, fan.next("Typing")["is_typing"])

	require.NoError(t, fan.conn.Close())
	p = creator.next("Presence")
	require.Equal(t, "offline", p["status"])
	require.NotEmpty(t, p["last_seen"])
}

func TestWSReconnectReplaysMissedMessagesInOrder(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	var ids []string
	for range 4 {
		r := e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID))
		require.Equal(t, http.StatusCreated, r.Code)
		ids = append(ids, r.JSON(t)["id"].(string))
	}
	c := in.dial(t, w.creator.Token, "after="+ids[0])
	for _, id := range ids[1:] {
		require.Equal(t, id, c.next("NewMessage")["message_id"])
	}
	c.quiet()

	// An id that is not the caller's is an Error, not someone else's messages.
	other := in.dial(t, w.silver.Token, "after="+ids[0])
	require.Equal(t, "message_not_found", other.next("Error")["code"])
	other.quiet()
}

func TestWSSlowReaderIsDroppedWithoutDelayingOthers(t *testing.T) {
	e := wsEnv(t, withRealtime(RealtimeOptions{SendBuffer: 4, WriteWait: 300 * time.Millisecond}))
	in := serve(t, e)
	w := e.dmWorld()
	slow := in.dialSlow(t, w.creator.Token) // never reads
	fast := in.dial(t, w.creator.Token, "")
	fan := in.dial(t, w.gold.Token, "")
	_ = slow

	big := func() map[string]any {
		m := wsDM(w.creator.ID, "big")
		m["encrypted_content"] = randomB64(64 << 10)
		return m
	}
	for i := range 20 {
		fan.send(big())
		require.Equal(t, "sent", fan.next("Ack")["status"], "message %d", i)
		fast.next("NewMessage")
	}
	// A slow reader is not closed for being slow (it catches up from the database as it
	// drains), only once its writes block: more than the kernel's socket buffers hold (the
	// per-minute limit is the API's, so these go in directly).
	for range 150 {
		sendDirect(t, e, w.gold.ID, w.creator.ID, 64<<10)
		fast.next("NewMessage")
	}
	// The slow device's writes block past WriteWait: it is closed; the fast one read
	// everything meanwhile.
	require.Eventually(t, func() bool { return e.sessions(w.creator.ID) == 1 }, 60*time.Second, 50*time.Millisecond,
		"the slow reader was not dropped")
	require.Equal(t, 1, e.sessions(w.creator.ID))
	fast.quiet()
}

func TestWSMalformedAndOversizeFrames(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	c := in.dial(t, w.gold.Token, "")

	require.NoError(t, c.conn.WriteMessage(websocket.TextMessage, []byte("not json")))
	require.Equal(t, "invalid_frame", c.next("Error")["code"])
	c.send(map[string]any{"type": "Shout"})
	require.Equal(t, "unknown_type", c.next("Error")["code"])
	c.send(map[string]any{"type": "SendMessage", "recipient_id": w.creator.ID.String(), "client_id": "u", "plaintext": "hi"})
	er := c.next("Error")
	require.Equal(t, "unknown_field", er["code"])
	c.send(map[string]any{"type": "MarkRead", "message_id": 5})
	require.Equal(t, "wrong_type", c.next("Error")["code"])
	c.quiet() // still open
	require.Zero(t, e.count(`SELECT count(*) FROM messages`))

	// A frame over the limit closes with 1009.
	// The write itself may fail part-way: the server stops reading at the header.
	_ = c.conn.WriteMessage(websocket.TextMessage, bytes.Repeat([]byte("x"), 200<<10))
	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		_, _, err := c.conn.ReadMessage()
		if err != nil {
			require.True(t, websocket.IsCloseError(err, websocket.CloseMessageTooBig), "got %v", err)
			break
		}
	}
}

func TestWSUnresponsiveClientIsDropped(t *testing.T) {
	e := wsEnv(t, withRealtime(RealtimeOptions{PingInterval: 100 * time.Millisecond, PongWait: 600 * time.Millisecond}))
	in := serve(t, e)
	w := e.dmWorld()
	// The live client reads (gorilla answers pings while reading); the dead one never reads,
	// so it never answers a ping.
	live := in.dial(t, w.creator.Token, "")
	dead := in.dial(t, w.gold.Token, "")
	_ = dead
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			if _, _, err := live.conn.ReadMessage(); err != nil {
				return
			}
		}
	}()
	require.Eventually(t, func() bool { return e.sessions(w.gold.ID) == 0 }, 10*time.Second, 50*time.Millisecond)
	time.Sleep(time.Second)
	require.Equal(t, 1, e.sessions(w.creator.ID), "a client that answers pings stays")
	_ = live.conn.Close()
	wg.Wait()
}

func TestWSAuthenticationOriginTokenNotLoggedAndShutdown(t *testing.T) {
	var logs bytes.Buffer
	var logMu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e := newEnvOn(t, mustFresh(t), withContext(ctx), func(d *Deps) {
		d.Config.Auth.AllowedOrigins = []string{"https://app.example"}
		d.Logger = slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	})
	in := serve(t, e)
	w := e.dmWorld()

	_, resp, err := websocket.DefaultDialer.Dial(in.wsURL(""), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	expired, err := IssueToken(testSecret, w.gold.ID, RoleFan, -time.Hour, time.Now())
	require.NoError(t, err)
	_, resp, err = websocket.DefaultDialer.Dial(in.wsURL("token="+expired), nil)
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)

	h := http.Header{"Origin": {"https://evil.example"}}
	_, resp, err = websocket.DefaultDialer.Dial(in.wsURL("token="+w.gold.Token), h)
	require.Error(t, err)
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	h = http.Header{"Origin": {"https://app.example"}}
	browser, _, err := websocket.DefaultDialer.Dial(in.wsURL("token="+w.gold.Token), h)
	require.NoError(t, err)
	defer browser.Close()
	c := &wsClient{t: t, conn: browser}
	c.quiet()

	// Shutdown closes with 1001 going away.
	cancel()
	require.NoError(t, browser.SetReadDeadline(time.Now().Add(10*time.Second)))
	for {
		_, _, err := browser.ReadMessage()
		if err != nil {
			require.True(t, websocket.IsCloseError(err, websocket.CloseGoingAway), "got %v", err)
			break
		}
	}

	logMu.Lock()
	defer logMu.Unlock()
	require.Contains(t, logs.String(), "route=/ws")
	require.NotContains(t, logs.String(), w.gold.Token)
	require.NotContains(t, logs.String(), expired)
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// wsEnv is an API on a fresh database whose real-time side stops when the test ends.
func wsEnv(t *testing.T, opts ...envOption) *env {
	return newEnvOn(t, mustFresh(t), append([]envOption{withContext(t.Context())}, opts...)...)
}

func mustFresh(t *testing.T) *pgxpool.Pool {
	pool, _ := testharness.FreshDB(t)
	return pool
}
