package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"golang.org/x/time/rate"

	"github.com/creatorvault/orchestrator/db"
)

// WebSocket close codes the server uses (the README's "Real-time" section lists them).
const (
	closeGoingAway   = websocket.CloseGoingAway         // 1001: shutdown; reconnect elsewhere with after=
	closePolicy      = websocket.ClosePolicyViolation   // 1008: the session was revoked (sign-in, issue 18)
	closeMessageSize = websocket.CloseMessageTooBig     // 1009: frame over the limit
	closeInternal    = websocket.CloseInternalServerErr // 1011: could not catch up; reconnect with after=
	// closeTokenExpired (4001): the token's exp has passed. Reconnect with a fresh token and
	// after=<the last message id received>: nothing is lost.
	closeTokenExpired = 4001
)

// reasonFor is the disconnect metric's reason of a close code the server chose.
func reasonFor(code int) string {
	switch code {
	case closeGoingAway:
		return reasonShutdown
	case closeMessageSize:
		return reasonFrameTooBig
	case closeTokenExpired:
		return reasonTokenExpired
	case closeInternal:
		return reasonReplayFailed
	}
	return reasonClient
}

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
// WS_ALLOWED_ORIGINS and the user's socket cap, upgrades, and starts the connection's read
// pump and write pump (and returns); the write pump also sends the Presence burst and
// replays what the client missed after ?after=<message id>, page by page as the socket drains.
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
	h := s.hub
	if err := h.start(c); err != nil {
		fail(c, http.StatusServiceUnavailable, "unavailable", "real-time delivery is not available")
		return
	}
	ctx := c.Request.Context()
	conn := &wsConn{h: h, user: p, id: uuid.New(), exp: tokenExpiry(raw), send: make(chan *outFrame, h.opts.SendBuffer),
		kick: make(chan struct{}, 1), done: make(chan struct{}), drained: make(chan struct{})}
	opened, err := db.OpenSession(ctx, s.pool, db.WSSession{ID: conn.id, UserID: p.UserID, Instance: h.instance}, s.now(),
		h.opts.MaxSocketsPerUser, h.opts.Lease)
	if err != nil {
		s.internalError(c, err)
		return
	}
	if !opened {
		c.Header("Retry-After", "60")
		fail(c, http.StatusTooManyRequests, "too_many_sockets",
			"at most "+strconv.Itoa(h.opts.MaxSocketsPerUser)+" WebSockets per user; close another first")
		return
	}
	// closeSession ends the session row; it runs when the connection ends, on whichever
	// goroutine that happens.
	closeSession := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := db.CloseSession(cctx, s.pool, conn.id, p.UserID, s.now()); err != nil {
			s.logger.Warn("real-time: close session", "error", err)
		}
	}
	up := websocket.Upgrader{
		// Reads use the buffer the HTTP server read the handshake with; writes borrow a
		// buffer from a pool only while a frame is written, so an idle socket holds no
		// buffer of its own but that one.
		WriteBufferPool: wsWriteBuffers,
		// The Origin was checked above against the allow-list; clients without one are not
		// browsers.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	// Where this socket starts: after the client's message, or where this hub's deliveries
	// stand now. The socket is registered for live events before the client is told it is
	// connected (the 101): a client that has a message sent (or someone typing to it) the
	// moment it is connected gets it.
	conn.base = h.currentFloor()
	if after != uuid.Nil {
		k, err := db.MessageKeyFor(ctx, s.pool, p.UserID, after)
		if err != nil {
			code, msg := "internal", "could not replay missed messages"
			if e, ok := db.AsError(err); ok {
				code, msg = e.Code, e.Message
			}
			conn.offer(outFrame{typ: "Error", b: mustJSON(errorFrame{Type: "Error", Code: code, Message: msg})})
		} else {
			conn.base, conn.catchingUp, conn.dirty = k, true, true
		}
	}
	// Presence: tell this device who of its contacts is online (written as the socket drains).
	if online, err := db.OnlineContacts(ctx, s.pool, p.UserID, h.opts.Lease); err == nil {
		conn.burst, conn.burstAt = online, s.now().UTC()
	}
	h.register(conn)
	ws, err := up.Upgrade(c.Writer, c.Request, nil)
	if err != nil {
		h.unregister(conn)
		closeSession()
		return // the upgrader has answered
	}
	conn.ws = ws
	// The read pump runs on its own goroutine and this handler returns: the HTTP server's
	// request, response and connection state (and this goroutine's deep stack) are freed
	// while the socket stays open. The pump gets a copy of the gin context and a context of
	// its own that ends with the socket (the request's ends when the handler returns).
	pumpCtx, cancelPump := context.WithCancel(context.WithoutCancel(c.Request.Context()))
	gc := c.Copy()
	gc.Request = c.Request.WithContext(pumpCtx)
	// A revoked session, a changed role or an erased user closes the socket at once.
	unwatch := s.revoked.watch(p, func(reason string) { conn.closeFor(closePolicy, reason, reasonRevoked) })
	go conn.writePump()
	// A revocation that arrived between the token check and the watch: close now.
	if err := s.revoked.check(c.Request.Context(), p); err != nil {
		conn.closeFor(closePolicy, "session ended", reasonRevoked)
	}
	go func() {
		defer closeSession()
		defer h.unregister(conn)
		defer unwatch()
		defer cancelPump()
		conn.readPump(gc, s)
	}()
}

