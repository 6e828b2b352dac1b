package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Role is what a user may do; it travels in the token's role claim.
type Role string

// The roles. Service is for other back-end systems (imports, payment processors).
const (
	RoleFan     Role = "fan"
	RoleCreator Role = "creator"
	RoleCouncil Role = "council"
	RoleAdmin   Role = "admin"
	RoleService Role = "service"
)

// Roles lists every role, for validation and documentation.
var Roles = []Role{RoleFan, RoleCreator, RoleCouncil, RoleAdmin, RoleService}

// ValidRole reports whether r is one of Roles.
func ValidRole(r string) bool { return slices.Contains(Roles, Role(r)) }

// Principal is the authenticated caller. Handlers take the user id from here and nowhere
// else: never from a header or a body.
type Principal struct {
	UserID uuid.UUID
	Role   Role
	// SessionID is the sign-in session the token belongs to (its sid claim); uuid.Nil for
	// operator-minted tokens (`orchestrator token`) and an outside provider's tokens.
	SessionID uuid.UUID
	// External is set for a token of the OIDC provider: its role comes from the provider.
	External bool
}

// claims are the token's claims: sub (user id), role, iat, exp, and sid (the session) for
// tokens of a sign-in.
type claims struct {
	Role string `json:"role"`
	Sid  string `json:"sid,omitempty"`
	jwt.RegisteredClaims
}

// IssueToken signs an HS256 token for user with role, valid for ttl from now.
func IssueToken(secret []byte, user uuid.UUID, role Role, ttl time.Duration, now time.Time) (string, error) {
	return IssueSessionToken(secret, user, role, uuid.Nil, ttl, now)
}

// IssueSessionToken signs an access token of session sid (uuid.Nil: none, an operator token).
func IssueSessionToken(secret []byte, user uuid.UUID, role Role, sid uuid.UUID, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < 32 {
		return "", errors.New("JWT secret must be at least 32 bytes")
	}
	if !ValidRole(string(role)) {
		return "", fmt.Errorf("unknown role %q (want one of fan, creator, council, admin, service)", role)
	}
	cl := claims{
		Role: string(role),
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	if sid != uuid.Nil {
		cl.Sid = sid.String()
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, cl).SignedString(secret)
}

// tokenParser pins the algorithm to HS256 (so "none" and RS/ES tokens are refused) and
// requires an expiry.
var tokenParser = jwt.NewParser(
	jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
	jwt.WithExpirationRequired(),
	jwt.WithIssuedAt(),
	jwt.WithLeeway(tokenLeeway),
)

// tokenLeeway is the clock skew allowed on exp and iat.
const tokenLeeway = 30 * time.Second

// ParseToken verifies a token and returns its principal.
func ParseToken(secret []byte, raw string) (Principal, error) {
	p, _, err := parseToken(secret, raw)
	return p, err
}

// parsedToken is what a verified token says beside its principal.
type parsedToken struct {
	life time.Duration // exp - iat
	exp  time.Time
}

// parseToken verifies a token and returns its principal, its lifetime and its expiry.
func parseToken(secret []byte, raw string) (Principal, parsedToken, error) {
	var cl claims
	_, err := tokenParser.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return secret, nil })
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return Principal{}, parsedToken{}, errors.New("the token has expired")
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return Principal{}, parsedToken{}, errors.New("the token's signature or algorithm is not accepted")
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return Principal{}, parsedToken{}, errors.New("the token lacks a required claim (exp)")
		default:
			return Principal{}, parsedToken{}, errors.New("the token is not valid")
		}
	}
	id, err := uuid.Parse(cl.Subject)
	if err != nil {
		return Principal{}, parsedToken{}, errors.New("the token's sub claim is not a user id")
	}
	if !ValidRole(cl.Role) {
		return Principal{}, parsedToken{}, errors.New("the token's role claim is not a known role")
	}
	p := Principal{UserID: id, Role: Role(cl.Role)}
	if cl.Sid != "" {
		if p.SessionID, err = uuid.Parse(cl.Sid); err != nil {
			return Principal{}, parsedToken{}, errors.New("the token's sid claim is not a session id")
		}
	}
	pt := parsedToken{exp: cl.ExpiresAt.Time, life: time.Duration(1<<63 - 1)}
	if cl.IssuedAt != nil {
		pt.life = cl.ExpiresAt.Sub(cl.IssuedAt.Time)
	}
	return p, pt, nil
}

const principalKey = "principal"

// authenticate requires a valid bearer token and stores the principal on the context.
// Failures are written to the access log.
func (s *Server) authenticate(c *gin.Context) {
	raw, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok {
		s.audit(c, nil, "auth.failed", "", "missing bearer token")
		fail(c, http.StatusUnauthorized, "unauthenticated", "send Authorization: Bearer <token>")
		return
	}
	p, err := s.verifyToken(c, raw)
	if err != nil {
		s.refuseToken(c, "", err)
		return
	}
	c.Set(principalKey, p)
	c.Next()
}

func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", false
	}
	return strings.TrimSpace(tok), true
}

// principal returns the authenticated caller; only valid behind authenticate.
func principal(c *gin.Context) Principal {
	return c.MustGet(principalKey).(Principal)
}

// requireRole lets only callers with one of roles through.
func requireRole(roles ...Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !slices.Contains(roles, principal(c).Role) {
			names := make([]string, len(roles))
			for i, r := range roles {
				names[i] = string(r)
			}
			forbidden(c, "this needs the "+strings.Join(names, " or ")+" role")
			return
		}
		c.Next()
	}
}
