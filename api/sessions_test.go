package api

import (
	"context"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// Two API instances on one database: a session ended on one stops working on the other
// within one second, with no database read per request (the check is the in-memory set fed
// by LISTEN/NOTIFY). The same holds for an admin's revocation and a role change.
func TestRevocationAcrossInstancesWithinOneSecond(t *testing.T) {
	pool := mustFresh(t)
	a := newEnvOn(t, pool)
	b := newEnvOn(t, pool)
	id := a.signInUser(RoleFan, "fi@example.com", "correct horse battery")
	path := "/api/v1/users/" + id.String()

	// Logout on A; B refuses the session's token.
	p := a.login("fi@example.com", "correct horse battery")
	require.Equal(t, http.StatusOK, b.do(http.MethodGet, path, p.Access, nil).Code, "B accepts the live session")
	require.Equal(t, http.StatusNoContent, a.do(http.MethodPost, "/api/v1/auth/logout", p.Access, nil).Code)
	b.eventually401(p.Access, path)
	r := b.do(http.MethodGet, path, p.Access, nil)
	require.Contains(t, string(r.Body), "session has ended")

	// An admin's revocation on B ends sessions used on A.
	q := a.login("fi@example.com", "correct horse battery")
	require.Equal(t, http.StatusOK, a.do(http.MethodGet, path, q.Access, nil).Code)
	r = b.do(http.MethodPost, path+"/sessions/revoke", b.as(RoleAdmin).Token, nil)
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	require.EqualValues(t, 1, r.JSON(t)["revoked_sessions"])
	a.eventually401(q.Access, path)
	require.Equal(t, 1, a.count(`SELECT count(*) FROM access_log WHERE action = 'auth.sessions_revoked' AND target = $1`, id.String()))
	// Not an admin: 403, nothing revoked.
	require.Equal(t, http.StatusForbidden, b.do(http.MethodPost, path+"/sessions/revoke", b.as(RoleService).Token, nil).Code)

	// A role change (PUT /users/{id} on A) makes B refuse tokens with the old role; a refresh
	// hands out the new one.
	s := a.login("fi@example.com", "correct horse battery")
	require.Equal(t, http.StatusOK, b.do(http.MethodGet, path, s.Access, nil).Code)
	r = a.do(http.MethodPut, path, a.as(RoleAdmin).Token, map[string]any{"role": "council", "display_name": "Fi"})
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	b.eventually401(s.Access, path)
	r = b.do(http.MethodPost, "/api/v1/auth/refresh", "", map[string]any{"refresh_token": s.Refresh})
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	require.Equal(t, "council", r.JSON(t)["role"])
	require.Equal(t, http.StatusOK, b.do(http.MethodGet, path, pairOf(t, r).Access, nil).Code)
}

// An open WebSocket of a session closes when the session is revoked on another instance.
func TestWebSocketClosedOnRevocation(t *testing.T) {
	pool := mustFresh(t)
	a := serve(t, newEnvOn(t, pool, withContext(t.Context())))
	b := serve(t, newEnvOn(t, pool, withContext(t.Context())))
	a.signInUser(RoleFan, "gu@example.com", "correct horse battery")
	p := a.login("gu@example.com", "correct horse battery")
	other := a.login("gu@example.com", "correct horse battery")

	ws := b.dial(t, p.Access, "")
	keep := b.dial(t, other.Access, "")
	require.Equal(t, http.StatusNoContent, a.do(http.MethodPost, "/api/v1/auth/logout", p.Access, nil).Code)

	require.NoError(t, ws.conn.SetReadDeadline(time.Now().Add(5*time.Second)))
	for {
		_, _, err := ws.conn.ReadMessage()
		if err == nil {
			continue // presence frames
		}
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce, "the server closes the socket with a close frame")
		require.Equal(t, websocket.ClosePolicyViolation, ce.Code)
		require.Contains(t, ce.Text, "session ended")
		break
	}
	// The other session's socket stays open.
	keep.send(map[string]any{"type": "Ping", "client_id": "k1"})
	require.Equal(t, "k1", keep.next("Ack")["client_id"])
	// And a new socket with the revoked token is refused.
	_, resp, err := websocket.DefaultDialer.Dial(b.wsURL(""), http.Header{"Authorization": {"Bearer " + p.Access}})
	require.Error(t, err)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
}

// queryCounter counts the queries a pool sends.
type queryCounter struct{ n atomic.Int64 }

func (q *queryCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	q.n.Add(1)
	return ctx
}
func (q *queryCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

// The revocation check is memory only: once the instance is in sync, verifying tokens
// (valid, revoked, role changed) sends no query to the database.
func TestRevocationCheckIsNotADatabaseRoundTrip(t *testing.T) {
	_, url := testharness.FreshDB(t)
	cfg, err := pgxpool.ParseConfig(url)
	require.NoError(t, err)
	counter := &queryCounter{}
	cfg.ConnConfig.Tracer = counter
	pool, err := db.OpenConfig(t.Context(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	e := newEnvOn(t, pool)
	id := e.signInUser(RoleFan, "qc@example.com", "correct horse battery")
	live := e.login("qc@example.com", "correct horse battery")
	ended := e.login("qc@example.com", "correct horse battery")
	require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, "/api/v1/auth/logout", ended.Access, nil).Code)
	e.eventually401(ended.Access, "/api/v1/users/"+id.String())

	before := counter.n.Load()
	require.Positive(t, before, "the tracer sees this pool's queries")
	for range 100 {
		_, err := e.server.verifyToken(t.Context(), live.Access)
		require.NoError(t, err)
		_, err = e.server.verifyToken(t.Context(), ended.Access)
		require.ErrorIs(t, err, errSessionEnded)
	}
	require.Equal(t, before, counter.n.Load(), "200 token checks sent queries")
}
