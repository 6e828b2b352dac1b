package appclient

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"
)

// Err is set by the time Events is closed: a reader that drains Events and then asks why the
// connection ended must get the reason, never nil (the run goroutine used to close Events a
// moment before it published the reason, and CI once read nil in that moment).
func TestRealtimeErrIsSetWhenEventsCloses(t *testing.T) {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		_ = ws.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(CloseTokenExpired, "token expired"), time.Now().Add(time.Second))
		_, _, _ = ws.ReadMessage() // until the client closes its side
	}))
	t.Cleanup(srv.Close)
	k, err := GenerateKey()
	require.NoError(t, err)
	c := New(srv.URL, "a-token", uuid.New(), k)
	for i := range 1000 {
		rt, err := c.Connect(t.Context(), RealtimeOptions{})
		require.NoError(t, err)
		var last Event
		for ev := range rt.Events() {
			last = ev
		}
		require.Error(t, rt.Err(), "connection %d: Events closed but Err is nil", i)
		d, ok := last.(DisconnectedEvent)
		require.True(t, ok)
		require.True(t, d.Final)
		require.Equal(t, CloseTokenExpired, d.Code)
	}
}