// wsWriteBuffers are the write buffers every socket borrows from while it writes.
var wsWriteBuffers = &sync.Pool{}

// tokenExpiry is the exp of a token ParseToken has already verified.
func tokenExpiry(raw string) time.Time {
	var cl jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &cl); err != nil || cl.ExpiresAt == nil {
		return time.Time{}
	}
	return cl.ExpiresAt.Time
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

// ---- one connection ----

// outFrame is one frame waiting for the write pump; msg is set for a NewMessage.
type outFrame struct {
	typ string
	b   []byte
	msg *db.Message
}

// wsConn is one open WebSocket. The read pump runs on a goroutine of its own; the write pump owns
// every write. NewMessages reach the client in one of two ways: live, through the bounded send
// buffer, or, while the socket catches up (after ?after=, when the buffer was full, after the
// listener reconnected), from the database page by page as fast as the client reads. Only a
// client that stops reading (a write blocked for WriteWait) or answering pings is closed.
type wsConn struct {
	h    *wsHub
	ws   *websocket.Conn
	user Principal
	id   uuid.UUID
	exp  time.Time
	// send holds pointers: an idle socket's buffer costs 8 bytes a slot, not a frame's 48.
	send chan *outFrame
	kick chan struct{} // wakes the write pump to catch up

	closeOnce sync.Once
	done      chan struct{}
	// drained is closed when the read pump has read what the client was still sending after
	// an oversize frame, so closing the socket does not reset the connection before the
	// client has read the 1009 close frame.
	drained     chan struct{}
	closeCode   int
	closeText   string
	closeReason string

	// burst is the Presence of the contacts online at connect, written before anything else.
	burst   []uuid.UUID
	burstAt time.Time

	mu sync.Mutex
	// catchingUp: NewMessages come from the database, not the hub; dirty: something may have
	// been committed since the last page was read.
	catchingUp, dirty bool
	// base is where a catch-up may start at the earliest (the after= message, or the hub's
	// floor at connect); mark is the newest NewMessage written, once there is one.
	base db.MessageKey
	mark *db.MessageKey
	// cursor is where the current catch-up pass has read to (nil between passes).
	cursor *db.MessageKey
	// recent remembers the NewMessages written lately, so a message both replayed and
	// announced is written once (the write pump's own).
	recent recentIDs

	markRead *rate.Limiter
}

// catchUpMargin is how far before the newest message written a catch-up looks again, for a
// message committed later than a newer one (concurrent senders); recent drops the repeats.
const catchUpMargin = time.Second

// offer queues a frame, or drops it (counted) when the buffer is full: for frames that are
// not worth holding up the sender or closing the socket for (Typing, Presence, receipts).
func (c *wsConn) offer(f outFrame) {
	select {
	case <-c.done:
	case c.send <- &f:
	default:
		wsSendDrops.WithLabelValues(f.typ).Inc()
	}
}

// reply queues an answer to the client's own frame (Ack, Error), waiting for room: a client
// that does not read its answers slows down its own sending, nobody else's.
func (c *wsConn) reply(f any, typ string) {
	select {
	case <-c.done:
	case c.send <- &outFrame{typ: typ, b: mustJSON(f)}:
	}
}

// deliver hands a live new message to the write pump, or has the socket catch up from the
// database when it is catching up already or its buffer is full: nothing waits, nothing is
// lost.
func (c *wsConn) deliver(m db.Message, b []byte) {
	c.mu.Lock()
	if c.catchingUp {
		c.dirty = true
		c.mu.Unlock()
		c.wake()
		return
	}
	c.mu.Unlock()
	select {
	case c.send <- &outFrame{typ: "NewMessage", b: b, msg: &m}:
	default:
		wsSendDrops.WithLabelValues("NewMessage").Inc()
		c.catchUp()
	}
}

// catchUp makes the write pump read what this socket has not been sent from the database.
func (c *wsConn) catchUp() {
	c.mu.Lock()
	c.catchingUp, c.dirty = true, true
	c.mu.Unlock()
	c.wake()
}

