package workers

import (
	"context"
	"time"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
)

// seedBackupMetrics sets the backup and drill gauges from the catalog when a worker starts,
// so that a restarted worker reports the last backup it did not make itself rather than
// none (which would fire BackupMissing). A catalog that cannot be read leaves them unset.
func seedBackupMetrics(ctx context.Context, d Deps) {
	if d.Pool == nil {
		return
	}
	backups, err := db.ListBackups(ctx, d.Pool, "complete", 1000)
	if err != nil {
		d.Logger.Warn("backup metrics: cannot read the catalog", "error", err)
		return
	}
	for i, b := range backups {
		if i == 0 && b.FinishedAt != nil {
			backup.ObserveBackup(b.Kind, b.StartedAt, *b.FinishedAt, b.StoredBytes)
		}
		if b.VerifiedAt != nil {
			backup.ObserveVerified(b.StartedAt)
			break
		}
	}
	drills, err := db.ListDrills(ctx, d.Pool, 10)
	if err != nil {
		return
	}
	for _, dr := range drills {
		if dr.Outcome == "running" || dr.FinishedAt == nil {
			continue
		}
		backup.ObserveDrill(backup.DrillObservation{FinishedAt: *dr.FinishedAt, RTO: time.Duration(dr.RTOSeconds) * time.Second,
			Target: time.Duration(dr.RTOTargetSeconds) * time.Second, Failed: dr.Outcome == "fail", FromCatalog: true})
		break
	}
}
