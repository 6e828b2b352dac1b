package db

import (
	"context"

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

// InsertAccessLog appends an entry to the access log.
func InsertAccessLog(ctx context.Context, q Querier, e AccessLogEntry) error {
	_, err := q.Exec(ctx, `
		INSERT INTO access_log (user_id, role, action, target, detail, ip, user_agent)
		VALUES ($1, NULLIF($2, ''), $3, $4, $5, $6, $7)`,
		e.UserID, e.Role, e.Action, e.Target, e.Detail, e.IP, truncate(e.UserAgent, 256))
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
