package db

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Backup is one row of the backup catalog.
type Backup struct {
	ID            string     `json:"id"`
	Kind          string     `json:"kind"`
	Status        string     `json:"status"`
	Database      string     `json:"database"`
	ServerVersion string     `json:"server_version"`
	ObjectKey     string     `json:"object_key"`
	StartedAt     time.Time  `json:"started_at"`
	FinishedAt    *time.Time `json:"finished_at"`
	DumpBytes     int64      `json:"dump_bytes"`
	StoredBytes   int64      `json:"stored_bytes"`
	SHA256        string     `json:"sha256"`
	Tables        int        `json:"tables"`
	VerifiedAt    *time.Time `json:"verified_at"`
	Error         string     `json:"error"`
	// Attempts are every attempt at this backup, oldest first: a failed or interrupted
	// attempt stays listed after a retry completed the backup.
	Attempts []BackupAttempt `json:"attempts"`
}

// BackupAttempt is one attempt at a backup.
type BackupAttempt struct {
	Attempt    int        `json:"attempt"`
	StartedAt  time.Time  `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// Outcome is running, complete, failed, or interrupted (the attempt's worker stopped
	// without recording an end, e.g. it was killed; noticed when the next attempt starts).
	Outcome string `json:"outcome"`
	Error   string `json:"error"`
}

const backupCols = `id, kind, status, database_name, server_version, object_key, started_at, finished_at,
	dump_bytes, stored_bytes, sha256, tables, verified_at, error,
	(SELECT coalesce(json_agg(json_build_object('attempt', a.attempt, 'started_at', a.started_at,
		'finished_at', a.finished_at, 'outcome', a.outcome, 'error', a.error) ORDER BY a.attempt), '[]')
	 FROM backup_attempts a WHERE a.backup_id = backups.id)`

func scanBackup(row pgx.Row) (Backup, error) {
	var b Backup
	err := row.Scan(&b.ID, &b.Kind, &b.Status, &b.Database, &b.ServerVersion, &b.ObjectKey, &b.StartedAt,
		&b.FinishedAt, &b.DumpBytes, &b.StoredBytes, &b.SHA256, &b.Tables, &b.VerifiedAt, &b.Error, &b.Attempts)
	return b, err
}

// InterruptedAttempt is the error recorded for an attempt whose worker stopped without
// recording its end.
const InterruptedAttempt = "the attempt stopped without recording an end (its worker was killed or lost); a later attempt took over"

// StartBackup records a backup as running and a new attempt at it; a retry of the same id
// starts it over, and an earlier attempt still marked running is recorded as interrupted.
func StartBackup(ctx context.Context, q Querier, id, kind, objectKey string, now time.Time) error {
	_, err := q.Exec(ctx, `
		WITH b AS (
			INSERT INTO backups (id, kind, status, object_key, started_at) VALUES ($1, $2, 'running', $3, $4)
			ON CONFLICT (id) DO UPDATE SET status = 'running', error = '', finished_at = NULL
			RETURNING id
		), cut AS (
			UPDATE backup_attempts SET outcome = 'interrupted', finished_at = $4, error = $5
			WHERE backup_id = $1 AND outcome = 'running'
		)
		INSERT INTO backup_attempts (backup_id, attempt, started_at)
		SELECT b.id, coalesce((SELECT max(attempt) FROM backup_attempts WHERE backup_id = $1), 0) + 1, $4 FROM b`,
		id, kind, objectKey, now, InterruptedAttempt)
	if pgCode(err) == "23514" {
		return invalid("invalid_backup", "backup kind must be nightly or manual")
	}
	return err
}

// CompleteBackup records a backup whose manifest has been written.
func CompleteBackup(ctx context.Context, q Querier, b Backup) error {
	tag, err := q.Exec(ctx, `
		WITH a AS (
			UPDATE backup_attempts SET outcome = 'complete', finished_at = $4 WHERE backup_id = $1 AND outcome = 'running'
		)
		UPDATE backups SET status = 'complete', database_name = $2, server_version = $3, finished_at = $4,
			dump_bytes = $5, stored_bytes = $6, sha256 = $7, tables = $8, error = ''
		WHERE id = $1`,
		b.ID, b.Database, b.ServerVersion, b.FinishedAt, b.DumpBytes, b.StoredBytes, b.SHA256, b.Tables)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return missing("backup_not_found", "no such backup")
	}
	return nil
}

// FailBackup records why a backup attempt failed.
func FailBackup(ctx context.Context, q Querier, id, reason string, now time.Time) error {
	_, err := q.Exec(ctx, `
		WITH a AS (
			UPDATE backup_attempts SET outcome = 'failed', error = $2, finished_at = $3 WHERE backup_id = $1 AND outcome = 'running'
		)
		UPDATE backups SET status = 'failed', error = $2, finished_at = $3 WHERE id = $1 AND status = 'running'`,
		id, truncate(reason, 2000), now)
	return err
}

// MarkBackupPruned records that retention deleted a backup's objects.
func MarkBackupPruned(ctx context.Context, q Querier, id string) error {
	_, err := q.Exec(ctx, `UPDATE backups SET status = 'pruned' WHERE id = $1`, id)
	return err
}

// MarkBackupVerified records that a drill restored and verified the backup.
func MarkBackupVerified(ctx context.Context, q Querier, id string, at time.Time) error {
	_, err := q.Exec(ctx, `UPDATE backups SET verified_at = $2 WHERE id = $1`, id, at)
	return err
}

// GetBackup reads one backup.
func GetBackup(ctx context.Context, q Querier, id string) (Backup, error) {
	b, err := scanBackup(q.QueryRow(ctx, `SELECT `+backupCols+` FROM backups WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return b, missing("backup_not_found", "no such backup")
	}
	return b, err
}

