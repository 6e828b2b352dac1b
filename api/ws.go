package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/creatorvault/orchestrator/db"
)

// WebSocket close codes the server uses.
const (
	closeGoingAway   = websocket.CloseGoingAway       // 1001: shutdown
	closePolicy      = websocket.ClosePolicyViolation // 1008: too slow to keep up
	closeMessageSize = websocket.CloseMessageTooBig   // 1009: frame over the limit
)

// registerRealtime adds GET /ws, the WebSocket for real-time delivery.
func (s *Server) registerRealtime(r *gin.Engine) {
	r.GET("/ws", s.serveWS)
}

// ---- frames ----

type newMessageFrame struct {
	Type             string    `json:"type"`
	MessageID        uuid.UUID `json:"message_id"`
	SenderID         uuid.UUID `json:"sender_id"`
	EncryptedContent string    `json:"encrypted_content"`
	Nonce            string    `json:"nonce"`
	SentAt           time.Time `json:"sent_at"`
}

type ackFrame struct {
	Type      string     `json:"type"`
	ClientID  string     `json:"client_id"`
	MessageID *uuid.UUID `json:"message_id"`
	Status    string     `json:"status"`
}

type typingOutFrame struct {
	Type           string    `json:"type"`
	ConversationID uuid.UUID `json:"conversation_id"`
	UserID         uuid.UUID `json:"user_id"`
	IsTyping       bool      `json:"is_typing"`
}

type readReceiptFrame struct {
	Type      string    `json:"type"`
	MessageID uuid.UUID `json:"message_id"`
	ReadAt    time.Time `json:"read_at"`
}

type presenceFrame struct {
	Type     string    `json:"type"`
	UserID   uuid.UUID `json:"user_id"`
	Status   string    `json:"status"`
	LastSeen time.Time `json:"last_seen"`
}

type errorFrame struct {
	Type     string `json:"type"`
	Code     string `json:"code"`
	Message  string `json:"message"`
	ClientID string `json:"client_id,omitempty"`
}

// Client frames, decoded strictly once the type is known.
type sendMessageFrame struct {
	Type             string `json:"type"`
	RecipientID      string `json:"recipient_id"`
	EncryptedContent string `json:"encrypted_content"`
	Nonce            string `json:"nonce"`
	ClientID         string `json:"client_id"`
}

type typingInFrame struct {
	Type           string `json:"type"`
	ConversationID string `json:"conversation_id"`
	IsTyping       bool   `json:"is_typing"`
}

type markReadFrame struct {
	Type      string `json:"type"`
	MessageID string `json:"message_id"`
}

type pingFrame struct {
	Type     string `json:"type"`
	ClientID string `json:"client_id"`
}

// ---- the handler ----

// serveWS authenticates (Authorization header, or the token query parameter for browsers:
// the access log records the route pattern only, never the query), checks the Origin against
// WS_ALLOWED_ORIGINS, upgrades, replays what the client missed after ?after=<message id>,
// and then runs the connection: this goroutine is the read pump, another the write pump.
func (s *Server) serveWS(c *gin.Context) {
	raw, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		raw = c.Query("token")
	}
	if raw == "" {
		s.audit(c, nil, "auth.failed", "/ws", "missing token")
		fail(c, http.StatusUnauthorized, "unauthenticated", "send Authorization: Bearer <token> or ?token=")
		return
	}
	p, err := s.verifyToken(c, raw)
	if err != nil {
		s.refuseToken(c, "/ws", err)
		return
	}
	if origin := c.GetHeader("Origin"); origin != "" && !slices.Contains(s.cfg.Auth.AllowedOrigins, origin) {
		forbidden(c, "this origin may not open a WebSocket (WS_ALLOWED_ORIGINS)")
		return
	}
	after, ok := queryUUID(c, "after")
	if !ok {
		return
	}
	h := s.rt
	if err := h.start(c); err != nil {
		fail(c, http.StatusServiceUnavailable, "unavailable", "real-time delivery is not available")
		return
	}
	up := websocket.Upgrader{
		ReadBufferSize:  4096,
		WriteBufferSize: 4096,
		// The Origin was checked above against the allow-list; clients without one are not
		// browsers.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	ws, err := up.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		return // the upgrader has answered
	}
	conn := &wsConn{h: h, ws: ws, user: p, id: uuid.New(), send: make(chan []byte, h.opts.SendBuffer),
		done: make(chan struct{}), drained: make(chan struct{}), replaying: true, seen: map[uuid.UUID]bool{}}
	h.register(conn)
	// A revoked session, a changed role or an erased user closes the socket at once.
	defer s.revoked.watch(p, func(reason string) { conn.close(closePolicy, reason) })()
	go conn.writePump()
	// A revocation that arrived between the token check and the watch: close now.
	if err := s.revoked.check(c.Request.Context(), p); err != nil {
		conn.close(closePolicy, "session ended")
	}

	// Presence: this device is online; tell it who of its contacts is.
	ctx := c.Request.Context()
	if err := db.OpenSession(ctx, s.pool, conn.id, p.UserID, h.instance, s.now()); err != nil {
		s.logger.Warn("real-time: open session", "error", err)
	}
	defer func() {
		h.unregister(conn)
		conn.close(websocket.CloseNormalClosure, "")
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := db.CloseSession(cctx, s.pool, conn.id, p.UserID, s.now()); err != nil {
			s.logger.Warn("real-time: close session", "error", err)
		}
	}()
	if online, err := db.OnlineContacts(ctx, s.pool, p.UserID); err == nil {
		for _, u := range online {
			b, _ := json.Marshal(presenceFrame{Type: "Presence", UserID: u, Status: "online", LastSeen: s.now().UTC()})
			conn.enqueue(b)
		}
	}

	// Replay first, then whatever arrived meanwhile, in order and without duplicates.
	if after != uuid.Nil {
		msgs, err := db.MessagesAfter(ctx, s.pool, p.UserID, after, h.opts.ReplayLimit)
		if err != nil {
			var e *db.Error
			code, msg := "internal", "could not replay missed messages"
			if errors.As(err, &e) {
				code, msg = e.Code, e.Message
			}
			conn.sendFrame(errorFrame{Type: "Error", Code: code, Message: msg})
		}
		for _, m := range msgs {
			b, _ := json.Marshal(newMessageFrameOf(m))
			conn.deliverReplay(m.ID, b)
		}
	}
	conn.endReplay()
	conn.readPump(c, s)
}

