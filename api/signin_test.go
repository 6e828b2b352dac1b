package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/password"
)

// signInUser creates a user of role with credentials (through the API, as an admin would).
func (e *env) signInUser(role Role, email, pw string) uuid.UUID {
	e.t.Helper()
	admin := e.as(RoleAdmin)
	id := uuid.New()
	body := map[string]any{"role": role, "display_name": "User " + email}
	if role == RoleCreator {
		body["handle"] = "h" + id.String()[:8]
	}
	r := e.do(http.MethodPut, "/api/v1/users/"+id.String(), admin.Token, body)
	require.Equal(e.t, http.StatusCreated, r.Code, "%s", r.Body)
	r = e.do(http.MethodPost, "/api/v1/auth/register", admin.Token, map[string]any{"user_id": id.String(), "email": email, "password": pw})
	require.Equal(e.t, http.StatusCreated, r.Code, "%s", r.Body)
	return id
}

type tokenPair struct {
	Access, Refresh string
	Session         uuid.UUID
}

func (e *env) login(email, pw string) tokenPair {
	e.t.Helper()
	r := e.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": email, "password": pw})
	require.Equal(e.t, http.StatusOK, r.Code, "%s", r.Body)
	return pairOf(e.t, r)
}

func pairOf(t *testing.T, r response) tokenPair {
	t.Helper()
	m := r.JSON(t)
	require.Equal(t, "Bearer", m["token_type"])
	return tokenPair{Access: m["access_token"].(string), Refresh: m["refresh_token"].(string), Session: uuid.MustParse(m["session_id"].(string))}
}

func TestLoginRefreshRotationAndReuse(t *testing.T) {
	e := newEnv(t)
	id := e.signInUser(RoleFan, "ana@example.com", "correct horse battery")
	p := e.login("ANA@example.com ", "correct horse battery")
	claims, err := ParseToken(testSecret, p.Access)
	require.NoError(t, err)
	require.Equal(t, id, claims.UserID)
	require.Equal(t, p.Session, claims.SessionID)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/users/"+id.String(), p.Access, nil).Code)

	// Rotation: the refresh token is spent, a new one works.
	r := e.do(http.MethodPost, "/api/v1/auth/refresh", "", map[string]any{"refresh_token": p.Refresh})
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	p2 := pairOf(t, r)
	require.Equal(t, p.Session, p2.Session)
	require.NotEqual(t, p.Refresh, p2.Refresh)
	require.Equal(t, 2, e.count(`SELECT count(*) FROM refresh_tokens WHERE session_id = $1`, p.Session))
	require.Equal(t, 0, e.count(`SELECT count(*) FROM refresh_tokens WHERE token_hash = $1`, []byte(p.Refresh)), "only hashes are stored")

	// Reuse of the spent token: theft. The whole session ends: the newer refresh token and
	// the access tokens stop working.
	r = e.do(http.MethodPost, "/api/v1/auth/refresh", "", map[string]any{"refresh_token": p.Refresh})
	require.Equal(t, http.StatusUnauthorized, r.Code)
	require.Equal(t, "refresh_token_reused", r.ErrorCode(t))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM auth_sessions WHERE id = $1 AND revoke_reason = 'refresh_reuse'`, p.Session))
	r = e.do(http.MethodPost, "/api/v1/auth/refresh", "", map[string]any{"refresh_token": p2.Refresh})
	require.Equal(t, http.StatusUnauthorized, r.Code)
	require.Equal(t, "session_ended", r.ErrorCode(t))
	e.eventually401(p2.Access, "/api/v1/users/"+id.String())
	require.Equal(t, 1, e.count(`SELECT count(*) FROM access_log WHERE action = 'auth.refresh_reused' AND user_id = $1`, id))

	// Unknown and expired refresh tokens: 401, nothing changes.
	r = e.do(http.MethodPost, "/api/v1/auth/refresh", "", map[string]any{"refresh_token": "not-a-token"})
	require.Equal(t, "invalid_refresh_token", r.ErrorCode(t))
	p3 := e.login("ana@example.com", "correct horse battery")
	e.clock.Set(e.clock.Now().Add(31 * 24 * time.Hour))
	r = e.do(http.MethodPost, "/api/v1/auth/refresh", "", map[string]any{"refresh_token": p3.Refresh})
	require.Equal(t, http.StatusUnauthorized, r.Code)
	require.Equal(t, "session_ended", r.ErrorCode(t))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM refresh_tokens WHERE session_id = $1`, p3.Session))
}

// eventually401 waits (at most one second, the issue's bound) until token is refused.
func (e *env) eventually401(token, path string) {
	e.t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		r := e.do(http.MethodGet, path, token, nil)
		if r.Code == http.StatusUnauthorized {
			return
		}
		require.True(e.t, time.Now().Before(deadline), "the token still works after 1s: %d %s", r.Code, r.Body)
		time.Sleep(5 * time.Millisecond)
	}
}