// LatestBackup is the newest complete backup started at or before at (zero: any).
func LatestBackup(ctx context.Context, q Querier, at time.Time) (Backup, error) {
	var atArg *time.Time
	if !at.IsZero() {
		atArg = &at
	}
	b, err := scanBackup(q.QueryRow(ctx, `SELECT `+backupCols+` FROM backups
		WHERE status = 'complete' AND ($1::timestamptz IS NULL OR started_at <= $1)
		ORDER BY started_at DESC, id DESC LIMIT 1`, atArg))
	if errors.Is(err, pgx.ErrNoRows) {
		return b, missing("backup_not_found", "no complete backup")
	}
	return b, err
}

// ListBackups lists backups newest first; status "" means every status.
func ListBackups(ctx context.Context, q Querier, status string, limit int) ([]Backup, error) {
	rows, err := q.Query(ctx, `SELECT `+backupCols+` FROM backups WHERE ($1 = '' OR status = $1)
		ORDER BY started_at DESC, id DESC LIMIT $2`, status, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Backup, error) { return scanBackup(r) })
}

// Drill is one fire drill.
type Drill struct {
	ID               string          `json:"id"`
	BackupID         string          `json:"backup_id"`
	StartedAt        time.Time       `json:"started_at"`
	FinishedAt       *time.Time      `json:"finished_at"`
	Outcome          string          `json:"outcome"`
	RTOSeconds       int             `json:"rto_seconds"`
	RTOTargetSeconds int             `json:"rto_target_seconds"`
	Detail           string          `json:"detail"`
	Report           json.RawMessage `json:"report"`
}

// RecordDrill inserts or replaces a drill's row.
func RecordDrill(ctx context.Context, q Querier, d Drill) error {
	if len(d.Report) == 0 {
		d.Report = json.RawMessage(`{}`)
	}
	_, err := q.Exec(ctx, `
		INSERT INTO drills (id, backup_id, started_at, finished_at, outcome, rto_seconds, rto_target_seconds, detail, report)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (id) DO UPDATE SET backup_id = $2, finished_at = $4, outcome = $5, rto_seconds = $6,
			rto_target_seconds = $7, detail = $8, report = $9`,
		d.ID, d.BackupID, d.StartedAt, d.FinishedAt, d.Outcome, d.RTOSeconds, d.RTOTargetSeconds, truncate(d.Detail, 4000), d.Report)
	if pgCode(err) == "23514" {
		return invalid("invalid_drill", "drill outcome must be running, pass, fail or rto_exceeded")
	}
	return err
}

// ListDrills lists drills newest first.
func ListDrills(ctx context.Context, q Querier, limit int) ([]Drill, error) {
	rows, err := q.Query(ctx, `SELECT id, backup_id, started_at, finished_at, outcome, rto_seconds, rto_target_seconds, detail, report
		FROM drills ORDER BY started_at DESC, id DESC LIMIT $1`, limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Drill, error) {
		var d Drill
		err := r.Scan(&d.ID, &d.BackupID, &d.StartedAt, &d.FinishedAt, &d.Outcome, &d.RTOSeconds, &d.RTOTargetSeconds, &d.Detail, &d.Report)
		return d, err
	})
}

