package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creatorvault/orchestrator/db"
)

// revocations is one API instance's in-memory view of what makes a signed token no longer
// good: revoked sessions, changed roles and erased users. A dedicated PostgreSQL connection
// LISTENs on db.AuthChannel (fed by triggers, so every writer announces); after each
// (re)connect the set is reloaded from the tables, so nothing announced while the listener
// was away is missed. A request is checked against memory only: no database round trip.
//
// Entries older than the longest token lifetime are forgotten: every token they could stop
// has expired by then.
type revocations struct {
	pool   *pgxpool.Pool
	logger *slog.Logger
	ctx    context.Context
	// sessionWindow is how long a revoked session is remembered (and how far back a
	// resync looks for them): the longest an access token may live, plus leeway. userWindow
	// is the same for role changes and erasures, which also stop operator tokens (up to
	// OPERATOR_TOKEN_MAX_TTL).
	sessionWindow, userWindow time.Duration

	mu       sync.RWMutex
	sessions map[uuid.UUID]time.Time
	users    map[uuid.UUID]db.UserAuthState
	watchers map[uuid.UUID]map[*sessionWatch]struct{}
	// synced is closed while the set is complete (listening and reloaded); a new open
	// channel replaces it when the listener loses its connection.
	synced chan struct{}

	startOnce sync.Once
}

// sessionWatch is an open WebSocket that must close when its session or user is revoked.
type sessionWatch struct {
	p     Principal
	close func(reason string)
}

func newRevocations(ctx context.Context, pool *pgxpool.Pool, logger *slog.Logger, sessionWindow, userWindow time.Duration) *revocations {
	if ctx == nil {
		ctx = context.Background()
	}
	return &revocations{pool: pool, logger: logger, ctx: ctx, sessionWindow: sessionWindow, userWindow: userWindow,
		sessions: map[uuid.UUID]time.Time{}, users: map[uuid.UUID]db.UserAuthState{},
		watchers: map[uuid.UUID]map[*sessionWatch]struct{}{}, synced: make(chan struct{})}
}

// errRevocationsUnavailable: the instance cannot currently know what was revoked, so it
// refuses rather than accept a token that may have been revoked.
var errRevocationsUnavailable = errors.New("session checks are unavailable; retry shortly")

// Errors of a token that verified but no longer counts.
var (
	errSessionEnded = errors.New("the session has ended; sign in again")
	errUserErased   = errors.New("this account has been erased")
	errRoleChanged  = errors.New("the account's role has changed; refresh the token or sign in again")
)

// check reports why p may not act, or nil. It waits (bounded by ctx and a few seconds) for the
// set to be in sync after a start or a listener reconnect.
func (r *revocations) check(ctx context.Context, p Principal) error {
	r.startOnce.Do(func() { go r.listen() })
	r.mu.RLock()
	synced := r.synced
	r.mu.RUnlock()
	select {
	case <-synced:
	default:
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case <-synced:
		case <-ctx.Done():
			return errRevocationsUnavailable
		case <-t.C:
			return errRevocationsUnavailable
		}
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.verdictLocked(p)
}

func (r *revocations) verdictLocked(p Principal) error {
	if p.SessionID != uuid.Nil {
		if _, revoked := r.sessions[p.SessionID]; revoked {
			return errSessionEnded
		}
	}
	if st, ok := r.users[p.UserID]; ok {
		if st.Erased {
			return errUserErased
		}
		if !p.External && string(p.Role) != st.Role {
			return errRoleChanged
		}
	}
	return nil
}

// watch registers fn to run (once) when p's session or user is revoked; the returned func
// unregisters it.
func (r *revocations) watch(p Principal, fn func(reason string)) func() {
	w := &sessionWatch{p: p, close: fn}
	r.mu.Lock()
	m := r.watchers[p.UserID]
	if m == nil {
		m = map[*sessionWatch]struct{}{}
		r.watchers[p.UserID] = m
	}
	m[w] = struct{}{}
	r.mu.Unlock()
	return func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if m := r.watchers[p.UserID]; m != nil {
			delete(m, w)
			if len(m) == 0 {
				delete(r.watchers, p.UserID)
			}
		}
	}
}

