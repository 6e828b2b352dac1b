package appclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
)

// CloseTokenExpired is the close code the server sends when the socket's token reaches its
// exp. Realtime then asks RealtimeOptions.TokenSource for a fresh token and resumes.
const CloseTokenExpired = 4001

// Event is one thing the real-time connection reports: a frame the server pushed (decoded,
// and decrypted for messages) or a change of the connection itself.
type Event interface{ event() }

// MessageEvent is a direct message to the user, decrypted.
type MessageEvent struct {
	ID       uuid.UUID
	SenderID uuid.UUID
	SentAt   time.Time
	// Plaintext is the message; nil when Err is set.
	Plaintext []byte
	// Err is why the message could not be opened: ErrDecrypt for a ciphertext that does not
	// authenticate, or the failure to fetch the sender's public key.
	Err error
}

// AckEvent answers the client's own SendMessage (Status "sent", MessageID set) or Ping
// (Status "pong").
type AckEvent struct {
	ClientID  string
	MessageID *uuid.UUID
	Status    string
}

// TypingEvent: UserID is typing (or stopped) in the conversation with the user.
type TypingEvent struct {
	ConversationID uuid.UUID
	UserID         uuid.UUID
	IsTyping       bool
}

// ReadReceiptEvent: the recipient read a message the user sent.
type ReadReceiptEvent struct {
	MessageID uuid.UUID
	ReadAt    time.Time
}

// PresenceEvent: a contact came online or went offline.
type PresenceEvent struct {
	UserID   uuid.UUID
	Online   bool
	LastSeen time.Time
}

// ErrorEvent is an error frame: a refused SendMessage (ClientID set), a bad frame, an after=
// the server could not resume from. The codes are those of the REST API.
type ErrorEvent struct {
	Code     string
	Message  string
	ClientID string
}

// ConnectedEvent: the socket is open; After is the message the server resumes after (zero on
// a first connection without RealtimeOptions.After).
type ConnectedEvent struct {
	After uuid.UUID
}

// DisconnectedEvent: the socket closed. Code is the server's close code (1006 when the
// connection broke without a close frame, 0 when a reconnect attempt failed); Realtime
// reconnects after RetryIn unless Final.
type DisconnectedEvent struct {
	Code    int
	Reason  string
	Err     error
	RetryIn time.Duration
	// Final: no reconnect follows (Close was called, or a fresh token could not be had).
	Final bool
}

func (MessageEvent) event()      {}
func (AckEvent) event()          {}
func (TypingEvent) event()       {}
func (ReadReceiptEvent) event()  {}
func (PresenceEvent) event()     {}
func (ErrorEvent) event()        {}
func (ConnectedEvent) event()    {}
func (DisconnectedEvent) event() {}

// RealtimeOptions tune Connect. Zero values are the defaults in brackets.
type RealtimeOptions struct {
	// After resumes after this message id: the server first replays what came after it.
	// Later reconnects always resume after the last message received.
	After uuid.UUID
	// TokenSource returns a fresh token when the server closes with CloseTokenExpired (or
	// refuses the token on a reconnect); it becomes the Client's token (SetToken). Nil: a
	// client made by SignIn refreshes its session; any other ends there, with a final
	// DisconnectedEvent.
	TokenSource func(ctx context.Context) (string, error)
	// MinBackoff and MaxBackoff bound the wait before a reconnect; it doubles with each failed
	// attempt, with jitter [250ms, 30s].
	MinBackoff, MaxBackoff time.Duration
	// Dialer dials the socket [websocket.DefaultDialer].
	Dialer *websocket.Dialer
	// Buffer is how many events may wait for the reader of Events [64]. A reader that falls
	// behind slows the socket down (the server holds the rest back); nothing is dropped.
	Buffer int
	// IdleTimeout: a socket that brought nothing, not even the server's ping, for this long
	// is taken for dead and redialled [45s; the server pings every 5 s].
	IdleTimeout time.Duration
}

// Realtime is a WebSocket connection to the API that stays up: it reconnects with backoff,
// resumes after the last message received (nothing lost, nothing twice), renews an expired
// token, and decrypts incoming messages. Read Events until it is closed.
type Realtime struct {
	c      *Client
	opts   RealtimeOptions
	events chan Event
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex // guards ws and err, and serializes writes
	ws  *websocket.Conn
	err error // why the connection ended, set (non-nil) before Events closes

	last uuid.UUID // the last message received; only the run goroutine touches it
}

// ErrNotConnected is returned by the senders of Realtime while it is between sockets.
var ErrNotConnected = errors.New("appclient: the real-time socket is reconnecting")