// ---- one connection ----

// wsConn is one open WebSocket. The read pump is the handler's goroutine; the write pump owns
// every data write. send is bounded: a client that lets it fill up is disconnected.
type wsConn struct {
	h    *realtime
	ws   *websocket.Conn
	user Principal
	id   uuid.UUID
	send chan []byte

	closeOnce sync.Once
	done      chan struct{}
	// drained is closed when the read pump has read what the client was still sending after
	// an oversize frame, so closing the socket does not reset the connection before the
	// client has read the 1009 close frame.
	drained   chan struct{}
	closeCode int
	closeText string

	// Until the replay is done, live messages wait in pending; seen drops duplicates.
	mu        sync.Mutex
	replaying bool
	pending   [][]byte
	pendingID []uuid.UUID
	seen      map[uuid.UUID]bool
}

// enqueue hands a frame to the write pump, or disconnects a client that cannot keep up.
func (c *wsConn) enqueue(b []byte) {
	select {
	case <-c.done:
	case c.send <- b:
	default:
		c.close(closePolicy, "too slow: send buffer full")
	}
}

func (c *wsConn) sendFrame(f any) {
	b, _ := json.Marshal(f)
	c.enqueue(b)
}

// deliver pushes a live new message, holding it back while the replay runs.
func (c *wsConn) deliver(id uuid.UUID, b []byte) {
	c.mu.Lock()
	if c.replaying {
		c.pending = append(c.pending, b)
		c.pendingID = append(c.pendingID, id)
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	c.enqueue(b)
}

func (c *wsConn) deliverReplay(id uuid.UUID, b []byte) {
	c.mu.Lock()
	c.seen[id] = true
	c.mu.Unlock()
	c.enqueue(b)
}

func (c *wsConn) endReplay() {
	c.mu.Lock()
	pending, ids := c.pending, c.pendingID
	for i, b := range pending {
		if !c.seen[ids[i]] {
			c.enqueue(b)
		}
	}
	c.replaying, c.pending, c.pendingID, c.seen = false, nil, nil, nil
	c.mu.Unlock()
}

// close ends the connection once: the write pump sends a close frame with code and closes
// the socket, which also ends the read pump.
func (c *wsConn) close(code int, text string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText = code, text
		close(c.done)
	})
}

func (c *wsConn) writePump() {
	o := c.h.opts
	ticker := time.NewTicker(o.PingInterval)
	defer func() {
		ticker.Stop()
		_ = c.ws.Close()
	}()
	for {
		select {
		case b := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(o.WriteWait))
			if err := c.ws.WriteMessage(websocket.TextMessage, b); err != nil {
				c.close(websocket.CloseAbnormalClosure, "")
				return
			}
		case <-ticker.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(o.WriteWait)); err != nil {
				c.close(websocket.CloseAbnormalClosure, "")
				return
			}
		case <-c.done:
			if c.closeCode != websocket.CloseAbnormalClosure {
				// A short deadline: a client too slow to read must not hold its socket open.
				_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText),
					time.Now().Add(min(o.WriteWait, time.Second)))
			}
			if c.closeCode == closeMessageSize {
				select { // the closing handshake: let the client read the close frame first
				case <-c.drained:
				case <-time.After(2 * time.Second):
				}
			}
			return
		}
	}
}