func (c *wsConn) wake() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// close ends the connection once: the write pump sends a close frame with code and closes
// the socket, which also ends the read pump.
func (c *wsConn) close(code int, text string) { c.closeFor(code, text, reasonFor(code)) }

func (c *wsConn) closeFor(code int, text, reason string) {
	c.closeOnce.Do(func() {
		c.closeCode, c.closeText, c.closeReason = code, text, reason
		wsDisconnects.WithLabelValues(reason).Inc()
		close(c.done)
	})
}

// errStop ends the write pump: the connection is closing.
var errStop = errors.New("connection closing")

func (c *wsConn) writePump() {
	o := c.h.opts
	ticker := time.NewTicker(o.PingInterval)
	var expired <-chan time.Time
	if !c.exp.IsZero() {
		t := time.NewTimer(time.Until(c.exp))
		defer t.Stop()
		expired = t.C
	}
	defer func() {
		ticker.Stop()
		_ = c.ws.Close()
	}()
	// between is checked between frames of a burst or a replay: pings still go out, and a
	// closing connection or an expired token stops it.
	between := func() error {
		select {
		case <-c.done:
			return errStop
		case <-expired:
			c.close(closeTokenExpired, "token expired: reconnect with a fresh token and after=")
			return errStop
		case <-ticker.C:
			return c.write(websocket.PingMessage, nil)
		default:
			return nil
		}
	}
	err := c.writeBurst(between)
	for err == nil {
		if c.catching() {
			err = c.catchUpPage(between)
			continue
		}
		select {
		case f := <-c.send:
			err = c.writeFrame(*f, true)
		case <-c.kick:
		case <-ticker.C:
			err = c.write(websocket.PingMessage, nil)
		case <-expired:
			c.close(closeTokenExpired, "token expired: reconnect with a fresh token and after=")
			err = errStop
		case <-c.done:
			err = errStop
		}
	}
	if !errors.Is(err, errStop) {
		c.closeFor(websocket.CloseAbnormalClosure, "", reasonWriteFailed)
	}
	if c.closeCode != websocket.CloseAbnormalClosure {
		// A client that stopped reading failed a write and gets no close frame; one that reads,
		// however slowly, gets its close code (4001 after a long replay, say).
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(c.closeCode, c.closeText),
			time.Now().Add(o.WriteWait))
	}
	if c.closeCode == closeMessageSize {
		select { // the closing handshake: let the client read the close frame first
		case <-c.drained:
		case <-time.After(2 * time.Second):
		}
	}
}

// write writes one frame within WriteWait; a client that reads nothing for that long fails it.
func (c *wsConn) write(kind int, b []byte) error {
	deadline := time.Now().Add(c.h.opts.WriteWait)
	if kind == websocket.PingMessage {
		return c.ws.WriteControl(kind, b, deadline)
	}
	_ = c.ws.SetWriteDeadline(deadline)
	return c.ws.WriteMessage(kind, b)
}

// writeFrame writes a queued frame. A NewMessage this socket was already sent is skipped.
func (c *wsConn) writeFrame(f outFrame, live bool) error {
	if f.msg != nil && !c.written(*f.msg) {
		return nil
	}
	if err := c.write(websocket.TextMessage, f.b); err != nil {
		return err
	}
	wsFramesOut.WithLabelValues(f.typ).Inc()
	if f.msg != nil && live {
		wsDeliveryLatency.Observe(time.Since(f.msg.SentAt).Seconds())
	}
	return nil
}

// written records m as sent to this socket, and reports false when it already was.
func (c *wsConn) written(m db.Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.recent.add(m.ID, m.SentAt) {
		return false
	}
	if k := m.Key(); c.mark == nil || keyAfter(k, *c.mark) {
		c.mark = &k
	}
	return true
}

// writeBurst writes the Presence of the contacts online at connect, one frame at a time.
func (c *wsConn) writeBurst(between func() error) error {
	for i, u := range c.burst {
		b := mustJSON(presenceFrame{Type: "Presence", UserID: u, Status: "online", LastSeen: c.burstAt})
		if err := c.writeFrame(outFrame{typ: "Presence", b: b}, false); err != nil {
			return err
		}
		c.burst[i] = uuid.Nil
		if err := between(); err != nil {
			return err
		}
	}
	c.burst = nil
	return nil
}

func (c *wsConn) catching() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.catchingUp
}