// Connect opens the user's real-time socket. The first dial is made before it returns, so a
// refused token or an unreachable server is an error here; after that Realtime reconnects by
// itself until ctx ends or Close is called.
func (c *Client) Connect(ctx context.Context, opts RealtimeOptions) (*Realtime, error) {
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = 250 * time.Millisecond
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(30*time.Second, opts.MinBackoff)
	}
	if opts.Dialer == nil {
		opts.Dialer = websocket.DefaultDialer
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 64
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = 45 * time.Second
	}
	rctx, cancel := context.WithCancel(ctx)
	r := &Realtime{c: c, opts: opts, events: make(chan Event, opts.Buffer), ctx: rctx, cancel: cancel,
		done: make(chan struct{}), last: opts.After}
	ws, err := r.dial()
	if err != nil {
		cancel()
		return nil, err
	}
	go r.run(ws)
	return r, nil
}

// Events delivers what happens on the connection, in order. It is closed when the
// connection ends for good (after a final DisconnectedEvent); Err then says why.
func (r *Realtime) Events() <-chan Event { return r.events }

// Err is why the connection ended (nil while it runs, context.Canceled after Close).
func (r *Realtime) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Close ends the connection (close code 1000) and returns once it has stopped; Events is
// closed by then (events nobody read are dropped with it).
func (r *Realtime) Close() error {
	r.mu.Lock()
	if r.ws != nil {
		_ = r.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
			time.Now().Add(time.Second))
	}
	r.mu.Unlock()
	r.cancel() // closes the socket and stops a reconnect in progress
	<-r.done
	return nil
}

// Send encrypts plaintext for recipient and sends it over the socket. The AckEvent (or
// ErrorEvent) with the returned client id tells how it went.
func (r *Realtime) Send(ctx context.Context, recipient uuid.UUID, plaintext []byte) (clientID string, err error) {
	content, nonce, err := r.c.Encrypt(ctx, recipient, plaintext)
	if err != nil {
		return "", err
	}
	clientID = uuid.NewString()
	return clientID, r.write(map[string]any{"type": "SendMessage", "recipient_id": recipient,
		"encrypted_content": content, "nonce": nonce, "client_id": clientID})
}

// Typing tells the other participant of the conversation that the user is typing (or
// stopped). The server passes on at most one every 3 s per conversation.
func (r *Realtime) Typing(conversation uuid.UUID, isTyping bool) error {
	return r.write(map[string]any{"type": "Typing", "conversation_id": conversation, "is_typing": isTyping})
}

// MarkRead sends a read receipt for a message the user received.
func (r *Realtime) MarkRead(message uuid.UUID) error {
	return r.write(map[string]any{"type": "MarkRead", "message_id": message})
}

func (r *Realtime) write(v any) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ws == nil {
		return ErrNotConnected
	}
	_ = r.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return r.ws.WriteJSON(v)
}

// dial opens one socket, resuming after the last message received.
func (r *Realtime) dial() (*websocket.Conn, error) {
	u, err := url.Parse(r.c.BaseURL + "/ws")
	if err != nil {
		return nil, err
	}
	u.Scheme = strings.Replace(u.Scheme, "http", "ws", 1)
	if r.last != uuid.Nil {
		u.RawQuery = url.Values{"after": {r.last.String()}}.Encode()
	}
	token, err := r.c.accessToken(r.ctx) // a signed-in client refreshes it when due
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+token)
	ws, resp, err := r.opts.Dialer.DialContext(r.ctx, u.String(), h)
	if err != nil {
		if resp != nil {
			defer resp.Body.Close()
			raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			_ = json.Unmarshal(raw, &e)
			return nil, &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
		}
		return nil, err
	}
	ws.SetReadLimit(1 << 20)
	_ = ws.SetReadDeadline(time.Now().Add(r.opts.IdleTimeout))
	ws.SetPingHandler(func(data string) error {
		_ = ws.SetReadDeadline(time.Now().Add(r.opts.IdleTimeout))
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(5*time.Second))
		if errors.Is(err, websocket.ErrCloseSent) {
			return nil
		}
		return err
	})
	r.mu.Lock()
	r.ws = ws
	r.mu.Unlock()
	return ws, nil
}

// run reads the socket until it breaks, then reconnects, for as long as the context lives.
func (r *Realtime) run(ws *websocket.Conn) {
	defer close(r.done)
	defer close(r.events)
	attempt := 0
	for {
		r.emit(ConnectedEvent{After: r.last})
		stop := context.AfterFunc(r.ctx, func() { _ = ws.Close() }) // Close or ctx ends the read
		code, reason, err := r.read(ws)
		stop()
		r.mu.Lock()
		r.ws = nil
		r.mu.Unlock()
		_ = ws.Close()
		if code == CloseTokenExpired {
			if ferr := r.refreshToken(); ferr != nil {
				r.finish(DisconnectedEvent{Code: code, Reason: reason, Err: ferr, Final: true}, ferr)
				return
			}
		}
		for {
			if r.ctx.Err() != nil {
				r.finish(DisconnectedEvent{Code: code, Reason: reason, Err: err, Final: true}, r.ctx.Err())
				return
			}
			wait := r.backoff(attempt)
			attempt++
			r.emit(DisconnectedEvent{Code: code, Reason: reason, Err: err, RetryIn: wait})
			select {
			case <-r.ctx.Done():
				continue
			case <-time.After(wait):
			}
			ws, err = r.dial()
			if err == nil {
				attempt = 0
				break
			}
			code, reason = 0, ""
			var apiErr *APIError
			if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized {
				if ferr := r.refreshToken(); ferr != nil {
					r.finish(DisconnectedEvent{Err: fmt.Errorf("%w (and no fresh token: %v)", err, ferr), Final: true}, err)
					return
				}
			}
		}
	}
}

