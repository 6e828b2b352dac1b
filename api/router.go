// Package api is the HTTP side: a gin router built by NewRouter from its dependencies, handlers
// per domain, authentication, rate limits and the WebSocket hub.
package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/password"
)

// Deps are what the API needs; NewRouter takes them and nothing global.
type Deps struct {
	// Pool is the application's PostgreSQL pool, as the runtime role.
	Pool *pgxpool.Pool
	// TreasuryPool connects as the treasury login (TREASURY_DATABASE_URL): the treasury's
	// reads and writes go through it. Nil means Pool.
	TreasuryPool *pgxpool.Pool
	// Temporal is the process's one Temporal client.
	Temporal client.Client
	// Config is the process configuration.
	Config *config.Config
	// Logger receives request errors and the access log's failures.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now. Tests move it.
	Now func() time.Time
	// Context is the server's lifetime: when it ends, WebSockets close with "going away" and
	// the real-time listener stops. Nil means context.Background().
	Context context.Context
	// Realtime tunes the WebSocket (heartbeat, buffers, limits); zero values are defaults.
	Realtime RealtimeOptions
	// SignIn tunes the sign-in limits; zero values are defaults.
	SignIn SignInOptions
}

// Server holds the handlers' dependencies.
type Server struct {
	pool         *pgxpool.Pool
	treasuryPool *pgxpool.Pool
	temporal     client.Client
	cfg          *config.Config
	logger       *slog.Logger
	now          func() time.Time
	hub          *wsHub
	comments     *commentPages
	sends        *messageSends
	// Sign-in (issue 18): password hashing, the revocation set, an optional OIDC provider.
	hasher   *password.Hasher
	revoked  *revocations
	verified verifiedTokens
	oidc     *oidcVerifier
	signIn   signInSettings
}

// NewRouter builds the HTTP handler with every route of the API.
func NewRouter(d Deps) *gin.Engine {
	r, _ := buildRouter(d)
	return r
}

func buildRouter(d Deps) (*gin.Engine, *Server) {
	s := newServer(d)
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	if err := r.SetTrustedProxies(d.Config.TrustedProxies); err != nil {
		s.logger.Warn("TRUSTED_PROXIES: ignored", "error", err)
		_ = r.SetTrustedProxies(nil)
	}
	r.Use(recoverJSON(s.logger), observe(), accessLog(s.logger), refuseNUL())
	r.NoRoute(func(c *gin.Context) { fail(c, http.StatusNotFound, "not_found", "no such endpoint") })
	r.NoMethod(func(c *gin.Context) {
		fail(c, http.StatusMethodNotAllowed, "method_not_allowed", "this endpoint does not take "+c.Request.Method)
	})

	r.GET("/health", s.health)
	r.GET("/ready", s.ready)
	r.GET("/metrics", gin.WrapH(metricsHandler()))
	r.GET("/openapi.json", serveOpenAPI)

	s.registerRealtime(r)
	v1 := r.Group("/api/v1", s.authenticate)
	s.registerAccounts(v1)
	s.registerTreasury(v1)
	s.registerOps(v1)
	s.registerAnalytics(v1)
	s.registerComments(v1)
	s.registerMessages(v1)
	s.registerSignIn(r.Group("/api/v1/auth"), v1)
	s.registerErasure(v1)
	return r, s
}

func newServer(d Deps) *Server {
	s := &Server{pool: d.Pool, treasuryPool: d.TreasuryPool, temporal: d.Temporal, cfg: d.Config, logger: d.Logger, now: d.Now}
	if s.treasuryPool == nil {
		s.treasuryPool = d.Pool
	}
	if s.logger == nil {
		s.logger = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.hub = newWSHub(s, d.Context, d.Realtime)
	s.comments = newCommentPages(commentPageCacheBytes)
	s.sends = newMessageSends(d.Context, d.Pool)
	s.initSignIn(d.Context, d.SignIn)
	return s
}

// health is liveness: the process serves HTTP.
func (s *Server) health(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// ready checks the parts a request needs: PostgreSQL and the Temporal frontend. A failing
// part is named, with status 503.
func (s *Server) ready(c *gin.Context) {
	ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
	defer cancel()
	checks := map[string]string{}
	healthy := true
	check := func(name string, err error) {
		if err != nil {
			healthy = false
			checks[name] = err.Error()
			return
		}
		checks[name] = "ok"
	}
	check("postgres", s.pool.Ping(ctx))
	var terr error
	if s.temporal == nil {
		terr = errNoTemporal
	} else {
		_, terr = s.temporal.CheckHealth(ctx, &client.CheckHealthRequest{})
	}
	check("temporal", terr)
	if !healthy {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unavailable", "checks": checks})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "checks": checks})
}

var errNoTemporal = errors.New("no Temporal client configured")
