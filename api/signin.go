package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/password"
)

// Sign-in limits: attempts per account (its email) and per source address, counted in
// PostgreSQL so they hold across API instances. Every attempt counts, successful or not.
const (
	minPasswordChars  = 10
	refreshTokenBytes = 32
)

// SignInOptions tune the sign-in limits. Zero values take the defaults in brackets.
type SignInOptions struct {
	// AccountLimit bounds sign-in attempts (and password changes) per account [10 an hour].
	AccountLimit db.Limit
	// AddressLimit bounds sign-in attempts per source address [50 an hour].
	AddressLimit db.Limit
	// RegistrationLimit bounds self-registrations per source address [10 an hour].
	RegistrationLimit db.Limit
}

// signInSettings are the sign-in configuration with defaults filled in.
type signInSettings struct {
	accessTTL, sessionTTL, operatorMaxTTL time.Duration
	selfRegistration                      bool
	accountLimit, addressLimit, regLimit  db.Limit
}

func limitOr(l, d db.Limit) db.Limit {
	if l.Max <= 0 || l.Window <= 0 {
		return d
	}
	return l
}

// initSignIn builds the password hasher, the revocation set and the OIDC verifier.
func (s *Server) initSignIn(ctx context.Context, o SignInOptions) {
	if ctx == nil {
		ctx = context.Background()
	}
	c := s.cfg.SignIn
	def := func(v, d time.Duration) time.Duration {
		if v <= 0 {
			return d
		}
		return v
	}
	s.signIn = signInSettings{
		accessTTL:        def(c.AccessTokenTTL, config.DefaultAccessTokenTTL),
		sessionTTL:       def(c.SessionTTL, config.DefaultSessionTTL),
		operatorMaxTTL:   def(c.OperatorTokenMaxTTL, config.DefaultOperatorTokenMaxTTL),
		selfRegistration: c.SelfRegistration,
		accountLimit:     limitOr(o.AccountLimit, db.Limit{Max: 10, Window: time.Hour}),
		addressLimit:     limitOr(o.AddressLimit, db.Limit{Max: 50, Window: time.Hour}),
		regLimit:         limitOr(o.RegistrationLimit, db.Limit{Max: 10, Window: time.Hour}),
	}
	h, err := password.NewHasher(c.Argon2)
	if err != nil {
		h, _ = password.NewHasher(password.Default)
	}
	s.hasher = h
	// Keep revocations as long as any token they could stop may live (plus the parser's
	// leeway): a session's access tokens live at most an hour (ACCESS_TOKEN_TTL's bound);
	// role changes and erasures also stop operator tokens.
	s.revoked = newRevocations(ctx, s.pool, s.logger, time.Hour+time.Minute,
		max(s.signIn.accessTTL, s.signIn.operatorMaxTTL)+time.Minute)
	s.oidc = newOIDCVerifier(ctx, c.OIDC)
}

// registerSignIn adds the sign-in endpoints: login, refresh and register need no token;
// logout, password change and the admin's revocation do.
func (s *Server) registerSignIn(public, v1 *gin.RouterGroup) {
	public.POST("/register", s.register)
	public.POST("/login", s.login)
	public.POST("/refresh", s.refresh)
	v1.POST("/auth/logout", s.logout)
	v1.PUT("/auth/password", s.changePassword)
	v1.POST("/users/:id/sessions/revoke", requireRole(RoleAdmin), s.revokeUserSessions)
}

// tokenPairJSON answers a sign-in, refresh or password change.
type tokenPairJSON struct {
	AccessToken  string    `json:"access_token"`
	TokenType    string    `json:"token_type"`
	ExpiresIn    int       `json:"expires_in"`
	RefreshToken string    `json:"refresh_token"`
	SessionID    uuid.UUID `json:"session_id"`
	UserID       uuid.UUID `json:"user_id"`
	Role         string    `json:"role"`
}