// read decodes frames into events until the socket ends, and returns how it ended.
func (r *Realtime) read(ws *websocket.Conn) (code int, reason string, err error) {
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Text, err
			}
			return 0, "", err
		}
		_ = ws.SetReadDeadline(time.Now().Add(r.opts.IdleTimeout))
		ev, ok := r.decode(data)
		if !ok {
			continue
		}
		if m, isMsg := ev.(MessageEvent); isMsg {
			r.last = m.ID
		}
		if !r.emit(ev) {
			return websocket.CloseNormalClosure, "closed by the client", r.ctx.Err()
		}
	}
}

// frame is every field any server frame has.
type frame struct {
	Type             string     `json:"type"`
	MessageID        *uuid.UUID `json:"message_id"`
	SenderID         uuid.UUID  `json:"sender_id"`
	EncryptedContent string     `json:"encrypted_content"`
	Nonce            string     `json:"nonce"`
	SentAt           time.Time  `json:"sent_at"`
	ClientID         string     `json:"client_id"`
	Status           string     `json:"status"`
	ConversationID   uuid.UUID  `json:"conversation_id"`
	UserID           uuid.UUID  `json:"user_id"`
	IsTyping         bool       `json:"is_typing"`
	ReadAt           time.Time  `json:"read_at"`
	LastSeen         time.Time  `json:"last_seen"`
	Code             string     `json:"code"`
	Message          string     `json:"message"`
}

// decode turns a frame into an event; frames of types this client does not know are skipped
// (a newer server may send more).
func (r *Realtime) decode(data []byte) (Event, bool) {
	var f frame
	if err := json.Unmarshal(data, &f); err != nil {
		return ErrorEvent{Code: "invalid_frame", Message: "the server sent a frame that is not JSON"}, true
	}
	id := uuid.Nil
	if f.MessageID != nil {
		id = *f.MessageID
	}
	switch f.Type {
	case "NewMessage":
		ev := MessageEvent{ID: id, SenderID: f.SenderID, SentAt: f.SentAt}
		ev.Plaintext, ev.Err = r.c.DecryptFields(r.ctx, f.SenderID, r.c.UserID, f.EncryptedContent, f.Nonce)
		return ev, true
	case "Ack":
		return AckEvent{ClientID: f.ClientID, MessageID: f.MessageID, Status: f.Status}, true
	case "Typing":
		return TypingEvent{ConversationID: f.ConversationID, UserID: f.UserID, IsTyping: f.IsTyping}, true
	case "ReadReceipt":
		return ReadReceiptEvent{MessageID: id, ReadAt: f.ReadAt}, true
	case "Presence":
		return PresenceEvent{UserID: f.UserID, Online: f.Status == "online", LastSeen: f.LastSeen}, true
	case "Error":
		return ErrorEvent{Code: f.Code, Message: f.Message, ClientID: f.ClientID}, true
	}
	return nil, false
}

// emit hands an event to the reader, waiting for room; false when the connection is closing.
func (r *Realtime) emit(ev Event) bool {
	select {
	case r.events <- ev:
		return true
	case <-r.ctx.Done():
		return false
	}
}

// finish reports the end of the connection, if anyone still reads, and records why.
func (r *Realtime) finish(ev DisconnectedEvent, err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
	select {
	case r.events <- ev:
	default:
	}
}

func (r *Realtime) refreshToken() error {
	if r.opts.TokenSource == nil {
		if r.c.canRefresh() { // a signed-in client (SignIn) renews its own session's token
			return r.c.Refresh(r.ctx)
		}
		return errors.New("appclient: the token expired and RealtimeOptions.TokenSource is not set")
	}
	tok, err := r.opts.TokenSource(r.ctx)
	if err != nil {
		return err
	}
	r.c.SetToken(tok) // the client's REST calls (key look-ups) need it as much
	return nil
}

// backoff is the wait before reconnect attempt n: MinBackoff doubled n times, at most
// MaxBackoff, with jitter (between half and all of it) so clients of a restarted server do not
// all return at once.
func (r *Realtime) backoff(n int) time.Duration {
	d := r.opts.MinBackoff << min(n, 20)
	if d <= 0 || d > r.opts.MaxBackoff {
		d = r.opts.MaxBackoff
	}
	return d/2 + rand.N(d/2+1)
}
