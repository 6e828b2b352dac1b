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
	// WriteWait bounds every write: a client that reads nothing for this long is closed [10s].
	WriteWait time.Duration
	// SendBuffer is how many frames may wait for a client [256]. When it is full a NewMessage
	// is not lost (the socket catches up from the database as it drains); a Typing, Presence
	// or ReadReceipt is dropped and counted.
	SendBuffer int
	// MaxFrameBytes is the largest frame a client may send; a bigger one closes the
	// connection with 1009 [128 KiB: a 64 KiB ciphertext in base64 plus its fields].
	MaxFrameBytes int64
	// ReplayPage is how many missed messages are read from the database at a time, the next
	// page only once the socket has taken the last [32].
	ReplayPage int
	// MaxSocketsPerUser caps one user's open WebSockets over every instance [20].
	MaxSocketsPerUser int
	// Lease is how long an instance's heartbeat holds its sessions; the sessions of an
	// instance silent for longer are removed by any live instance [30s].
	Lease time.Duration
	// HeartbeatInterval is how often an instance renews its lease and reaps lapsed ones [10s].
	// A dead instance's sessions are gone within Lease + HeartbeatInterval.
	HeartbeatInterval time.Duration
	// TypingInterval: at most one Typing frame per user and conversation is passed on per
	// interval on an instance; the others are dropped [3s].
	TypingInterval time.Duration
	// MarkReadPerSecond limits MarkRead frames per socket (burst of twice as many) [10].
	MarkReadPerSecond float64
	// FetchBatch is the most announced messages loaded by one query [256].
	FetchBatch int
}

func (o RealtimeOptions) withDefaults() RealtimeOptions {
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.PingInterval, 5*time.Second)
	def(&o.PongWait, 30*time.Second)
	def(&o.WriteWait, 10*time.Second)
	def(&o.Lease, 30*time.Second)
	def(&o.HeartbeatInterval, 10*time.Second)
	def(&o.TypingInterval, 3*time.Second)
	defInt(&o.SendBuffer, 256)
	defInt(&o.ReplayPage, 32)
	defInt(&o.MaxSocketsPerUser, 20)
	defInt(&o.FetchBatch, 256)
	if o.MaxFrameBytes <= 0 {
		o.MaxFrameBytes = 128 << 10
	}
	if o.MarkReadPerSecond <= 0 {
		o.MarkReadPerSecond = 10
	}
	return o
}

// listenerName is the application_name of the LISTEN connection, so an operator (or a test)
// can find it in pg_stat_activity.
const listenerName = "orchestrator-realtime-listener"

// wsHub is one API instance's WebSocket hub: the registry of its open WebSockets by user (several
// devices per user), and one dedicated PostgreSQL connection LISTENing for the events of every
// instance. Events carry ids only. The listener never queries: it hands message ids to the
// fetcher (many ids per query, in order) and presence changes to the presence worker, so
// nothing waits behind a query. The registry lock is never held across I/O: delivering only
// enqueues into a connection's bounded buffer, or marks it to catch up from the database.
type wsHub struct {
	s        *Server
	ctx      context.Context
	opts     RealtimeOptions
	instance uuid.UUID

	mu    sync.RWMutex
	conns map[uuid.UUID]map[*wsConn]struct{}

	startOnce sync.Once
	ready     chan struct{}

	msgs     chan db.MessageEvent
	presence chan db.PresenceEvent

	// floor is the newest message key this hub has fetched (or, before any, the database's
	// time when LISTEN began): where a socket that has been sent nothing starts catching up.
	floorMu sync.Mutex
	floor   db.MessageKey

	typingMu   sync.Mutex
	typingLast map[[2]uuid.UUID]time.Time
}

func newWSHub(s *Server, ctx context.Context, opts RealtimeOptions) *wsHub {
	if ctx == nil {
		ctx = context.Background()
	}
	return &wsHub{s: s, ctx: ctx, opts: opts.withDefaults(), instance: uuid.New(),
		conns: map[uuid.UUID]map[*wsConn]struct{}{}, ready: make(chan struct{}),
		msgs: make(chan db.MessageEvent, 16<<10), presence: make(chan db.PresenceEvent, 4<<10),
		typingLast: map[[2]uuid.UUID]time.Time{}}
}

