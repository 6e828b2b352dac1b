package api

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/creatorvault/orchestrator/db"
)

// RealtimeOptions tune the WebSocket. Zero values take the defaults in brackets.
type RealtimeOptions struct {
	// PingInterval is how often the server pings each client [5s].
	PingInterval time.Duration
	// PongWait is how long a client may stay silent (no pong, no frame) before it is dropped
	// [30s].
	PongWait time.Duration
	// WriteWait bounds every write [10s].
	WriteWait time.Duration
	// SendBuffer is how many frames may wait for a client; a client that lets it fill up is
	// disconnected [256].
	SendBuffer int
	// MaxFrameBytes is the largest frame a client may send; a bigger one closes the
	// connection with 1009 [128 KiB: a 64 KiB ciphertext in base64 plus its fields].
	MaxFrameBytes int64
	// ReplayLimit bounds the messages replayed after ?after= [1000].
	ReplayLimit int
}

func (o RealtimeOptions) withDefaults() RealtimeOptions {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.PingInterval, 5*time.Second)
	def(&o.PongWait, 30*time.Second)
	def(&o.WriteWait, 10*time.Second)
	if o.SendBuffer <= 0 {
		o.SendBuffer = 256
	}
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = 128 << 10
	}
	if o.ReplayLimit <= 0 {
		o.ReplayLimit = 1000
	}
	return o
}

// realtime is one API instance's hub: the registry of its open WebSockets by user (several
// devices per user), and one dedicated PostgreSQL connection LISTENing for the events of every
// instance. Events carry ids only; the hub loads what it pushes. The registry lock is never
// held across I/O: pushing only enqueues into a connection's bounded buffer.
type realtime struct {
	s        *Server
	ctx      context.Context
	opts     RealtimeOptions
	instance uuid.UUID

	mu    sync.RWMutex
	conns map[uuid.UUID]map[*wsConn]struct{}

	startOnce sync.Once
	ready     chan struct{}
}

func newRealtime(s *Server, ctx context.Context, opts RealtimeOptions) *realtime {
	if ctx == nil {
		ctx = context.Background()
	}
	return &realtime{s: s, ctx: ctx, opts: opts.withDefaults(), instance: uuid.New(),
		conns: map[uuid.UUID]map[*wsConn]struct{}{}, ready: make(chan struct{})}
}

// start runs the listener and the shutdown watcher on first use, and waits until LISTEN is in
// place (so a connection registered after start misses no event).
func (h *realtime) start(ctx context.Context) error {
	h.startOnce.Do(func() {
		go h.listen()
		go func() {
			<-h.ctx.Done()
			h.closeAll()
		}()
	})
	select {
	case <-h.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-h.ctx.Done():
		return h.ctx.Err()
	}
}

var realtimeChannels = []string{db.MessagesChannel, db.ReceiptsChannel, db.TypingChannel, db.PresenceChannel}

// listen holds a dedicated connection LISTENing on the real-time channels, reconnecting after
// a failure, until the server's context ends.
func (h *realtime) listen() {
	var once sync.Once
	for h.ctx.Err() == nil {
		err := h.listenOnce(func() { once.Do(func() { close(h.ready) }) })
		if h.ctx.Err() != nil {
			return
		}
		h.s.logger.Warn("real-time listener: reconnecting", "error", err)
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (h *realtime) listenOnce(ready func()) error {
	cfg := h.s.pool.Config().ConnConfig.Copy()
	conn, err := pgx.ConnectConfig(h.ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, ch := range realtimeChannels {
		if _, err := conn.Exec(h.ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	ready()
	for {
		n, err := conn.WaitForNotification(h.ctx)
		if err != nil {
			return err
		}
		h.dispatch(n.Channel, []byte(n.Payload))
	}
}

// dispatch turns one notification into frames for this instance's sockets.
func (h *realtime) dispatch(channel string, payload []byte) {
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	switch channel {
	case db.MessagesChannel:
		var ev db.MessageEvent
		if json.Unmarshal(payload, &ev) != nil || !h.hasUser(ev.RecipientID) {
			return
		}
		m, err := db.GetMessageFor(ctx, h.s.pool, ev.RecipientID, ev.ID)
		if err != nil {
			h.s.logger.Warn("real-time: load message", "error", err)
			return
		}
		h.deliverMessage(m)
	case db.ReceiptsChannel:
		var ev db.ReceiptEvent
		if json.Unmarshal(payload, &ev) != nil {
			return
		}
		h.push(ev.SenderID, readReceiptFrame{Type: "ReadReceipt", MessageID: ev.ID, ReadAt: ev.ReadAt.UTC()})
	case db.TypingChannel:
		var ev db.TypingEvent
		if json.Unmarshal(payload, &ev) != nil {
			return
		}
		h.push(ev.To, typingOutFrame{Type: "Typing", ConversationID: ev.From, UserID: ev.From, IsTyping: ev.IsTyping})
	case db.PresenceChannel:
		var ev db.PresenceEvent
		if json.Unmarshal(payload, &ev) != nil {
			return
		}
		contacts, err := db.Contacts(ctx, h.s.pool, ev.UserID)
		if err != nil {
			h.s.logger.Warn("real-time: presence contacts", "error", err)
			return
		}
		f := presenceFrame{Type: "Presence", UserID: ev.UserID, Status: ev.Status, LastSeen: ev.LastSeen.UTC()}
		for _, u := range contacts {
			h.push(u, f)
		}
	}
}

func newMessageFrameOf(m db.Message) newMessageFrame {
	j := toMessageJSON(m)
	f := newMessageFrame{Type: "NewMessage", MessageID: m.ID, SenderID: m.SenderID, SentAt: j.SentAt}
	if j.EncryptedContent != nil {
		f.EncryptedContent, f.Nonce = *j.EncryptedContent, *j.Nonce
	}
	return f
}

// deliverMessage pushes a new message to its recipient's sockets here.
func (h *realtime) deliverMessage(m db.Message) {
	b, _ := json.Marshal(newMessageFrameOf(m))
	for _, c := range h.connsOf(m.RecipientID) {
		c.deliver(m.ID, b)
	}
}

func (h *realtime) hasUser(u uuid.UUID) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns[u]) > 0
}

func (h *realtime) connsOf(u uuid.UUID) []*wsConn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*wsConn, 0, len(h.conns[u]))
	for c := range h.conns[u] {
		out = append(out, c)
	}
	return out
}

// push sends frame to every socket of user on this instance.
func (h *realtime) push(user uuid.UUID, frame any) {
	cs := h.connsOf(user)
	if len(cs) == 0 {
		return
	}
	b, _ := json.Marshal(frame)
	for _, c := range cs {
		c.enqueue(b)
	}
}

func (h *realtime) register(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.conns[c.user.UserID]
	if m == nil {
		m = map[*wsConn]struct{}{}
		h.conns[c.user.UserID] = m
	}
	m[c] = struct{}{}
}

func (h *realtime) unregister(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.conns[c.user.UserID]; m != nil {
		delete(m, c)
		if len(m) == 0 {
			delete(h.conns, c.user.UserID)
		}
	}
}

// closeAll closes every socket with 1001 going away: the server is shutting down and clients
// should reconnect elsewhere.
func (h *realtime) closeAll() {
	h.mu.RLock()
	var all []*wsConn
	for _, m := range h.conns {
		for c := range m {
			all = append(all, c)
		}
	}
	h.mu.RUnlock()
	for _, c := range all {
		c.close(closeGoingAway, "server shutting down")
	}
}