// readPump reads client frames until the connection ends. Any frame or pong proves the client
// alive; silence for PongWait drops it.
func (c *wsConn) readPump(gc *gin.Context, s *Server) {
	o := c.h.opts
	c.ws.SetReadLimit(o.MaxFrameBytes)
	alive := func() { _ = c.ws.SetReadDeadline(time.Now().Add(o.PongWait)) }
	alive()
	c.ws.SetPongHandler(func(string) error { alive(); return nil })
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				// Close with 1009, then discard the rest of the frame and the client's close
				// reply for a moment: closing a socket with unread input resets it, and the
				// client would never see the close code.
				c.close(closeMessageSize, "frame too large")
				raw := c.ws.NetConn()
				_ = raw.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = io.Copy(io.Discard, raw)
				close(c.drained)
			} else {
				c.close(websocket.CloseAbnormalClosure, "")
			}
			return
		}
		alive()
		c.handleFrame(gc, s, data)
		select {
		case <-c.done:
			return
		default:
		}
	}
}

func (c *wsConn) fail(code, message, clientID string) {
	c.sendFrame(errorFrame{Type: "Error", Code: code, Message: message, ClientID: clientID})
}

// handleFrame runs one client frame. A malformed frame gets an Error and the connection
// stays open.
func (c *wsConn) handleFrame(gc *gin.Context, s *Server, data []byte) {
	var env struct {
		Type     string `json:"type"`
		ClientID any    `json:"client_id"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		c.fail("invalid_frame", "a frame must be a JSON object with a type", "")
		return
	}
	clientID, _ := env.ClientID.(string)
	strict := func(v any) bool {
		if err := DecodeStrict(bytes.NewReader(data), v); err != nil {
			code, msg := "invalid_frame", "the frame is not valid"
			var de *DecodeError
			if errors.As(err, &de) {
				code, msg = de.Code, de.Message
			}
			c.fail(code, msg, clientID)
			return false
		}
		return true
	}
	ctx := gc.Request.Context()
	switch env.Type {
	case "SendMessage":
		var f sendMessageFrame
		if !strict(&f) {
			return
		}
		if f.ClientID == "" {
			c.fail("missing_field", "client_id is required", "")
			return
		}
		m, fl := s.sendMessage(gc, c.user, messageRequest{RecipientID: f.RecipientID, EncryptedContent: f.EncryptedContent, Nonce: f.Nonce})
		if fl != nil {
			c.fail(fl.Code, fl.Message, f.ClientID)
			return
		}
		c.sendFrame(ackFrame{Type: "Ack", ClientID: f.ClientID, MessageID: &m.ID, Status: "sent"})
	case "Typing":
		var f typingInFrame
		if !strict(&f) {
			return
		}
		to, err := uuid.Parse(f.ConversationID)
		if err != nil {
			c.fail("invalid_id", "conversation_id must be the other participant's user id", "")
			return
		}
		ok, err := db.MayMessage(ctx, s.pool, c.user.UserID, to, s.now())
		if err != nil {
			c.fail("internal", "could not send the typing indicator", "")
			return
		}
		if !ok || to == c.user.UserID {
			c.fail("not_found", "conversation not found", "")
			return
		}
		if err := db.NotifyTyping(ctx, s.pool, db.TypingEvent{From: c.user.UserID, To: to, IsTyping: f.IsTyping}); err != nil {
			c.fail("internal", "could not send the typing indicator", "")
		}
	case "MarkRead":
		var f markReadFrame
		if !strict(&f) {
			return
		}
		id, err := uuid.Parse(f.MessageID)
		if err != nil {
			c.fail("invalid_id", "message_id must be a UUID", "")
			return
		}
		if _, err := db.MarkRead(ctx, s.pool, c.user.UserID, id, s.now()); err != nil {
			if e, ok := db.AsError(err); ok {
				c.fail(e.Code, e.Message, "")
				return
			}
			c.fail("internal", "could not mark the message read", "")
		}
	case "Ping":
		var f pingFrame
		if !strict(&f) {
			return
		}
		c.sendFrame(ackFrame{Type: "Ack", ClientID: f.ClientID, Status: "pong"})
	case "":
		c.fail("invalid_frame", "a frame needs a type", clientID)
	default:
		c.fail("unknown_type", "unknown frame type "+env.Type+" (want SendMessage, Typing, MarkRead or Ping)", clientID)
	}
}
