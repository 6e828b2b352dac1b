package db

import (
	"context"
	"fmt"
	"strings"
)

// EphemeralTables hold state that is true only while the processes that wrote it run:
// WebSocket presence sessions (ws_sessions) and rate-limit buckets (rate_limits). A backup
// carries them, but a restore clears them: restored as live data they would show users
// online whose connections died with the old server, and count requests against limits
// that long expired.
var EphemeralTables = []string{"ws_sessions", "rate_limits"}

// ClearEphemeral empties the ephemeral tables of a restored database, and marks backups and
// drills the snapshot caught running as interrupted (their processes are gone).
func ClearEphemeral(ctx context.Context, q Querier) error {
	if _, err := q.Exec(ctx, `TRUNCATE `+strings.Join(EphemeralTables, ", ")); err != nil {
		return fmt.Errorf("clear ephemeral rows: %w", err)
	}
	if _, err := q.Exec(ctx, `UPDATE backups SET status = 'failed', finished_at = now(),
		error = 'interrupted: the database was restored from a backup taken while this one ran' WHERE status = 'running'`); err != nil {
		return fmt.Errorf("clear ephemeral rows: backups: %w", err)
	}
	if _, err := q.Exec(ctx, `UPDATE drills SET outcome = 'fail', finished_at = now(),
		detail = 'interrupted: the database was restored from a backup taken while this drill ran' WHERE outcome = 'running'`); err != nil {
		return fmt.Errorf("clear ephemeral rows: drills: %w", err)
	}
	return nil
}
