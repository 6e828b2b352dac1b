package db

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// ExportWriter receives a user's data export, section by section, row by row, so it can be
// streamed without holding it in memory.
type ExportWriter interface {
	Section(name string) error
	Row(row map[string]any) error
}

// exportSections are the queries of a data export, in order: everything that is the user's,
// and of others' rows only what the user's own rows name (a message's other party, say).
// Secrets are left out: the password hash and refresh-token hashes.
var exportSections = []struct{ name, sql string }{
	{"user", `SELECT u.id, u.role, u.display_name, u.stellar_account, c.handle, u.created_at, u.updated_at, u.erased_at
	            FROM users u LEFT JOIN creators c ON c.id = u.id WHERE u.id = $1`},
	{"credentials", `SELECT email, created_at, updated_at FROM credentials WHERE user_id = $1`},
	{"public_keys", `SELECT public_key, created_at, updated_at FROM user_keys WHERE user_id = $1`},
	{"sessions", `SELECT id, created_at, last_used_at, expires_at, revoked_at, revoke_reason, ip, user_agent
	                FROM auth_sessions WHERE user_id = $1 ORDER BY created_at`},
	{"subscriptions", `SELECT id, creator_id, tier_id, status, started_at, current_period_end, cancelled_at, created_at
	                     FROM subscriptions WHERE fan_id = $1 ORDER BY started_at, id`},
	{"payments", `SELECT id, external_id, creator_id, subscription_id, kind, amount_stroops, asset, occurred_at
	                FROM revenue_events WHERE fan_id = $1 ORDER BY occurred_at, id`},
	{"tiers", `SELECT id, name, level, price_stroops, asset, period_days, permissions, created_at
	             FROM subscription_tiers WHERE creator_id = $1 ORDER BY level`},
	{"revenue_received", `SELECT id, kind, amount_stroops, asset, occurred_at
	                        FROM revenue_events WHERE creator_id = $1 ORDER BY occurred_at, id`},
	{"comments", `SELECT id, creator_id, parent_id, root_id, depth, content, created_at, edited_at, deleted_at
	                FROM comments WHERE author_id = $1 ORDER BY created_at, id`},
	{"likes", `SELECT comment_id, created_at FROM comment_likes WHERE user_id = $1 ORDER BY created_at, comment_id`},
	{"messages", `SELECT id, sender_id, recipient_id, ciphertext, nonce, sent_at, read_at, deleted_at
	                FROM messages WHERE sender_id = $1 OR recipient_id = $1 ORDER BY sent_at, id`},
	{"access_log", `SELECT at, action, target, detail, ip, user_agent FROM access_log WHERE user_id = $1 ORDER BY at, id`},
}

// ExportUser writes every section of user's data to w. Binary columns (ciphertext, nonce,
// public key) are bytes, which JSON renders as base64: the server cannot read messages.
func ExportUser(ctx context.Context, q Querier, user uuid.UUID, w ExportWriter) error {
	for _, s := range exportSections {
		if err := w.Section(s.name); err != nil {
			return err
		}
		rows, err := q.Query(ctx, s.sql, user)
		if err != nil {
			return err
		}
		for rows.Next() {
			m, err := pgx.RowToMap(rows)
			for k, v := range m {
				if b, ok := v.([16]byte); ok {
					m[k] = uuid.UUID(b)
				}
			}
			if err == nil {
				err = w.Row(m)
			}
			if err != nil {
				rows.Close()
				return err
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}
