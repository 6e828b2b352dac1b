package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/creatorvault/orchestrator/internal/password"
)

// SignIn configures passwords, sessions and an outside identity provider (issue 18).
type SignIn struct {
	// AccessTokenTTL is how long an access token lives (ACCESS_TOKEN_TTL).
	AccessTokenTTL time.Duration
	// SessionTTL is how long a session's refresh tokens work, however often they are rotated
	// (SESSION_TTL).
	SessionTTL time.Duration
	// OperatorTokenMaxTTL bounds the lifetime of tokens minted by `orchestrator token`
	// (OPERATOR_TOKEN_MAX_TTL); the API refuses a session-less token that lives longer.
	OperatorTokenMaxTTL time.Duration
	// SelfRegistration lets anyone create a fan account with POST /api/v1/auth/register
	// (SELF_REGISTRATION).
	SelfRegistration bool
	// Argon2 are the password hashing parameters (ARGON2_MEMORY_KIB, ARGON2_ITERATIONS,
	// ARGON2_PARALLELISM), at least OWASP's minimum.
	Argon2 password.Params
	// OIDC is an outside identity provider whose access tokens the API also accepts.
	OIDC OIDC
}

// OIDC configures an OpenID Connect provider (Keycloak, Ory, Auth0, Cognito).
type OIDC struct {
	// Issuer is the provider's issuer URL (OIDC_ISSUER); empty turns it off.
	Issuer string
	// Audience is the value the tokens' aud must contain (OIDC_AUDIENCE).
	Audience string
	// RoleClaim names the claim that holds the role (OIDC_ROLE_CLAIM); a dotted path reaches
	// into objects (realm_access.roles), and a list claim takes its first mapped value.
	RoleClaim string
	// RoleMap maps the provider's values to this API's roles (OIDC_ROLE_MAP,
	// "provider-value=role,..."); values that are already role names map to themselves.
	RoleMap map[string]string
}

// Defaults of the sign-in settings.
const (
	DefaultAccessTokenTTL      = 15 * time.Minute
	DefaultSessionTTL          = 30 * 24 * time.Hour
	DefaultOperatorTokenMaxTTL = 30 * 24 * time.Hour
)

var apiRoles = []string{"fan", "creator", "council", "admin", "service"}

func loadSignIn(e *env) SignIn {
	s := SignIn{
		AccessTokenTTL:      e.duration("ACCESS_TOKEN_TTL", DefaultAccessTokenTTL),
		SessionTTL:          e.duration("SESSION_TTL", DefaultSessionTTL),
		OperatorTokenMaxTTL: e.duration("OPERATOR_TOKEN_MAX_TTL", DefaultOperatorTokenMaxTTL),
		SelfRegistration:    e.boolean("SELF_REGISTRATION", false),
		Argon2: password.Params{
			MemoryKiB:   uint32(e.integer("ARGON2_MEMORY_KIB", int(password.Default.MemoryKiB), 1)),
			Iterations:  uint32(e.integer("ARGON2_ITERATIONS", int(password.Default.Iterations), 1)),
			Parallelism: uint8(e.integer("ARGON2_PARALLELISM", int(password.Default.Parallelism), 1)),
		},
		OIDC: OIDC{
			Issuer:    e.url("OIDC_ISSUER"),
			Audience:  e.str("OIDC_AUDIENCE", ""),
			RoleClaim: e.str("OIDC_ROLE_CLAIM", "role"),
			RoleMap:   map[string]string{},
		},
	}
	if s.AccessTokenTTL > time.Hour {
		e.fail("ACCESS_TOKEN_TTL", fmt.Errorf("at most 1h (access tokens are meant to be short-lived), got %s", s.AccessTokenTTL))
	}
	if err := s.Argon2.Check(); err != nil {
		e.fail("ARGON2_MEMORY_KIB", err)
	}
	if s.Argon2.Parallelism > 16 {
		e.fail("ARGON2_PARALLELISM", errors.New("at most 16"))
	}
	if s.OIDC.Issuer != "" && s.OIDC.Audience == "" {
		e.fail("OIDC_AUDIENCE", errors.New("required with OIDC_ISSUER (the tokens' aud is checked)"))
	}
	for _, pair := range e.list("OIDC_ROLE_MAP") {
		from, to, ok := strings.Cut(pair, "=")
		from, to = strings.TrimSpace(from), strings.TrimSpace(to)
		if !ok || from == "" || !contains(apiRoles, to) {
			e.fail("OIDC_ROLE_MAP", fmt.Errorf("want provider-value=role pairs with role one of %s, got %q", strings.Join(apiRoles, ", "), pair))
			continue
		}
		s.OIDC.RoleMap[from] = to
	}
	return s
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