func newRefreshToken() (string, []byte, error) {
	b := make([]byte, refreshTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	tok := base64.RawURLEncoding.EncodeToString(b)
	return tok, refreshHash(tok), nil
}

func refreshHash(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func (s *Server) accessToken(user uuid.UUID, role string, sid uuid.UUID) (string, error) {
	return IssueSessionToken(s.cfg.Auth.JWTSecret, user, Role(role), sid, s.signIn.accessTTL, s.now())
}

// startSession creates a session for user and answers with its first token pair.
func (s *Server) startSession(c *gin.Context, user uuid.UUID, role string, status int) bool {
	now := s.now()
	tok, hash, err := newRefreshToken()
	if err != nil {
		s.internalError(c, err)
		return false
	}
	sess := db.Session{ID: uuid.New(), UserID: user, Role: role, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(s.signIn.sessionTTL), IP: c.ClientIP(), UserAgent: c.Request.UserAgent()}
	if err := db.CreateSession(c, s.pool, sess, hash); err != nil {
		s.internalError(c, err)
		return false
	}
	access, err := s.accessToken(user, role, sess.ID)
	if err != nil {
		s.internalError(c, err)
		return false
	}
	c.JSON(status, tokenPairJSON{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.signIn.accessTTL.Seconds()),
		RefreshToken: tok, SessionID: sess.ID, UserID: user, Role: role})
	return true
}

// ---- login ----

type loginRequest struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

// login checks an email and password. An unknown email runs the same verification as a
// wrong password (against a dummy hash with the current parameters), so the answer's timing
// does not tell which emails have accounts; both get the same 401.
func (s *Server) login(c *gin.Context) {
	var req loginRequest
	if !decodeJSON(c, &req) {
		return
	}
	email := db.NormalizeEmail(req.Email)
	if email == "" || req.Password == "" || len(req.Password) > password.MaxBytes || len(email) > 254 {
		badRequest(c, "invalid_credentials_format", "send email and password (at most 1024 bytes)")
		return
	}
	if !s.allowSignIn(c, "login:address:"+c.ClientIP(), s.signIn.addressLimit, "sign-in attempts from this address") ||
		!s.allowSignIn(c, accountBucket(email), s.signIn.accountLimit, "sign-in attempts for this account") {
		return
	}
	cred, err := db.CredentialsByEmail(c, s.pool, email)
	found := err == nil && !cred.Erased
	if err != nil && !errors.Is(err, db.ErrNotFound) {
		s.internalError(c, err)
		return
	}
	hash := s.hasher.Dummy()
	if found {
		hash = cred.PasswordHash
	}
	ok := s.hasher.Verify(hash, req.Password) && found
	if !ok {
		detail := "unknown email"
		var who *Principal
		if found {
			detail = "wrong password"
			who = &Principal{UserID: cred.UserID, Role: Role(cred.Role)}
		}
		s.audit(c, who, "auth.login_failed", "", detail)
		fail(c, http.StatusUnauthorized, "invalid_credentials", "the email or the password is wrong")
		return
	}
	if s.hasher.NeedsRehash(cred.PasswordHash) {
		if nh, err := s.hasher.Hash(req.Password); err == nil {
			if _, err := db.SetPasswordHash(c, s.pool, cred.UserID, nh, cred.PasswordHash, s.now()); err != nil {
				s.logger.Warn("sign-in: rehash failed", "error", err)
			}
		}
	}
	p := Principal{UserID: cred.UserID, Role: Role(cred.Role)}
	if s.startSession(c, cred.UserID, cred.Role, http.StatusOK) {
		s.audit(c, &p, "auth.login", "", "")
	}
}

// accountBucket is the rate-limit bucket of an email's sign-ins: keyed by a hash, so the
// limits table holds no email address (nothing there for an erasure to miss).
func accountBucket(email string) string {
	h := sha256.Sum256([]byte(strings.ToLower(email)))
	return "login:account:" + hex.EncodeToString(h[:16])
}

// allowSignIn is allow, with the refusal in the access log.
func (s *Server) allowSignIn(c *gin.Context, bucket string, limit db.Limit, what string) bool {
	if s.allow(c, bucket, limit, what) {
		return true
	}
	if c.Writer.Status() == http.StatusTooManyRequests {
		s.audit(c, nil, "auth.rate_limited", "", what)
	}
	return false
}

// ---- refresh ----

type refreshRequest struct {
	RefreshToken string `json:"refresh_token"`
}

// refresh rotates a refresh token: the presented one is spent, a new pair is returned with
// the user's current role. Presenting a spent token again ends the whole session.
func (s *Server) refresh(c *gin.Context) {
	var req refreshRequest
	if !decodeJSON(c, &req) {
		return
	}
	if req.RefreshToken == "" || len(req.RefreshToken) > 256 {
		badRequest(c, "invalid_refresh_token", "send refresh_token")
		return
	}
	tok, hash, err := newRefreshToken()
	if err != nil {
		s.internalError(c, err)
		return
	}
	sess, err := db.RotateRefresh(c, s.pool, refreshHash(req.RefreshToken), hash, s.now())
	switch {
	case errors.Is(err, db.ErrRefreshReused):
		p := Principal{UserID: sess.UserID, Role: Role(sess.Role), SessionID: sess.ID}
		s.audit(c, &p, "auth.refresh_reused", sess.ID.String(), "a rotated refresh token was presented again; session revoked")
		fail(c, http.StatusUnauthorized, "refresh_token_reused", err.Error())
		return
	case errors.Is(err, db.ErrRefreshUnknown):
		s.audit(c, nil, "auth.refresh_failed", "", "unknown refresh token")
		fail(c, http.StatusUnauthorized, "invalid_refresh_token", err.Error())
		return
	case errors.Is(err, db.ErrSessionEnded):
		s.audit(c, &Principal{UserID: sess.UserID, Role: Role(sess.Role)}, "auth.refresh_failed", sess.ID.String(), "session ended")
		fail(c, http.StatusUnauthorized, "session_ended", err.Error())
		return
	case err != nil:
		s.internalError(c, err)
		return
	}
	access, err := s.accessToken(sess.UserID, sess.Role, sess.ID)
	if err != nil {
		s.internalError(c, err)
		return
	}
	s.audit(c, &Principal{UserID: sess.UserID, Role: Role(sess.Role), SessionID: sess.ID}, "auth.refresh", sess.ID.String(), "")
	c.JSON(http.StatusOK, tokenPairJSON{AccessToken: access, TokenType: "Bearer", ExpiresIn: int(s.signIn.accessTTL.Seconds()),
		RefreshToken: tok, SessionID: sess.ID, UserID: sess.UserID, Role: sess.Role})
}

// ---- logout, password, revocation ----

func (s *Server) logout(c *gin.Context) {
	p := principal(c)
	if p.SessionID == uuid.Nil {
		badRequest(c, "no_session", "this token belongs to no sign-in session (an operator or identity-provider token)")
		return
	}
	if _, err := db.RevokeSession(c, s.pool, p.UserID, p.SessionID, "logout", s.now()); err != nil {
		s.internalError(c, err)
		return
	}
	s.audit(c, &p, "auth.logout", p.SessionID.String(), "")
	c.Status(http.StatusNoContent)
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password"`
	NewPassword     string `json:"new_password"`
}

// changePassword replaces the caller's password, ends every session of theirs and answers
// with a new session's tokens.
func (s *Server) changePassword(c *gin.Context) {
	p := principal(c)
	var req passwordRequest
	if !decodeJSON(c, &req) {
		return
	}
	if msg := passwordProblem(req.NewPassword); msg != "" {
		badRequest(c, "weak_password", msg)
		return
	}
	if !s.allowSignIn(c, "password:"+p.UserID.String(), s.signIn.accountLimit, "password changes") {
		return
	}
	cred, err := db.CredentialsOf(c, s.pool, p.UserID)
	if errors.Is(err, db.ErrNotFound) {
		notFound(c, "credentials")
		return
	} else if err != nil {
		s.internalError(c, err)
		return
	}
	if len(req.CurrentPassword) > password.MaxBytes || !s.hasher.Verify(cred.PasswordHash, req.CurrentPassword) {
		s.audit(c, &p, "auth.password_change_failed", "", "wrong current password")
		fail(c, http.StatusUnauthorized, "invalid_credentials", "the current password is wrong")
		return
	}
	nh, err := s.hasher.Hash(req.NewPassword)
	if err != nil {
		s.internalError(c, err)
		return
	}
	changed, err := db.SetPasswordHash(c, s.pool, p.UserID, nh, cred.PasswordHash, s.now())
	if err != nil {
		s.internalError(c, err)
		return
	}
	if !changed {
		fail(c, http.StatusConflict, "password_changed_concurrently", "the password was changed meanwhile; sign in again")
		return
	}
	ended, err := db.RevokeUserSessions(c, s.pool, p.UserID, "password_changed", s.now())
	if err != nil {
		s.internalError(c, err)
		return
	}
	s.audit(c, &p, "auth.password_changed", "", "sessions ended: "+strconv.Itoa(len(ended)))
	s.startSession(c, p.UserID, cred.Role, http.StatusOK)
}

func (s *Server) revokeUserSessions(c *gin.Context) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	if _, err := db.GetUser(c, s.pool, id); err != nil {
		s.respondErr(c, err)
		return
	}
	p := principal(c)
	ended, err := db.RevokeUserSessions(c, s.pool, id, "admin", s.now())
	if err != nil {
		s.internalError(c, err)
		return
	}
	s.audit(c, &p, "auth.sessions_revoked", id.String(), "sessions ended: "+strconv.Itoa(len(ended)))
	c.JSON(http.StatusOK, gin.H{"user_id": id, "revoked_sessions": len(ended)})
}