// catchUpPage writes what is queued, then one page of missed messages from the database. A
// pass starts at base, or a margin before the newest message written, and pages forward; when
// it reaches the end and nothing was announced meanwhile, the socket is live again. An
// announcement that comes later is delivered live and, if a page had it, skipped.
func (c *wsConn) catchUpPage(between func() error) error {
	for drained := false; !drained; {
		select {
		case f := <-c.send:
			if err := c.writeFrame(*f, true); err != nil {
				return err
			}
		default:
			drained = true
		}
	}
	c.mu.Lock()
	if c.cursor == nil {
		c.dirty = false
		from := c.base
		if c.mark != nil {
			if back := (db.MessageKey{At: c.mark.At.Add(-catchUpMargin)}); keyAfter(back, from) {
				from = back
			}
		}
		c.cursor = &from
	}
	from := *c.cursor
	c.mu.Unlock()
	page := c.h.opts.ReplayPage
	ctx, cancel := context.WithTimeout(c.h.ctx, 10*time.Second)
	msgs, err := db.MessagesAfterKey(ctx, c.h.s.pool, c.user.UserID, from, page)
	cancel()
	if err != nil {
		c.h.warn("real-time: catch up", err)
		c.close(closeInternal, "could not read missed messages: reconnect with after=")
		return errStop
	}
	for i := range msgs {
		m := &msgs[i]
		k := m.Key()
		c.mu.Lock()
		c.cursor = &k
		c.mu.Unlock()
		if c.recent.has(m.ID) {
			continue
		}
		if err := c.writeFrame(outFrame{typ: "NewMessage", b: mustJSON(newMessageFrameOf(*m)), msg: m}, false); err != nil {
			return err
		}
		msgs[i] = db.Message{} // let the page's memory go as it is written
		if err := between(); err != nil {
			return err
		}
	}
	if len(msgs) == page {
		return nil // more to come
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cursor = nil
	if !c.dirty {
		c.catchingUp = false
	}
	return nil
}

// recentIDs remembers the messages written to a socket in the last few seconds (and at most
// recentMax of them): enough to skip a message a catch-up pass reads again. An idle socket
// allocates nothing.
type recentIDs struct {
	order []recentID
	ids   map[uuid.UUID]struct{}
}

type recentID struct {
	id uuid.UUID
	at time.Time
}

const recentMax = 4096

func (r *recentIDs) has(id uuid.UUID) bool {
	_, ok := r.ids[id]
	return ok
}

// add records id, sent at at, and reports false when it was there already.
func (r *recentIDs) add(id uuid.UUID, at time.Time) bool {
	if r.has(id) {
		return false
	}
	if r.ids == nil {
		r.ids = map[uuid.UUID]struct{}{}
	}
	r.ids[id] = struct{}{}
	r.order = append(r.order, recentID{id: id, at: at})
	drop := 0
	for drop < len(r.order)-1 && (len(r.order)-drop > recentMax || r.order[drop].at.Before(at.Add(-3*catchUpMargin))) {
		delete(r.ids, r.order[drop].id)
		drop++
	}
	if drop > 0 {
		r.order = append(r.order[:0], r.order[drop:]...)
	}
	return true
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
			var ne net.Error
			switch {
			case errors.Is(err, websocket.ErrReadLimit):
				// Close with 1009, then discard the rest of the frame and the client's close
				// reply for a moment: closing a socket with unread input resets it, and the
				// client would never see the close code.
				c.close(closeMessageSize, "frame too large")
				raw := c.ws.NetConn()
				_ = raw.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = io.Copy(io.Discard, raw)
				close(c.drained)
			case errors.As(err, &ne) && ne.Timeout():
				c.closeFor(websocket.CloseAbnormalClosure, "", reasonPingTimeout)
			default:
				c.closeFor(websocket.CloseAbnormalClosure, "", reasonClient)
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
	c.reply(errorFrame{Type: "Error", Code: code, Message: message, ClientID: clientID}, "Error")
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
	switch env.Type {
	case "SendMessage", "Typing", "MarkRead", "Ping":
		wsFramesIn.WithLabelValues(env.Type).Inc()
	default:
		wsFramesIn.WithLabelValues("unknown").Inc()
	}
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
		c.reply(ackFrame{Type: "Ack", ClientID: f.ClientID, MessageID: &m.ID, Status: "sent"}, "Ack")
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
		if !c.h.typingAllowed(c.user.UserID, to) {
			return // passed on at most once per TypingInterval; the rest are dropped
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
		if c.markRead == nil {
			c.markRead = rate.NewLimiter(rate.Limit(c.h.opts.MarkReadPerSecond), max(1, int(2*c.h.opts.MarkReadPerSecond)))
		}
		if !c.markRead.Allow() {
			c.fail("rate_limited", "too many MarkRead frames; slow down", "")
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
		c.reply(ackFrame{Type: "Ack", ClientID: f.ClientID, Status: "pong"}, "Ack")
	case "":
		c.fail("invalid_frame", "a frame needs a type", clientID)
	default:
		c.fail("unknown_type", "unknown frame type "+env.Type+" (want SendMessage, Typing, MarkRead or Ping)", clientID)
	}
}
