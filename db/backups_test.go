package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestBackupCatalog(t *testing.T) {
	ctx := context.Background()
	pool, _ := testharness.FreshDB(t)
	t0 := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	require.NoError(t, db.StartBackup(ctx, pool, "b1", "nightly", "backups/b1", t0))
	require.NoError(t, db.StartBackup(ctx, pool, "b2", "manual", "backups/b2", t0.Add(time.Hour)))
	var bad *db.Error
	require.ErrorAs(t, db.StartBackup(ctx, pool, "b3", "weekly", "backups/b3", t0), &bad)

	_, err := db.LatestBackup(ctx, pool, time.Time{})
	require.ErrorIs(t, err, db.ErrNotFound)

	fin := t0.Add(time.Minute)
	require.NoError(t, db.CompleteBackup(ctx, pool, db.Backup{ID: "b1", FinishedAt: &fin, DumpBytes: 10, StoredBytes: 5, SHA256: "ab", Tables: 3}))
	require.NoError(t, db.FailBackup(ctx, pool, "b2", "pg_dump failed", fin))
	require.ErrorIs(t, db.CompleteBackup(ctx, pool, db.Backup{ID: "nope", FinishedAt: &fin}), db.ErrNotFound)

	latest, err := db.LatestBackup(ctx, pool, time.Time{})
	require.NoError(t, err)
	require.Equal(t, "b1", latest.ID)
	_, err = db.LatestBackup(ctx, pool, t0.Add(-time.Hour))
	require.ErrorIs(t, err, db.ErrNotFound)

	all, err := db.ListBackups(ctx, pool, "", 10)
	require.NoError(t, err)
	require.Len(t, all, 2)
	require.Equal(t, "b2", all[0].ID)
	require.Equal(t, "failed", all[0].Status)
	require.Equal(t, "pg_dump failed", all[0].Error)

	require.NoError(t, db.MarkBackupVerified(ctx, pool, "b1", fin))
	require.NoError(t, db.MarkBackupPruned(ctx, pool, "b2"))
	got, err := db.GetBackup(ctx, pool, "b1")
	require.NoError(t, err)
	require.NotNil(t, got.VerifiedAt)

	require.NoError(t, db.RecordDrill(ctx, pool, db.Drill{ID: "d1", BackupID: "b1", StartedAt: t0, Outcome: "running"}))
	require.NoError(t, db.RecordDrill(ctx, pool, db.Drill{ID: "d1", BackupID: "b1", StartedAt: t0, FinishedAt: &fin, Outcome: "rto_exceeded", RTOSeconds: 60, RTOTargetSeconds: 1}))
	require.ErrorAs(t, db.RecordDrill(ctx, pool, db.Drill{ID: "d2", StartedAt: t0, Outcome: "meh"}), &bad)
	drills, err := db.ListDrills(ctx, pool, 10)
	require.NoError(t, err)
	require.Len(t, drills, 1)
	require.Equal(t, "rto_exceeded", drills[0].Outcome)
	require.Equal(t, 60, drills[0].RTOSeconds)
}

// A retry reuses the backup's id: the catalog keeps every attempt, and an attempt still
// running when the next starts (its worker was killed) is recorded as interrupted.
func TestBackupAttempts(t *testing.T) {
	ctx := context.Background()
	pool, _ := testharness.FreshDB(t)
	t0 := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	require.NoError(t, db.StartBackup(ctx, pool, "b1", "nightly", "backups/b1", t0))
	// The worker dies: nothing records the end. A new worker retries.
	require.NoError(t, db.StartBackup(ctx, pool, "b1", "nightly", "backups/b1", t0.Add(3*time.Minute)))
	require.NoError(t, db.FailBackup(ctx, pool, "b1", "upload: connection refused", t0.Add(4*time.Minute)))
	require.NoError(t, db.StartBackup(ctx, pool, "b1", "nightly", "backups/b1", t0.Add(5*time.Minute)))
	fin := t0.Add(6 * time.Minute)
	require.NoError(t, db.CompleteBackup(ctx, pool, db.Backup{ID: "b1", FinishedAt: &fin, StoredBytes: 5, SHA256: "ab", Tables: 3}))

	got, err := db.GetBackup(ctx, pool, "b1")
	require.NoError(t, err)
	require.Equal(t, "complete", got.Status)
	require.Len(t, got.Attempts, 3)
	outcomes := []string{got.Attempts[0].Outcome, got.Attempts[1].Outcome, got.Attempts[2].Outcome}
	require.Equal(t, []string{"interrupted", "failed", "complete"}, outcomes)
	require.Equal(t, db.InterruptedAttempt, got.Attempts[0].Error)
	require.Equal(t, "upload: connection refused", got.Attempts[1].Error)
	require.True(t, got.Attempts[0].StartedAt.Equal(t0))
	require.True(t, got.Attempts[2].FinishedAt.Equal(fin))

	listed, err := db.ListBackups(ctx, pool, "complete", 10)
	require.NoError(t, err)
	require.Len(t, listed, 1)
	require.Len(t, listed[0].Attempts, 3)
}
