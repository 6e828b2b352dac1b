package db

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// AuthChannel is the NOTIFY channel on which revocations and role changes are announced (by
// triggers, see migration 00017), feeding every API instance's in-memory revocation set.
const AuthChannel = "auth_events"

// AuthEvent is one notification on AuthChannel.
type AuthEvent struct {
	// Kind is "session_revoked" or "user_changed".
	Kind      string    `json:"kind"`
	SessionID uuid.UUID `json:"session_id"`
	UserID    uuid.UUID `json:"user_id"`
	Role      string    `json:"role"`
	Erased    bool      `json:"erased"`
	At        time.Time `json:"at"`
}

// Credentials are a user's sign-in data.
type Credentials struct {
	UserID       uuid.UUID
	Email        string
	PasswordHash string
	// Role is the user's current role (from users), Erased whether the user was erased.
	Role   string
	Erased bool
}

// NormalizeEmail trims an email address; lookups ignore case.
func NormalizeEmail(s string) string { return strings.TrimSpace(s) }

// CreateCredentials gives an existing user an email and password hash.
func CreateCredentials(ctx context.Context, q Querier, user uuid.UUID, email, hash string, now time.Time) error {
	tag, err := q.Exec(ctx, `
		INSERT INTO credentials (user_id, email, password_hash, created_at, updated_at)
		SELECT id, $2, $3, $4, $4 FROM users WHERE id = $1 AND erased_at IS NULL`, user, NormalizeEmail(email), hash, now)
	switch {
	case pgCode(err) == codeUniqueViolation:
		return conflict("credentials_exist", "this email is taken, or the user already has credentials")
	case err != nil:
		return err
	case tag.RowsAffected() == 0:
		return missing("user_not_found", "user not found")
	}
	return nil
}

// RegisterFan creates a new fan with credentials in one transaction (self-registration).
func RegisterFan(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, displayName, email, hash string, now time.Time) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO users (id, role, display_name, created_at, updated_at) VALUES ($1, 'fan', $2, $3, $3)`,
			id, displayName, now); err != nil {
			return err
		}
		return CreateCredentials(ctx, tx, id, email, hash, now)
	})
}

const credentialColumns = `c.user_id, c.email, c.password_hash, u.role, u.erased_at IS NOT NULL`

func scanCredentials(row pgx.Row) (Credentials, error) {
	var c Credentials
	err := row.Scan(&c.UserID, &c.Email, &c.PasswordHash, &c.Role, &c.Erased)
	if errors.Is(err, pgx.ErrNoRows) {
		return Credentials{}, missing("credentials_not_found", "no credentials")
	}
	return c, err
}

// CredentialsByEmail finds the credentials of an email address (case-insensitive).
func CredentialsByEmail(ctx context.Context, q Querier, email string) (Credentials, error) {
	return scanCredentials(q.QueryRow(ctx, `SELECT `+credentialColumns+`
		  FROM credentials c JOIN users u ON u.id = c.user_id WHERE lower(c.email) = lower($1)`, NormalizeEmail(email)))
}

// CredentialsOf returns a user's credentials.
func CredentialsOf(ctx context.Context, q Querier, user uuid.UUID) (Credentials, error) {
	return scanCredentials(q.QueryRow(ctx, `SELECT `+credentialColumns+`
		  FROM credentials c JOIN users u ON u.id = c.user_id WHERE c.user_id = $1`, user))
}

// SetPasswordHash replaces a user's password hash (a password change, or a rehash with new
// parameters). When ifHash is not empty the update only happens while the stored hash is
// still ifHash, so a rehash never overwrites a concurrent password change.
func SetPasswordHash(ctx context.Context, q Querier, user uuid.UUID, hash, ifHash string, now time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE credentials SET password_hash = $2, updated_at = $3
		 WHERE user_id = $1 AND ($4 = '' OR password_hash = $4)`, user, hash, now, ifHash)
	return tag.RowsAffected() == 1, err
}

// Session is one sign-in.
type Session struct {
	ID         uuid.UUID
	UserID     uuid.UUID
	Role       string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
	IP         string
	UserAgent  string
}

// CreateSession stores a new session and its first refresh token (its SHA-256).
func CreateSession(ctx context.Context, pool *pgxpool.Pool, s Session, refreshHash []byte) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO auth_sessions (id, user_id, created_at, last_used_at, expires_at, ip, user_agent)
			VALUES ($1, $2, $3, $3, $4, $5, $6)`, s.ID, s.UserID, s.CreatedAt, s.ExpiresAt, s.IP, truncate(s.UserAgent, 256)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)`,
			refreshHash, s.ID, s.CreatedAt)
		return err
	})
}

// Refresh failures, as domain errors the API maps to 401.
var (
	// ErrRefreshUnknown: no such refresh token.
	ErrRefreshUnknown = errors.New("the refresh token is not valid")
	// ErrRefreshReused: the token was already rotated; the whole session is now revoked.
	ErrRefreshReused = errors.New("the refresh token was already used; the session has been ended")
	// ErrSessionEnded: the session was revoked or has expired.
	ErrSessionEnded = errors.New("the session has ended; sign in again")
)

