package stack

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

// The API's HTTP server cuts a client that trickles its headers and an idle keep-alive
// connection, while an upgraded WebSocket outlives the read and write timeouts (gorilla clears
// the server's deadlines; the socket keeps its own). Before, the server had no timeouts: the
// slow client held its connection forever.
func TestHTTPServerTimeouts(t *testing.T) {
	saved := httpTimeouts
	t.Cleanup(func() { httpTimeouts = saved })
	httpTimeouts.header, httpTimeouts.read, httpTimeouts.write, httpTimeouts.idle =
		300*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond, 500*time.Millisecond

	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			typ, b, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(typ, b); err != nil {
				return
			}
		}
	})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serveListener(ctx, l, mux, testharness.Logger(t)) }()
	t.Cleanup(func() { cancel(); <-done })
	addr := l.Addr().String()

	// closedWithin: the server closes conn (a read ends) within d.
	closedWithin := func(conn net.Conn, d time.Duration) {
		t.Helper()
		require.NoError(t, conn.SetReadDeadline(time.Now().Add(d)))
		r := bufio.NewReader(conn)
		for {
			if _, err := r.ReadByte(); err != nil {
				var ne net.Error
				require.False(t, errors.As(err, &ne) && ne.Timeout(), "the server kept the connection open")
				return
			}
		}
	}

	// Headers trickled and never finished.
	slow, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer slow.Close()
	_, err = slow.Write([]byte("GET /ok HTTP/1.1\r\nHost: x\r\n"))
	require.NoError(t, err)
	closedWithin(slow, 3*time.Second)

	// A keep-alive connection left idle after its answer.
	idle, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer idle.Close()
	_, err = idle.Write([]byte("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"))
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(idle), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	closedWithin(idle, 3*time.Second)

	// A WebSocket open for three times the read and write timeouts still talks.
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", nil)
	require.NoError(t, err)
	defer ws.Close()
	for range 3 {
		time.Sleep(600 * time.Millisecond)
		require.NoError(t, ws.WriteMessage(websocket.TextMessage, []byte("still here")))
		require.NoError(t, ws.SetReadDeadline(time.Now().Add(3*time.Second)))
		_, b, err := ws.ReadMessage()
		require.NoError(t, err)
		require.Equal(t, "still here", string(b))
	}
}