// StoredBackup is what the object store says about a complete backup (its manifest).
type StoredBackup struct {
	ID            string
	Kind          string
	Database      string
	ServerVersion string
	ObjectKey     string
	StartedAt     time.Time
	FinishedAt    time.Time
	DumpBytes     int64
	StoredBytes   int64
	SHA256        string
	Tables        int
}

// CatalogDrift is how the catalog differed from the object store before a reconcile.
type CatalogDrift struct {
	// Added are complete backups in the store the catalog did not list as complete (a lost
	// or restored catalog, or a backup whose completion was never recorded).
	Added []string `json:"added"`
	// Missing are backups the catalog listed as complete whose manifest is gone.
	Missing []string `json:"missing"`
	// Unreadable are manifests in the store this binary cannot read (a newer format, or
	// damaged): left as the catalog has them.
	Unreadable []string `json:"unreadable,omitempty"`
}

// Empty reports whether catalog and store agreed.
func (d CatalogDrift) Empty() bool {
	return len(d.Added) == 0 && len(d.Missing) == 0 && len(d.Unreadable) == 0
}

// String is a one-line summary of the drift.
func (d CatalogDrift) String() string {
	if d.Empty() {
		return "catalog matches the object store"
	}
	s := fmt.Sprintf("catalog drift: %d complete in the store but not in the catalog %v, %d in the catalog but gone from the store %v",
		len(d.Added), d.Added, len(d.Missing), d.Missing)
	if len(d.Unreadable) > 0 {
		s += fmt.Sprintf("; %d manifest(s) this orchestrator cannot read %v (newer format or damaged)", len(d.Unreadable), d.Unreadable)
	}
	return s
}

// ReconcileBackups makes the catalog agree with the object store, the truth: every stored
// backup becomes a complete row (inserted, or updated from running or failed), and a
// complete row without a stored backup becomes missing. unreadable are ids whose manifests
// are in the store but cannot be read: their rows are left alone. It returns the drift it
// repaired.
func ReconcileBackups(ctx context.Context, pool *pgxpool.Pool, stored []StoredBackup, unreadable []string) (CatalogDrift, error) {
	drift := CatalogDrift{Added: []string{}, Missing: []string{}, Unreadable: unreadable}
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		ids := append(make([]string, 0, len(stored)+len(unreadable)), unreadable...)
		for _, s := range stored {
			ids = append(ids, s.ID)
			kind := s.Kind
			if kind != "nightly" {
				kind = "manual"
			}
			var added bool
			err := tx.QueryRow(ctx, `
				INSERT INTO backups (id, kind, status, database_name, server_version, object_key, started_at, finished_at,
					dump_bytes, stored_bytes, sha256, tables)
				VALUES ($1, $2, 'complete', $3, $4, $5, $6, $7, $8, $9, $10, $11)
				ON CONFLICT (id) DO UPDATE SET status = 'complete', database_name = $3, server_version = $4, object_key = $5,
					finished_at = $7, dump_bytes = $8, stored_bytes = $9, sha256 = $10, tables = $11, error = ''
				WHERE backups.status <> 'complete'
				RETURNING true`,
				s.ID, kind, s.Database, s.ServerVersion, s.ObjectKey, s.StartedAt, s.FinishedAt, s.DumpBytes, s.StoredBytes,
				s.SHA256, s.Tables).Scan(&added)
			if errors.Is(err, pgx.ErrNoRows) {
				continue
			}
			if err != nil {
				return err
			}
			drift.Added = append(drift.Added, s.ID)
		}
		rows, err := tx.Query(ctx, `UPDATE backups SET status = 'missing', error = 'the manifest is gone from the object store'
			WHERE status = 'complete' AND NOT (id = ANY($1)) RETURNING id`, ids)
		if err != nil {
			return err
		}
		drift.Missing, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if drift.Missing == nil {
		drift.Missing = []string{}
	}
	return drift, err
}

// WriteDrillMarker writes a PITR drill's marker row seq (idempotent: a retry keeps the first).
func WriteDrillMarker(ctx context.Context, q Querier, drillID string, seq int) error {
	_, err := q.Exec(ctx, `INSERT INTO pitr_drill_markers (drill_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING`, drillID, seq)
	return err
}

// DrillMarkers lists the marker rows of a drill present in a database (a restored one).
func DrillMarkers(ctx context.Context, q Querier, drillID string) ([]int, error) {
	rows, err := q.Query(ctx, `SELECT seq FROM pitr_drill_markers WHERE drill_id = $1 ORDER BY seq`, drillID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}