func TestLoginBadInputAndUnknownEmailCodePath(t *testing.T) {
	e := newEnv(t)
	e.signInUser(RoleFan, "bo@example.com", "correct horse battery")
	s := e.server
	before := s.hasher.Verifications()
	wrong := e.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": "bo@example.com", "password": "wrong password!"})
	require.Equal(t, before+1, s.hasher.Verifications(), "a wrong password runs one Argon2id verification")
	unknown := e.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": "nobody@example.com", "password": "wrong password!"})
	require.Equal(t, before+2, s.hasher.Verifications(), "an unknown email runs the same verification, against the dummy hash")
	require.Equal(t, http.StatusUnauthorized, wrong.Code)
	require.Equal(t, wrong.Code, unknown.Code)
	require.Equal(t, string(wrong.Body), string(unknown.Body), "the answers are indistinguishable")
	require.Equal(t, 2, e.count(`SELECT count(*) FROM access_log WHERE action = 'auth.login_failed'`))
	require.Equal(t, 0, e.count(`SELECT count(*) FROM auth_sessions`))

	for name, body := range map[string]any{
		"empty":         map[string]any{"email": "", "password": ""},
		"unknown field": map[string]any{"email": "bo@example.com", "password": "x", "otp": 1},
		"not json":      "{",
	} {
		r := e.do(http.MethodPost, "/api/v1/auth/login", "", body)
		require.Equal(t, http.StatusBadRequest, r.Code, name)
	}
	// Registration: self-registration is off by default; a fan may not register anyone.
	r := e.do(http.MethodPost, "/api/v1/auth/register", "", map[string]any{"email": "new@example.com", "password": "long enough pw", "display_name": "New"})
	require.Equal(t, http.StatusForbidden, r.Code)
	require.Equal(t, "self_registration_disabled", r.ErrorCode(t))
	fan := e.as(RoleFan)
	r = e.do(http.MethodPost, "/api/v1/auth/register", fan.Token, map[string]any{"user_id": fan.ID.String(), "email": "f@example.com", "password": "long enough pw"})
	require.Equal(t, http.StatusForbidden, r.Code)
	r = e.do(http.MethodPost, "/api/v1/auth/register", e.as(RoleAdmin).Token, map[string]any{"user_id": uuid.NewString(), "email": "g@example.com", "password": "short"})
	require.Equal(t, "weak_password", r.ErrorCode(t))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM credentials`))
}

func TestLoginRehashesWithNewParameters(t *testing.T) {
	e := newEnv(t)
	id := e.signInUser(RoleFan, "cy@example.com", "correct horse battery")
	old, err := password.NewHasher(password.Params{MemoryKiB: 12288, Iterations: 3, Parallelism: 1})
	require.NoError(t, err)
	h, err := old.Hash("correct horse battery")
	require.NoError(t, err)
	_, err = db.SetPasswordHash(t.Context(), e.pool, id, h, "", time.Now())
	require.NoError(t, err)

	e.login("cy@example.com", "correct horse battery")
	var stored string
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT password_hash FROM credentials WHERE user_id = $1`, id).Scan(&stored))
	got, err := password.ParamsOf(stored)
	require.NoError(t, err)
	require.Equal(t, password.Default, got, "rehashed with the configured parameters on sign-in")
	e.login("cy@example.com", "correct horse battery")
}

func TestPasswordChangeEndsSessions(t *testing.T) {
	e := newEnv(t)
	id := e.signInUser(RoleFan, "di@example.com", "correct horse battery")
	a := e.login("di@example.com", "correct horse battery")
	b := e.login("di@example.com", "correct horse battery")
	r := e.do(http.MethodPut, "/api/v1/auth/password", a.Access, map[string]any{"current_password": "nope nope nope", "new_password": "a new long password"})
	require.Equal(t, http.StatusUnauthorized, r.Code)
	r = e.do(http.MethodPut, "/api/v1/auth/password", a.Access, map[string]any{"current_password": "correct horse battery", "new_password": "a new long password"})
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	fresh := pairOf(t, r)
	e.eventually401(a.Access, "/api/v1/users/"+id.String())
	e.eventually401(b.Access, "/api/v1/users/"+id.String())
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/users/"+id.String(), fresh.Access, nil).Code)
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": "di@example.com", "password": "correct horse battery"}).Code)
	e.login("di@example.com", "a new long password")

	// Logout ends the session it is called with.
	require.Equal(t, http.StatusNoContent, e.do(http.MethodPost, "/api/v1/auth/logout", fresh.Access, nil).Code)
	e.eventually401(fresh.Access, "/api/v1/users/"+id.String())
	require.Equal(t, 1, e.count(`SELECT count(*) FROM access_log WHERE action = 'auth.logout' AND user_id = $1`, id))
}