// apply records one event and closes the sockets it ends.
func (r *revocations) apply(ev db.AuthEvent) {
	r.mu.Lock()
	switch ev.Kind {
	case "session_revoked":
		r.sessions[ev.SessionID] = ev.At
	case "user_changed":
		r.users[ev.UserID] = db.UserAuthState{UserID: ev.UserID, Role: ev.Role, Erased: ev.Erased, At: ev.At}
	default:
		r.mu.Unlock()
		return
	}
	var ended []*sessionWatch
	for w := range r.watchers[ev.UserID] {
		if r.verdictLocked(w.p) != nil {
			ended = append(ended, w)
		}
	}
	r.mu.Unlock()
	for _, w := range ended {
		w.close("session ended")
	}
}

// listen keeps the LISTEN connection up until the server's context ends.
func (r *revocations) listen() {
	for r.ctx.Err() == nil {
		err := r.listenOnce()
		r.mu.Lock()
		select {
		case <-r.synced:
			r.synced = make(chan struct{})
		default:
		}
		r.mu.Unlock()
		if r.ctx.Err() != nil {
			return
		}
		r.logger.Warn("session revocation listener: reconnecting", "error", err)
		select {
		case <-r.ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (r *revocations) listenOnce() error {
	conn, err := pgx.ConnectConfig(r.ctx, r.pool.Config().ConnConfig.Copy())
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(r.ctx, "LISTEN "+pgx.Identifier{db.AuthChannel}.Sanitize()); err != nil {
		return err
	}
	// LISTEN is in place: whatever is revoked from now on arrives as a notification, and
	// what was revoked before is in the tables.
	if err := r.resync(conn); err != nil {
		return err
	}
	gc := time.NewTicker(time.Minute)
	defer gc.Stop()
	for {
		ctx, cancel := context.WithTimeout(r.ctx, time.Minute)
		n, err := conn.WaitForNotification(ctx)
		cancel()
		switch {
		case err == nil:
			var ev db.AuthEvent
			if json.Unmarshal([]byte(n.Payload), &ev) == nil {
				r.apply(ev)
			}
		case r.ctx.Err() != nil:
			return r.ctx.Err()
		case errors.Is(err, context.DeadlineExceeded):
			// A quiet minute: check the connection is alive.
			if err := conn.Ping(r.ctx); err != nil {
				return err
			}
		default:
			return err
		}
		select {
		case <-gc.C:
			now := time.Now()
			r.forget(now.Add(-r.sessionWindow), now.Add(-r.userWindow))
		default:
		}
	}
}

func (r *revocations) resync(conn *pgx.Conn) error {
	var now time.Time
	if err := conn.QueryRow(r.ctx, `SELECT now()`).Scan(&now); err != nil {
		return err
	}
	sessions, err := db.RevokedSince(r.ctx, conn, now.Add(-r.sessionWindow))
	if err != nil {
		return err
	}
	users, err := db.UsersChangedSince(r.ctx, conn, now.Add(-r.userWindow))
	if err != nil {
		return err
	}
	for _, s := range sessions {
		r.apply(db.AuthEvent{Kind: "session_revoked", SessionID: s.ID, UserID: s.UserID, At: s.At})
	}
	for _, u := range users {
		r.apply(db.AuthEvent{Kind: "user_changed", UserID: u.UserID, Role: u.Role, Erased: u.Erased, At: u.At})
	}
	r.mu.Lock()
	close(r.synced)
	r.mu.Unlock()
	return nil
}

// forget drops session entries older than sessions and user entries older than users.
func (r *revocations) forget(sessions, users time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, at := range r.sessions {
		if at.Before(sessions) {
			delete(r.sessions, id)
		}
	}
	for id, st := range r.users {
		if st.At.Before(users) {
			delete(r.users, id)
		}
	}
}
