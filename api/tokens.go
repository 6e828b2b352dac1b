package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/internal/config"
)

// verifyToken turns a bearer token into a principal: the API's own HS256 tokens (sign-in
// sessions and operator tokens) or, with OIDC_ISSUER set, the provider's access tokens. A
// verified token is then checked against this instance's in-memory revocation set.
func (s *Server) verifyToken(ctx context.Context, raw string) (Principal, error) {
	var p Principal
	var err error
	switch cached, ok := s.verified.get(raw, time.Now()); {
	case ok:
		p = cached
	case s.oidc != nil && tokenAlg(raw) != "HS256":
		p, err = s.oidc.verify(ctx, raw)
	default:
		var pt parsedToken
		p, pt, err = parseToken(s.cfg.Auth.JWTSecret, raw)
		if err == nil && p.SessionID == uuid.Nil && pt.life > s.signIn.operatorMaxTTL {
			err = fmt.Errorf("the token lives longer than OPERATOR_TOKEN_MAX_TTL (%s) allows", s.signIn.operatorMaxTTL)
		}
		if err == nil {
			s.verified.put(raw, p, pt.exp.Add(tokenLeeway))
		}
	}
	if err != nil {
		return Principal{}, err
	}
	if err := s.revoked.check(ctx, p); err != nil {
		return Principal{}, err
	}
	return p, nil
}

// verifiedTokens remembers the API's own tokens this instance has accepted, so a client that
// sends the same token with every request pays for its signature check and claims parsing
// (a third of a comment listing's CPU here) once, not on every request. An entry is keyed by
// the token's exact text and serves it only until the moment the parser would refuse it
// (exp plus the leeway), checked at every use; a token that differs in any byte is verified
// in full. The secret does not change while the process runs. Revocation is not cached:
// verifyToken checks it on every request. Bounded: a full set is emptied and refills.
type verifiedTokens struct {
	mu sync.RWMutex
	m  map[string]verifiedToken
}

type verifiedToken struct {
	p     Principal
	until time.Time
}

// maxVerifiedTokens bounds the set (a few MB of tokens).
const maxVerifiedTokens = 16384

func (v *verifiedTokens) get(raw string, now time.Time) (Principal, bool) {
	v.mu.RLock()
	e, ok := v.m[raw]
	v.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return Principal{}, false
	}
	return e.p, true
}

func (v *verifiedTokens) put(raw string, p Principal, until time.Time) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.m == nil || len(v.m) >= maxVerifiedTokens {
		v.m = make(map[string]verifiedToken)
	}
	v.m[raw] = verifiedToken{p: p, until: until}
}

// refuseToken answers a token that does not count: 401 (503 while this instance cannot know
// what was revoked), and records it in the access log.
func (s *Server) refuseToken(c *gin.Context, where string, err error) {
	s.audit(c, nil, "auth.failed", where, err.Error())
	if errors.Is(err, errRevocationsUnavailable) {
		c.Header("Retry-After", "1")
		fail(c, http.StatusServiceUnavailable, "unavailable", err.Error())
		return
	}
	fail(c, http.StatusUnauthorized, "unauthenticated", err.Error())
}

// tokenAlg reads a JWT's alg header without verifying anything ("" when unreadable).
func tokenAlg(raw string) string {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return ""
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if json.Unmarshal(b, &h) != nil {
		return ""
	}
	return h.Alg
}

// oidcVerifier checks an outside provider's access tokens with github.com/coreos/go-oidc:
// discovery once (retried until it works), JWKS cached and refetched when a token names an
// unknown kid, algorithms pinned to RS256/ES256/EdDSA, issuer, audience and expiry checked.
type oidcVerifier struct {
	cfg config.OIDC
	ctx context.Context

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
}

func newOIDCVerifier(ctx context.Context, cfg config.OIDC) *oidcVerifier {
	if cfg.Issuer == "" {
		return nil
	}
	return &oidcVerifier{cfg: cfg, ctx: ctx}
}

func (o *oidcVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.verifier != nil {
		return o.verifier, nil
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// Discovery with the request's deadline; the key set lives as long as the server.
	p, err := oidc.NewProvider(oidc.ClientContext(dctx, http.DefaultClient), o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("the identity provider's discovery failed: %w", err)
	}
	var meta struct {
		JWKS string `json:"jwks_uri"`
	}
	if err := p.Claims(&meta); err != nil || meta.JWKS == "" {
		return nil, errors.New("the identity provider's discovery document has no jwks_uri")
	}
	keys := oidc.NewRemoteKeySet(o.ctx, meta.JWKS)
	o.verifier = oidc.NewVerifier(o.cfg.Issuer, keys, &oidc.Config{
		ClientID:             o.cfg.Audience,
		SupportedSigningAlgs: []string{oidc.RS256, oidc.ES256, oidc.EdDSA},
	})
	return o.verifier, nil
}

// verify checks a provider token and maps it to a principal: the user id is sub when it is
// a UUID, else a UUIDv5 of issuer and sub (stable, and distinct per provider); the role comes
// from the configured claim through OIDC_ROLE_MAP.
func (o *oidcVerifier) verify(ctx context.Context, raw string) (Principal, error) {
	v, err := o.get(ctx)
	if err != nil {
		return Principal{}, err
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return Principal{}, errors.New("the token has expired")
		}
		return Principal{}, errors.New("the identity provider's token is not valid")
	}
	var all map[string]any
	if err := tok.Claims(&all); err != nil {
		return Principal{}, errors.New("the identity provider's token is not valid")
	}
	role, ok := o.role(all)
	if !ok {
		return Principal{}, fmt.Errorf("the token's %s claim maps to no role", o.cfg.RoleClaim)
	}
	id, err := uuid.Parse(tok.Subject)
	if err != nil {
		id = uuid.NewSHA1(uuid.NameSpaceURL, []byte(o.cfg.Issuer+"#"+tok.Subject))
	}
	return Principal{UserID: id, Role: role, External: true}, nil
}

func (o *oidcVerifier) role(claims map[string]any) (Role, bool) {
	var v any = claims
	for _, part := range strings.Split(o.cfg.RoleClaim, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return "", false
		}
		v = m[part]
	}
	var values []string
	switch x := v.(type) {
	case string:
		values = []string{x}
	case []any:
		for _, e := range x {
			if s, ok := e.(string); ok {
				values = append(values, s)
			}
		}
	}
	for _, val := range values {
		if r, ok := o.cfg.RoleMap[val]; ok {
			return Role(r), true
		}
		if ValidRole(val) {
			return Role(val), true
		}
	}
	return "", false
}