// start runs the listener, the fetcher, the presence worker, the lease keeper and the
// shutdown watcher on first use, and waits until LISTEN is in place and the lease taken (so a
// connection registered after start misses no event and its session is leased).
func (h *wsHub) start(ctx context.Context) error {
	h.startOnce.Do(func() {
		go h.listen()
		go h.fetchLoop()
		go h.presenceLoop()
		go h.leaseLoop()
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
// a failure, until the server's context ends. After a reconnect every socket here catches up
// from the database (what was committed while nobody listened) before new events reach it.
func (h *wsHub) listen() {
	var once sync.Once
	backoff := 100 * time.Millisecond
	for reconnect := false; h.ctx.Err() == nil; reconnect = true {
		err := h.listenOnce(reconnect, func() {
			backoff = 100 * time.Millisecond
			once.Do(func() {
				if _, err := db.Heartbeat(h.ctx, h.s.pool, h.instance); err != nil {
					h.s.logger.Warn("real-time: take lease", "error", err)
				}
				close(h.ready)
			})
		})
		if h.ctx.Err() != nil {
			return
		}
		h.s.logger.Warn("real-time listener: reconnecting", "error", err, "in", backoff)
		select {
		case <-h.ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (h *wsHub) listenOnce(reconnect bool, ready func()) error {
	cfg := h.s.pool.Config().ConnConfig.Copy()
	cfg.RuntimeParams["application_name"] = listenerName
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
	if reconnect {
		wsListenerReconnects.Inc()
		h.catchUpAll()
	} else {
		var now time.Time
		if err := conn.QueryRow(h.ctx, `SELECT now()`).Scan(&now); err != nil {
			return err
		}
		h.raiseFloor(db.MessageKey{At: now})
	}
	ready()
	for {
		n, err := conn.WaitForNotification(h.ctx)
		if err != nil {
			return err
		}
		h.route(n.Channel, []byte(n.Payload))
	}
}

// route hands one notification on without touching the database.
func (h *wsHub) route(channel string, payload []byte) {
	switch channel {
	case db.MessagesChannel:
		var ev db.MessageEvent
		if json.Unmarshal(payload, &ev) != nil || !h.hasUser(ev.RecipientID) {
			return
		}
		select {
		case h.msgs <- ev: // in order; a full queue holds the listener back (PostgreSQL queues)
		case <-h.ctx.Done():
		}
	case db.ReceiptsChannel:
		var ev db.ReceiptEvent
		if json.Unmarshal(payload, &ev) != nil {
			return
		}
		h.push(ev.SenderID, "ReadReceipt", readReceiptFrame{Type: "ReadReceipt", MessageID: ev.ID, ReadAt: ev.ReadAt.UTC()})
	case db.TypingChannel:
		var ev db.TypingEvent
		if json.Unmarshal(payload, &ev) != nil {
			return
		}
		h.push(ev.To, "Typing", typingOutFrame{Type: "Typing", ConversationID: ev.From, UserID: ev.From, IsTyping: ev.IsTyping})
	case db.PresenceChannel:
		var ev db.PresenceEvent
		if json.Unmarshal(payload, &ev) != nil {
			return
		}
		select {
		case h.presence <- ev:
		default:
			wsSendDrops.WithLabelValues("Presence").Inc()
		}
	}
}

// fetchLoop loads announced messages many ids per query, in the order they were announced,
// and delivers them. While one query runs the next ids gather, so a busy hub makes fewer,
// larger queries instead of a queue of small ones.
func (h *wsHub) fetchLoop() {
	batch := make([]db.MessageEvent, 0, h.opts.FetchBatch)
	for {
		batch = batch[:0]
		select {
		case <-h.ctx.Done():
			return
		case ev := <-h.msgs:
			batch = append(batch, ev)
		}
	gather:
		for len(batch) < cap(batch) {
			select {
			case ev := <-h.msgs:
				batch = append(batch, ev)
			default:
				break gather
			}
		}
		h.fetchAndDeliver(batch)
	}
}

func (h *wsHub) fetchAndDeliver(batch []db.MessageEvent) {
	ids := make([]uuid.UUID, len(batch))
	for i, ev := range batch {
		ids[i] = ev.ID
	}
	ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
	defer cancel()
	msgs, err := db.MessagesByID(ctx, h.s.pool, ids)
	if err != nil {
		// Nothing is dropped: the recipients' sockets catch up from the database.
		h.warn("real-time: load messages", err)
		for _, ev := range batch {
			for _, c := range h.connsOf(ev.RecipientID) {
				c.catchUp()
			}
		}
		return
	}
	byID := make(map[uuid.UUID]db.Message, len(msgs))
	for _, m := range msgs {
		byID[m.ID] = m
	}
	for _, ev := range batch {
		if m, ok := byID[ev.ID]; ok && m.RecipientID == ev.RecipientID {
			h.raiseFloor(m.Key())
			h.deliverMessage(m)
		}
	}
}

func (h *wsHub) raiseFloor(k db.MessageKey) {
	h.floorMu.Lock()
	defer h.floorMu.Unlock()
	if keyAfter(k, h.floor) {
		h.floor = k
	}
}

func (h *wsHub) currentFloor() db.MessageKey {
	h.floorMu.Lock()
	defer h.floorMu.Unlock()
	return h.floor
}

// keyAfter reports whether a comes after b in delivery order.
func keyAfter(a, b db.MessageKey) bool {
	if !a.At.Equal(b.At) {
		return a.At.After(b.At)
	}
	return uuidLess(b.ID, a.ID)
}

func uuidLess(a, b uuid.UUID) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// catchUpAll makes every socket here catch up from the database: events may have been lost
// while LISTEN was down.
func (h *wsHub) catchUpAll() {
	for _, c := range h.all() {
		c.catchUp()
	}
}

// presenceLoop tells a user's contacts here that they came online or went offline.
func (h *wsHub) presenceLoop() {
	for {
		var ev db.PresenceEvent
		select {
		case <-h.ctx.Done():
			return
		case ev = <-h.presence:
		}
		ctx, cancel := context.WithTimeout(h.ctx, 10*time.Second)
		contacts, err := db.Contacts(ctx, h.s.pool, ev.UserID)
		cancel()
		if err != nil {
			h.warn("real-time: presence contacts", err)
			continue
		}
		f := presenceFrame{Type: "Presence", UserID: ev.UserID, Status: ev.Status, LastSeen: ev.LastSeen.UTC()}
		for _, u := range contacts {
			h.push(u, "Presence", f)
		}
	}
}

// leaseLoop renews this instance's lease, records its sessions again if the lease had lapsed
// (the instance was paused and its sessions reaped), removes the sessions of instances whose
// lease lapsed, and forgets old typing throttles. At shutdown it gives up the lease.
func (h *wsHub) leaseLoop() {
	<-h.ready
	t := time.NewTicker(h.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-h.ctx.Done():
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			// Best effort, unlogged: the process (or a test's database) may be going away.
			_ = db.LeaveInstance(ctx, h.s.pool, h.instance, h.opts.Lease)
			return
		case <-t.C:
		}
		h.keepLease()
	}
}

func (h *wsHub) keepLease() {
	ctx, cancel := context.WithTimeout(h.ctx, h.opts.HeartbeatInterval)
	defer cancel()
	renewed, err := db.Heartbeat(ctx, h.s.pool, h.instance)
	if err != nil {
		h.warn("real-time: renew lease", err)
		return
	}
	if !renewed {
		var ss []db.WSSession
		for _, c := range h.all() {
			ss = append(ss, db.WSSession{ID: c.id, UserID: c.user.UserID, Instance: h.instance})
		}
		if err := db.ReopenSessions(ctx, h.s.pool, ss, h.s.now()); err != nil {
			h.warn("real-time: record sessions again", err)
		}
	}
	if _, err := db.ReapSessions(ctx, h.s.pool, h.opts.Lease); err != nil {
		h.warn("real-time: reap lapsed sessions", err)
	}
	now := time.Now()
	h.typingMu.Lock()
	for k, at := range h.typingLast {
		if now.Sub(at) >= h.opts.TypingInterval {
			delete(h.typingLast, k)
		}
	}
	h.typingMu.Unlock()
}

// warn logs a failure of the hub's background work, unless the server is stopping (then
// failures are expected and nobody reads the log).
func (h *wsHub) warn(msg string, err error) {
	if h.ctx.Err() == nil {
		h.s.logger.Warn(msg, "error", err)
	}
}

// typingAllowed passes at most one Typing per user and conversation per TypingInterval.
func (h *wsHub) typingAllowed(from, to uuid.UUID) bool {
	now := time.Now()
	k := [2]uuid.UUID{from, to}
	h.typingMu.Lock()
	defer h.typingMu.Unlock()
	if last, ok := h.typingLast[k]; ok && now.Sub(last) < h.opts.TypingInterval {
		return false
	}
	h.typingLast[k] = now
	return true
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
func (h *wsHub) deliverMessage(m db.Message) {
	cs := h.connsOf(m.RecipientID)
	if len(cs) == 0 {
		return
	}
	b, _ := json.Marshal(newMessageFrameOf(m))
	for _, c := range cs {
		c.deliver(m, b)
	}
}

func (h *wsHub) hasUser(u uuid.UUID) bool {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.conns[u]) > 0
}

func (h *wsHub) connsOf(u uuid.UUID) []*wsConn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]*wsConn, 0, len(h.conns[u]))
	for c := range h.conns[u] {
		out = append(out, c)
	}
	return out
}

// push offers frame to every socket of user on this instance; a full buffer drops it.
func (h *wsHub) push(user uuid.UUID, typ string, frame any) {
	cs := h.connsOf(user)
	if len(cs) == 0 {
		return
	}
	b, _ := json.Marshal(frame)
	for _, c := range cs {
		c.offer(outFrame{typ: typ, b: b})
	}
}

func (h *wsHub) register(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.conns[c.user.UserID]
	if m == nil {
		m = map[*wsConn]struct{}{}
		h.conns[c.user.UserID] = m
	}
	m[c] = struct{}{}
	wsOpenSockets.Inc()
}

func (h *wsHub) unregister(c *wsConn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.conns[c.user.UserID]; m != nil {
		if _, ok := m[c]; ok {
			wsOpenSockets.Dec()
		}
		delete(m, c)
		if len(m) == 0 {
			delete(h.conns, c.user.UserID)
		}
	}
}

func (h *wsHub) all() []*wsConn {
	h.mu.RLock()
	defer h.mu.RUnlock()
	var all []*wsConn
	for _, m := range h.conns {
		for c := range m {
			all = append(all, c)
		}
	}
	return all
}

// closeAll closes every socket with 1001 going away: the server is shutting down and clients
// should reconnect elsewhere.
func (h *wsHub) closeAll() {
	for _, c := range h.all() {
		c.close(closeGoingAway, "server shutting down")
	}
}