// ---- register ----

type registerRequest struct {
	UserID      *string `json:"user_id"`
	Email       string  `json:"email"`
	Password    string  `json:"password"`
	DisplayName *string `json:"display_name"`
}

// register creates credentials: for an existing user when a service or admin calls, or a new
// fan account when self-registration is on and the caller sends no token.
func (s *Server) register(c *gin.Context) {
	var caller *Principal
	if raw, ok := bearerToken(c.GetHeader("Authorization")); ok {
		p, err := s.verifyToken(c, raw)
		if err != nil {
			s.refuseToken(c, "/api/v1/auth/register", err)
			return
		}
		if !isBackOffice(p) {
			forbidden(c, "only the service or admin role creates credentials for a user")
			return
		}
		caller = &p
	} else if !s.signIn.selfRegistration {
		fail(c, http.StatusForbidden, "self_registration_disabled", "self-registration is off (SELF_REGISTRATION); ask an administrator")
		return
	}
	var req registerRequest
	if !decodeJSON(c, &req) {
		return
	}
	email := db.NormalizeEmail(req.Email)
	if _, err := mail.ParseAddress(email); err != nil || len(email) > 254 || strings.ContainsAny(email, "<> ") {
		badRequest(c, "invalid_email", "email must be a plain address such as ana@example.com")
		return
	}
	if msg := passwordProblem(req.Password); msg != "" {
		badRequest(c, "weak_password", msg)
		return
	}
	var id uuid.UUID
	if caller != nil {
		if req.UserID == nil || req.DisplayName != nil {
			badRequest(c, "invalid_request", "send user_id (an existing user) and no display_name")
			return
		}
		var ok bool
		if id, ok = fieldUUID(c, "user_id", *req.UserID); !ok {
			return
		}
	} else {
		if req.UserID != nil || req.DisplayName == nil || !validText(*req.DisplayName, 100) {
			badRequest(c, "invalid_request", "send display_name (1 to 100 characters) and no user_id")
			return
		}
		if !s.allowSignIn(c, "register:address:"+c.ClientIP(), s.signIn.regLimit, "registrations from this address") {
			return
		}
		id = uuid.New()
	}
	hash, err := s.hasher.Hash(req.Password)
	if err != nil {
		s.internalError(c, err)
		return
	}
	if caller != nil {
		if caller.Role != RoleAdmin {
			// A service must not be able to make itself an administrator's password.
			if u, err := db.GetUser(c, s.pool, id); err == nil && (u.Role == string(RoleAdmin) || u.Role == string(RoleService)) {
				forbidden(c, "only an admin creates credentials for admin and service accounts")
				return
			}
		}
		err = db.CreateCredentials(c, s.pool, id, email, hash, s.now())
	} else {
		err = db.RegisterFan(c, s.pool, id, *req.DisplayName, email, hash, s.now())
	}
	if err != nil {
		s.respondErr(c, err)
		return
	}
	s.audit(c, caller, "auth.register", id.String(), "")
	c.JSON(http.StatusCreated, gin.H{"user_id": id, "email": email})
}

// passwordProblem says what is wrong with a new password, or "".
func passwordProblem(pw string) string {
	switch n := utf8.RuneCountInString(pw); {
	case n < minPasswordChars:
		return "the password needs at least 10 characters"
	case len(pw) > password.MaxBytes:
		return "the password may have at most 1024 bytes"
	}
	return ""
}
