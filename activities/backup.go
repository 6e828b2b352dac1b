// Package activities holds the Temporal activities: methods on structs holding their
// dependencies, one file per domain.
package activities

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/recovery"
)

// Backup runs backups and retention. It holds only the public recipients: it can write
// backups but not read them.
type Backup struct {
	Pool        *pgxpool.Pool
	Store       backup.Store
	DatabaseURL string
	Recipients  []string
	Passphrase  string
	PGBinDir    string
	KeepNightly int
	KeepMonthly int
	// Temporal are Temporal's databases, stored as further objects of every backup
	// (TEMPORAL_BACKUP_DATABASE_URLS; in dev the embedded server's SQLite file).
	Temporal []backup.TemporalSource
	// HeartbeatEvery is how often progress is reported; zero means 5 seconds.
	HeartbeatEvery time.Duration
}

// BackupRunInput names one backup.
type BackupRunInput struct {
	BackupID string
	Kind     string
}

// BackupRunResult describes a complete backup.
type BackupRunResult struct {
	BackupID    string
	ObjectKey   string
	SHA256      string
	DumpBytes   int64
	StoredBytes int64
	Tables      int
}

// BackupProgress is the heartbeat detail of a running backup.
type BackupProgress struct {
	StoredBytes int64
}

func nonRetryable(code string, err error) error {
	return temporal.NewNonRetryableApplicationError(err.Error(), code, err)
}

// heartbeat reports *n every interval until the returned stop is called.
func heartbeat(ctx context.Context, every time.Duration, detail func() any) (stop func()) {
	if every == 0 {
		every = 5 * time.Second
	}
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx, detail())
			}
		}
	}()
	return func() { close(done) }
}

// Run streams one backup to S3 and records it in the catalog. A retry (worker killed, S3
// hiccup) starts the stream over under the same id: the previous attempt's multipart upload
// is aborted first, so exactly one complete backup results.
func (a *Backup) Run(ctx context.Context, in BackupRunInput) (BackupRunResult, error) {
	if _, err := backup.ParseRecipients(a.Recipients, a.Passphrase); err != nil {
		return BackupRunResult{}, nonRetryable("backup_config", err)
	}
	if in.Kind == "" {
		in.Kind = "manual"
	}
	logger := activity.GetLogger(ctx)
	if activity.HasHeartbeatDetails(ctx) {
		var prev BackupProgress
		if activity.GetHeartbeatDetails(ctx, &prev) == nil {
			logger.Info("backup: previous attempt stopped; starting the stream over", "backup_id", in.BackupID, "stored_bytes", prev.StoredBytes)
		}
	}
	if err := db.StartBackup(ctx, a.Pool, in.BackupID, in.Kind, a.Store.ObjectKey(in.BackupID), time.Now()); err != nil {
		if _, ok := db.AsError(err); ok {
			return BackupRunResult{}, nonRetryable("backup_invalid", err)
		}
		return BackupRunResult{}, err
	}
	var stored atomic.Int64
	stop := heartbeat(ctx, a.HeartbeatEvery, func() any { return BackupProgress{StoredBytes: stored.Load()} })
	m, err := backup.Run(ctx, a.Store, backup.Options{
		ID: in.BackupID, DatabaseURL: a.DatabaseURL, PGBinDir: a.PGBinDir,
		Recipients: a.Recipients, Passphrase: a.Passphrase, Kind: in.Kind, Temporal: a.Temporal,
		Progress: func(n int64) { stored.Store(n) },
	})
	stop()
	if err != nil {
		backup.ObserveBackupFailure(in.Kind)
		_ = db.FailBackup(context.WithoutCancel(ctx), a.Pool, in.BackupID, err.Error(), time.Now())
		return BackupRunResult{}, err
	}
	fin := m.FinishedAt
	if err := db.CompleteBackup(ctx, a.Pool, db.Backup{ID: m.ID, Database: m.Database, ServerVersion: m.ServerVersion,
		FinishedAt: &fin, DumpBytes: m.DumpBytes, StoredBytes: m.StoredBytes, SHA256: m.SHA256, Tables: len(m.Tables)}); err != nil {
		return BackupRunResult{}, err
	}
	backup.ObserveBackup(in.Kind, m.StartedAt, m.FinishedAt, m.StoredBytes)
	return BackupRunResult{BackupID: m.ID, ObjectKey: m.Object, SHA256: m.SHA256, DumpBytes: m.DumpBytes,
		StoredBytes: m.StoredBytes, Tables: len(m.Tables)}, nil
}

// PruneResult lists the backups retention deleted.
type PruneResult struct {
	Deleted []string
}

// Prune applies retention to the complete backups the object store holds (the catalog is
// reconciled with the store first): keep the last KeepNightly, the first of each of the last
// KeepMonthly months, and the newest verified one.
func (a *Backup) Prune(ctx context.Context) (PruneResult, error) {
	if drift, err := recovery.ReconcileCatalog(ctx, a.Pool, a.Store); err != nil {
		return PruneResult{}, err
	} else if !drift.Empty() {
		activity.GetLogger(ctx).Warn("backup retention: "+drift.String(), "added", drift.Added, "missing", drift.Missing)
	}
	all, err := db.ListBackups(ctx, a.Pool, "complete", 100000)
	if err != nil {
		return PruneResult{}, err
	}
	cands := make([]backup.Candidate, len(all))
	for i, b := range all {
		cands[i] = backup.Candidate{ID: b.ID, StartedAt: b.StartedAt, Verified: b.VerifiedAt != nil}
	}
	var res PruneResult
	for _, id := range backup.Prunable(cands, a.KeepNightly, a.KeepMonthly) {
		if err := db.MarkBackupPruned(ctx, a.Pool, id); err != nil {
			return res, err
		}
		if err := backup.Delete(ctx, a.Store, id); err != nil {
			return res, err
		}
		res.Deleted = append(res.Deleted, id)
	}
	return res, nil
}
