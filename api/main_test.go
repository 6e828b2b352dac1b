package api

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestMain(m *testing.M) { testharness.Main(m) }

var testSecret = []byte("test-secret-test-secret-test-secret-0123")

// clock is a movable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// env is one API under test: the real router on a real database.
type env struct {
	t      *testing.T
	router *gin.Engine
	server *Server
	pool   *pgxpool.Pool
	// tpool is the treasury login's pool (nil when the test gave none).
	tpool *pgxpool.Pool
	clock *clock
	// conform, when set, checks every request e.do sends and its answer (see
	// openapi_conformance_test.go).
	conform func(method, path string, header http.Header, body []byte, code int, respHeader http.Header, resp []byte)
}

type envOption func(*Deps)

func withTemporal(c client.Client) envOption { return func(d *Deps) { d.Temporal = c } }

// newEnv builds the router on a fresh database, so tests can count rows: the runtime role's
// pool, and the treasury login's for the treasury endpoints.
func newEnv(t *testing.T, opts ...envOption) *env {
	t.Helper()
	pg := testharness.FreshPG(t)
	return newEnvOn(t, pg.Pool, append([]envOption{withTreasuryPool(pg.TreasuryPool)}, opts...)...)
}

func withTreasuryPool(p *pgxpool.Pool) envOption { return func(d *Deps) { d.TreasuryPool = p } }

func newEnvOn(t *testing.T, pool *pgxpool.Pool, opts ...envOption) *env {
	t.Helper()
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.Auth.JWTSecret = testSecret
	clk := &clock{t: time.Now().UTC().Truncate(time.Microsecond)}
	d := Deps{Pool: pool, Config: cfg, Logger: testharness.Logger(t), Now: clk.Now, Context: t.Context()}
	for _, o := range opts {
		o(&d)
	}
	router, srv := buildRouter(d)
	return &env{t: t, router: router, server: srv, pool: pool, tpool: d.TreasuryPool, clock: clk}
}

// user is a caller with a token.
type user struct {
	ID    uuid.UUID
	Role  Role
	Token string
}

func (e *env) token(id uuid.UUID, role Role) string {
	tok, err := IssueToken(testSecret, id, role, time.Hour, time.Now())
	require.NoError(e.t, err)
	return tok
}

func (e *env) as(role Role) user {
	id := uuid.New()
	return user{ID: id, Role: role, Token: e.token(id, role)}
}

// response is a recorded answer.
type response struct {
	Code   int
	Header http.Header
	Body   []byte
}

func (r response) JSON(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.Body, &m), "body: %s", r.Body)
	return m
}

func (r response) ErrorCode(t *testing.T) string {
	t.Helper()
	m := r.JSON(t)
	e, ok := m["error"].(map[string]any)
	require.True(t, ok, "want an error body, got %s", r.Body)
	require.NotEmpty(t, e["message"])
	return e["code"].(string)
}

// do sends a request; body may be nil, a string (sent as is) or a value (JSON encoded).
func (e *env) do(method, path string, token string, body any) response {
	e.t.Helper()
	var rd io.Reader
	var raw []byte
	switch b := body.(type) {
	case nil:
	case string:
		raw = []byte(b)
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		require.NoError(e.t, err)
		raw = buf
		rd = bytes.NewReader(buf)
	}
	req := httptest.NewRequest(method, path, rd)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	header := req.Header.Clone()
	w := httptest.NewRecorder()
	e.router.ServeHTTP(w, req)
	if e.conform != nil {
		e.conform(method, path, header, raw, w.Code, w.Header(), w.Body.Bytes())
	}
	return response{Code: w.Code, Header: w.Header(), Body: w.Body.Bytes()}
}

// count returns a row count of a query.
func (e *env) count(sql string, args ...any) int {
	e.t.Helper()
	return e.countOn(e.pool, sql, args...)
}

// treasuryCount counts in schema treasury, as the treasury login (the runtime role may not).
func (e *env) treasuryCount(sql string, args ...any) int {
	e.t.Helper()
	return e.countOn(e.tpool, sql, args...)
}

func (e *env) countOn(pool *pgxpool.Pool, sql string, args ...any) int {
	e.t.Helper()
	var n int
	require.NoError(e.t, pool.QueryRow(e.t.Context(), sql, args...).Scan(&n))
	return n
}
