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
}

// claims are the token's claims: sub (user id), role, iat, exp.
type claims struct {
	Role string `json:"role"`
	jwt.RegisteredClaims
}

// IssueToken signs an HS256 token for user with role, valid for ttl from now.
func IssueToken(secret []byte, user uuid.UUID, role Role, ttl time.Duration, now time.Time) (string, error) {
	if len(secret) < 32 {
		return "", errors.New("JWT secret must be at least 32 bytes")
	}
	if !ValidRole(string(role)) {
		return "", fmt.Errorf("unknown role %q (want one of fan, creator, council, admin, service)", role)
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
		Role: string(role),
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   user.String(),
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	})
	return tok.SignedString(secret)
}

// tokenParser pins the algorithm to HS256 (so "none" and RS/ES tokens are refused) and
// requires an expiry.
var tokenParser = jwt.NewParser(
	jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
	jwt.WithExpirationRequired(),
	jwt.WithIssuedAt(),
	jwt.WithLeeway(30*time.Second),
)

// ParseToken verifies a token and returns its principal.
func ParseToken(secret []byte, raw string) (Principal, error) {
	var cl claims
	_, err := tokenParser.ParseWithClaims(raw, &cl, func(*jwt.Token) (any, error) { return secret, nil })
	if err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return Principal{}, errors.New("the token has expired")
		case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
			return Principal{}, errors.New("the token's signature or algorithm is not accepted")
		case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
			return Principal{}, errors.New("the token lacks a required claim (exp)")
		default:
			return Principal{}, errors.New("the token is not valid")
		}
	}
	id, err := uuid.Parse(cl.Subject)
	if err != nil {
		return Principal{}, errors.New("the token's sub claim is not a user id")
	}
	if !ValidRole(cl.Role) {
		return Principal{}, errors.New("the token's role claim is not a known role")
	}
	return Principal{UserID: id, Role: Role(cl.Role)}, nil
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
	p, err := ParseToken(s.cfg.Auth.JWTSecret, raw)
	if err != nil {
		s.audit(c, nil, "auth.failed", "", err.Error())
		fail(c, http.StatusUnauthorized, "unauthenticated", err.Error())
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