func TestLoginLimitsAcrossInstances(t *testing.T) {
	pool := mustFresh(t)
	limits := func(d *Deps) {
		d.SignIn = SignInOptions{AccountLimit: db.Limit{Max: 4, Window: time.Hour}, AddressLimit: db.Limit{Max: 6, Window: time.Hour}}
	}
	a := newEnvOn(t, pool, limits)
	b := newEnvOn(t, pool, limits)
	a.signInUser(RoleFan, "ed@example.com", "correct horse battery")
	try := func(e *env, email string) response {
		return e.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": email, "password": "guess guess guess"})
	}
	// Per account: four attempts spread over two instances, the fifth is refused on either.
	for i := range 4 {
		e := []*env{a, b}[i%2]
		require.Equal(t, http.StatusUnauthorized, try(e, "ed@example.com").Code)
	}
	r := try(b, "ed@example.com")
	require.Equal(t, http.StatusTooManyRequests, r.Code)
	require.Equal(t, "rate_limited", r.ErrorCode(t))
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	// Even the right password is refused now: the limit is before the check.
	r = a.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": "ed@example.com", "password": "correct horse battery"})
	require.Equal(t, http.StatusTooManyRequests, r.Code)

	// Per address: other accounts from the same address run into the address limit (six
	// attempts so far counted for the address).
	r = try(a, "someone@example.com")
	require.Equal(t, http.StatusTooManyRequests, r.Code)
	require.Contains(t, r.JSON(t)["error"].(map[string]any)["message"], "address")
	require.Equal(t, 3, a.count(`SELECT count(*) FROM access_log WHERE action = 'auth.rate_limited'`))
	require.Equal(t, 0, a.count(`SELECT count(*) FROM auth_sessions`))
}

// Operator-minted tokens (no session) stay for service accounts, with a lifetime limit
// (OPERATOR_TOKEN_MAX_TTL, default 30 days): a longer-lived one is refused.
func TestOperatorTokensHaveALifetimeLimit(t *testing.T) {
	e := newEnv(t)
	id := uuid.New()
	ok, err := IssueToken(testSecret, id, RoleService, 29*24*time.Hour, time.Now())
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/users", ok, nil).Code)
	long, err := IssueToken(testSecret, id, RoleService, 31*24*time.Hour, time.Now())
	require.NoError(t, err)
	r := e.do(http.MethodGet, "/api/v1/users", long, nil)
	require.Equal(t, http.StatusUnauthorized, r.Code)
	require.Contains(t, string(r.Body), "OPERATOR_TOKEN_MAX_TTL")
	// A tighter limit applies to tokens already minted.
	tight := newEnv(t, func(d *Deps) { d.Config.SignIn.OperatorTokenMaxTTL = 24 * time.Hour })
	require.Equal(t, http.StatusUnauthorized, tight.do(http.MethodGet, "/api/v1/users", ok, nil).Code)
}

// With SELF_REGISTRATION on, anyone creates a fan account (and only a fan), limited per
// address; the new account signs in.
func TestSelfRegistration(t *testing.T) {
	e := newEnv(t, func(d *Deps) {
		d.Config.SignIn.SelfRegistration = true
		d.SignIn.RegistrationLimit = db.Limit{Max: 2, Window: time.Hour}
	})
	r := e.do(http.MethodPost, "/api/v1/auth/register", "", map[string]any{"email": "new@example.com", "password": "long enough pw", "display_name": "New"})
	require.Equal(t, http.StatusCreated, r.Code, "%s", r.Body)
	id := uuid.MustParse(r.JSON(t)["user_id"].(string))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM users WHERE id = $1 AND role = 'fan'`, id))
	p := e.login("new@example.com", "long enough pw")
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/users/"+id.String(), p.Access, nil).Code)

	// The same email again: 409, nothing created. A user_id (someone else's account) without
	// a token: 400.
	r = e.do(http.MethodPost, "/api/v1/auth/register", "", map[string]any{"email": "NEW@example.com", "password": "long enough pw", "display_name": "Again"})
	require.Equal(t, http.StatusConflict, r.Code, "%s", r.Body)
	r = e.do(http.MethodPost, "/api/v1/auth/register", "", map[string]any{"user_id": id.String(), "email": "x@example.com", "password": "long enough pw", "display_name": "X"})
	require.Equal(t, http.StatusBadRequest, r.Code)
	require.Equal(t, 1, e.count(`SELECT count(*) FROM users`))
	// The per-address limit (2 here): the third registration is refused.
	r = e.do(http.MethodPost, "/api/v1/auth/register", "", map[string]any{"email": "third@example.com", "password": "long enough pw", "display_name": "Third"})
	require.Equal(t, http.StatusTooManyRequests, r.Code, "%s", r.Body)
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM credentials`))
}
