package api

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/appclient"
)

// cutProxy forwards TCP connections to a server and can cut them all at once, as a phone
// losing its network does (no close frame, no FIN from the server's side first).
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &cutProxy{ln: ln}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(s, c); _ = s.Close() }()
			go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
		}
	}()
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cut closes every connection made so far; new ones are forwarded again.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// nextEvent returns the next event of type T from rt, skipping the others (Presence, say).
func nextEvent[T appclient.Event](t *testing.T, rt *appclient.Realtime) T {
	t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case ev, ok := <-rt.Events():
			require.True(t, ok, "events closed: %v", rt.Err())
			if v, is := ev.(T); is {
				return v
			}
		case <-timeout:
			var zero T
			t.Fatalf("no %T within 15 s", zero)
		}
	}
}

// The appclient WebSocket client: decrypted, typed events; a broken connection is redialled
// with backoff and resumes after the last message (what was sent meanwhile arrives once, in
// order); a token that expires (close 4001) is renewed through TokenSource; it sends over the
// socket too.
func TestRealtimeClient(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	proxy := newCutProxy(t, in.srv.Listener.Addr().String())
	w := e.dmWorld()
	ctx := t.Context()
	// The creator's socket goes through the proxy (cut below); the others connect directly.
	client := func(u user, base string) *appclient.Client {
		k, err := appclient.GenerateKey()
		require.NoError(t, err)
		c := appclient.New(base, u.Token, u.ID, k)
		require.NoError(t, c.PublishKey(ctx))
		return c
	}
	fan, creator := client(w.gold, in.srv.URL), client(w.creator, "http://"+proxy.addr())

	// The creator's socket starts with a token that expires in about four seconds.
	short, err := IssueToken(testSecret, w.creator.ID, RoleCreator, 4*time.Second, time.Now())
	require.NoError(t, err)
	creator.SetToken(short)
	var renewed atomic.Int32
	rt, err := creator.Connect(ctx, appclient.RealtimeOptions{
		MinBackoff: 300 * time.Millisecond, MaxBackoff: time.Second,
		TokenSource: func(context.Context) (string, error) {
			renewed.Add(1)
			return IssueToken(testSecret, w.creator.ID, RoleCreator, time.Hour, time.Now())
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = rt.Close() })
	nextEvent[appclient.ConnectedEvent](t, rt)

	expect := func(texts ...string) {
		t.Helper()
		for _, want := range texts {
			m := nextEvent[appclient.MessageEvent](t, rt)
			require.NoError(t, m.Err)
			require.Equal(t, w.gold.ID, m.SenderID)
			require.Equal(t, want, string(m.Plaintext))
		}
	}
	send := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			text := fmt.Sprintf("message %d", i)
			_, err := fan.Send(ctx, w.creator.ID, []byte(text))
			require.NoError(t, err)
			out = append(out, text)
		}
		return out
	}
	expect(send(0, 3)...)

	// The token expires: 4001, a fresh token, and the socket resumes; messages sent while it
	// was away come once, in order.
	d := nextEvent[appclient.DisconnectedEvent](t, rt)
	require.Equal(t, appclient.CloseTokenExpired, d.Code)
	require.False(t, d.Final)
	gap := send(3, 6)
	c := nextEvent[appclient.ConnectedEvent](t, rt)
	require.NotEqual(t, uuid.Nil, c.After, "it resumes after the last message it had")
	require.EqualValues(t, 1, renewed.Load())
	expect(gap...)

	// The connection breaks without a close frame: redialled with backoff, resumed.
	proxy.cut()
	d = nextEvent[appclient.DisconnectedEvent](t, rt)
	require.Equal(t, 1006, d.Code, "no close frame")
	require.Positive(t, d.RetryIn)
	gap = send(6, 9)
	nextEvent[appclient.ConnectedEvent](t, rt)
	expect(gap...)
	expect(send(9, 10)...)

	// Typed events from the other side's socket: presence, typing, read receipt; and a send
	// over the socket answered with an Ack.
	frt, err := fan.Connect(ctx, appclient.RealtimeOptions{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = frt.Close() })
	p := nextEvent[appclient.PresenceEvent](t, rt)
	require.Equal(t, w.gold.ID, p.UserID)
	require.True(t, p.Online)
	require.NoError(t, frt.Typing(w.creator.ID, true))
	ty := nextEvent[appclient.TypingEvent](t, rt)
	require.Equal(t, w.gold.ID, ty.UserID)
	require.True(t, ty.IsTyping)

	clientID, err := rt.Send(ctx, w.gold.ID, []byte("thanks for all of them"))
	require.NoError(t, err)
	ack := nextEvent[appclient.AckEvent](t, rt)
	require.Equal(t, clientID, ack.ClientID)
	require.Equal(t, "sent", ack.Status)
	got := nextEvent[appclient.MessageEvent](t, frt)
	require.NoError(t, got.Err)
	require.Equal(t, "thanks for all of them", string(got.Plaintext))
	require.NoError(t, frt.MarkRead(got.ID))
	rr := nextEvent[appclient.ReadReceiptEvent](t, rt)
	require.Equal(t, got.ID, rr.MessageID)

	// A refused send is an ErrorEvent with its client id; Close ends the events.
	client(w.silver, in.srv.URL) // a published key: the send is sealed and refused by the server
	clientID, err = rt.Send(ctx, w.silver.ID, []byte("you never wrote"))
	require.NoError(t, err)
	ev := nextEvent[appclient.ErrorEvent](t, rt)
	require.Equal(t, "messages_not_allowed", ev.Code)
	require.Equal(t, clientID, ev.ClientID)
	require.NoError(t, rt.Close())
	for range rt.Events() {
	}
	require.ErrorIs(t, rt.Err(), context.Canceled)
}

// Without a TokenSource, an expired token ends the connection with a final event; a token
// refused at the first dial is an error from Connect.
func TestRealtimeClientWithoutTokenSource(t *testing.T) {
	e := wsEnv(t)
	in := serve(t, e)
	w := e.dmWorld()
	k, err := appclient.GenerateKey()
	require.NoError(t, err)
	short, err := IssueToken(testSecret, w.gold.ID, RoleFan, 2*time.Second, time.Now())
	require.NoError(t, err)
	c := appclient.New(in.srv.URL, short, w.gold.ID, k)
	rt, err := c.Connect(t.Context(), appclient.RealtimeOptions{})
	require.NoError(t, err)
	d := nextEvent[appclient.DisconnectedEvent](t, rt)
	require.Equal(t, appclient.CloseTokenExpired, d.Code)
	require.True(t, d.Final)
	for range rt.Events() {
	}
	require.Error(t, rt.Err())

	_, err = appclient.New(in.srv.URL, "not-a-token", w.gold.ID, k).Connect(t.Context(), appclient.RealtimeOptions{})
	var apiErr *appclient.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 401, apiErr.Status)
}
