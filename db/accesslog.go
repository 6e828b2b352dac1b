package db

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what both a pool and a transaction offer, so queries run in either.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// AccessLogEntry is one sensitive action or failed authentication.
type AccessLogEntry struct {
	UserID    *uuid.UUID
	Role      string
	Action    string
	Target    string
	Detail    string
	IP        string
	UserAgent string
}

// Lengths, in characters, the access log keeps of what a client sent.
const (
	maxUserAgentChars = 256
	maxLogTextChars   = 1024
)

// sanitized is e as it can always be stored: text columns take neither invalid UTF-8 nor NUL,
// so client-supplied values are repaired (U+FFFD) and cut by character, never mid-rune. An
// audited action must not lose its row to a header.
func (e AccessLogEntry) sanitized() AccessLogEntry {
	e.Action = CleanText(e.Action, maxLogTextChars)
	e.Target = CleanText(e.Target, maxLogTextChars)
	e.Detail = CleanText(e.Detail, maxLogTextChars)
	e.IP = CleanText(e.IP, maxLogTextChars)
	e.UserAgent = CleanText(e.UserAgent, maxUserAgentChars)
	return e
}

// CleanText returns s as valid UTF-8 without NUL characters, at most n characters long.
func CleanText(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i := 0
	for k := range s {
		if i == n {
			return s[:k]
		}
		i++
	}
	return s
}

// InsertAccessLog appends an entry to the access log.
func InsertAccessLog(ctx context.Context, q Querier, e AccessLogEntry) error {
	e = e.sanitized()
	_, err := q.Exec(ctx, `
		INSERT INTO access_log (user_id, role, action, target, detail, ip, user_agent)
		VALUES ($1, NULLIF($2, ''), $3, $4, $5, $6, $7)`,
		e.UserID, e.Role, e.Action, e.Target, e.Detail, e.IP, e.UserAgent)
	return err
}

// AuthFailuresLogged is how many failed authentications per source and minute get their own
// access_log row; every one is counted in auth_failures.
const AuthFailuresLogged = 10

// RecordAuthFailure counts a failed authentication from e.IP in its minute and, while that
// source has had at most AuthFailuresLogged this minute, writes e to the access log too: one
// statement. It reports whether the row was written.
func RecordAuthFailure(ctx context.Context, q Querier, e AccessLogEntry, now time.Time) (bool, error) {
	e = e.sanitized()
	var logged bool
	err := q.QueryRow(ctx, `
		WITH n AS (
			INSERT INTO auth_failures AS f (source, window_start, failures, last_at) VALUES ($5, $7, 1, $8)
			ON CONFLICT (source, window_start) DO UPDATE SET failures = f.failures + 1, last_at = EXCLUDED.last_at
			RETURNING failures
		), ins AS (
			INSERT INTO access_log (user_id, role, action, target, detail, ip, user_agent)
			SELECT $1, NULLIF($2, ''), $3, $4, $9, $5, $6 FROM n WHERE n.failures <= $10
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM ins)`,
		e.UserID, e.Role, e.Action, e.Target, e.IP, e.UserAgent, now.Truncate(time.Minute), now, e.Detail,
		AuthFailuresLogged).Scan(&logged)
	return logged, err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