// RotateRefresh exchanges the refresh token with SHA-256 oldHash for newHash. Presenting a
// token that was already rotated revokes the whole session (and that revocation is
// committed) and returns ErrRefreshReused with the session. The row lock makes two concurrent
// uses of one token a use and a reuse, never two rotations.
func RotateRefresh(ctx context.Context, pool *pgxpool.Pool, oldHash, newHash []byte, now time.Time) (Session, error) {
	var s Session
	var outcome error
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var rotated *time.Time
		var erased bool
		err := tx.QueryRow(ctx, `
			SELECT s.id, s.user_id, u.role, s.created_at, s.last_used_at, s.expires_at, s.revoked_at, s.ip, s.user_agent,
			       r.rotated_at, u.erased_at IS NOT NULL
			  FROM refresh_tokens r JOIN auth_sessions s ON s.id = r.session_id JOIN users u ON u.id = s.user_id
			 WHERE r.token_hash = $1
			   FOR UPDATE OF r, s`, oldHash).Scan(&s.ID, &s.UserID, &s.Role, &s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt,
			&s.RevokedAt, &s.IP, &s.UserAgent, &rotated, &erased)
		if errors.Is(err, pgx.ErrNoRows) {
			outcome = ErrRefreshUnknown
			return nil
		}
		if err != nil {
			return err
		}
		switch {
		case rotated != nil:
			outcome = ErrRefreshReused
			if s.RevokedAt == nil {
				_, err = revokeSessions(ctx, tx, `id = $1`, s.ID, "refresh_reuse", now)
			}
			return err
		case s.RevokedAt != nil || erased || !now.Before(s.ExpiresAt):
			outcome = ErrSessionEnded
			return nil
		}
		if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1`, oldHash, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, session_id, created_at) VALUES ($1, $2, $3)`, newHash, s.ID, now); err != nil {
			return err
		}
		s.LastUsedAt = now
		_, err = tx.Exec(ctx, `UPDATE auth_sessions SET last_used_at = $2 WHERE id = $1`, s.ID, now)
		return err
	})
	if err != nil {
		return Session{}, err
	}
	return s, outcome
}

// revokeSessions revokes the live sessions matching where (on column names of
// auth_sessions, with $1 its argument) and forgets their refresh tokens' use: the tokens stay
// so that a later reuse is still recognised. It returns the revoked ids.
func revokeSessions(ctx context.Context, q Querier, where string, arg any, reason string, now time.Time) ([]uuid.UUID, error) {
	rows, err := q.Query(ctx, `UPDATE auth_sessions SET revoked_at = $2, revoke_reason = $3
		 WHERE revoked_at IS NULL AND `+where+` RETURNING id`, arg, now, reason)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[uuid.UUID])
}

// RevokeSession ends one session of user; it reports whether a live session was ended.
func RevokeSession(ctx context.Context, q Querier, user, session uuid.UUID, reason string, now time.Time) (bool, error) {
	tag, err := q.Exec(ctx, `UPDATE auth_sessions SET revoked_at = $3, revoke_reason = $4
		 WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`, session, user, now, reason)
	return tag.RowsAffected() == 1, err
}

// RevokeUserSessions ends every live session of user and returns their ids.
func RevokeUserSessions(ctx context.Context, q Querier, user uuid.UUID, reason string, now time.Time) ([]uuid.UUID, error) {
	return revokeSessions(ctx, q, `user_id = $1`, user, reason, now)
}

// RevokedSession is a revocation an API instance must remember.
type RevokedSession struct {
	ID     uuid.UUID
	UserID uuid.UUID
	At     time.Time
}

// RevokedSince lists the sessions revoked at or after since: what a (re)connecting listener
// loads, since access tokens of older revocations have expired.
func RevokedSince(ctx context.Context, q Querier, since time.Time) ([]RevokedSession, error) {
	rows, err := q.Query(ctx, `SELECT id, user_id, revoked_at FROM auth_sessions WHERE revoked_at >= $1`, since)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (RevokedSession, error) {
		var s RevokedSession
		return s, r.Scan(&s.ID, &s.UserID, &s.At)
	})
}

// UserAuthState is a user's role and erasure, for users whose role changed or who were erased
// at or after since.
type UserAuthState struct {
	UserID uuid.UUID
	Role   string
	Erased bool
	At     time.Time
}

// UsersChangedSince lists users whose role changed, or who were erased, at or after since.
func UsersChangedSince(ctx context.Context, q Querier, since time.Time) ([]UserAuthState, error) {
	rows, err := q.Query(ctx, `
		SELECT id, role, erased_at IS NOT NULL, greatest(role_changed_at, erased_at)
		  FROM users WHERE role_changed_at >= $1 OR erased_at >= $1`, since)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (UserAuthState, error) {
		var s UserAuthState
		return s, r.Scan(&s.UserID, &s.Role, &s.Erased, &s.At)
	})
}
