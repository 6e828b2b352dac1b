package workers

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/workflows"
)

// backupQueues are the task queues of the backup domain: backup (holds only the public
// recipients) and drill (the only worker holding the identity).
func backupQueues() []queue {
	return []queue{
		{name: workflows.BackupTaskQueue, options: worker.Options{MaxConcurrentActivityExecutionSize: 2}, register: registerBackup},
		{name: workflows.DrillTaskQueue, options: worker.Options{MaxConcurrentActivityExecutionSize: 2}, register: registerDrill},
	}
}

func backupStore(d Deps) backup.Store {
	return backup.Store{S3: d.S3, Bucket: d.Config.S3.Bucket, StorageClass: d.Config.S3.StorageClass}
}

func backupDatabaseURL(cfg *config.Config) string {
	if cfg.Backup.DatabaseURL != "" {
		return cfg.Backup.DatabaseURL
	}
	return cfg.DatabaseURL
}

func registerBackup(ctx context.Context, w worker.Registry, d Deps) (func(), error) {
	seedBackupMetrics(ctx, d)
	b := d.Config.Backup
	recipients := append([]string(nil), b.Recipients...)
	if b.RecipientsFile != "" {
		more, err := backup.ReadRecipientsFile(b.RecipientsFile)
		if err != nil {
			return nil, err
		}
		recipients = append(recipients, more...)
	}
	passphrase := ""
	if b.PassphraseFile != "" {
		p, err := readSecretFile(b.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("BACKUP_PASSPHRASE_FILE: %w", err)
		}
		passphrase = p
	}
	if len(recipients) == 0 && passphrase == "" {
		d.Logger.Warn("backup: no BACKUP_RECIPIENTS, BACKUP_RECIPIENTS_FILE or BACKUP_PASSPHRASE_FILE: backups will fail until one is set")
	}
	var temporalState []backup.TemporalSource
	for _, u := range b.TemporalDatabaseURLs {
		temporalState = append(temporalState, backup.TemporalSource{DatabaseURL: u})
	}
	if b.TemporalSQLiteFile != "" {
		temporalState = append(temporalState, backup.TemporalSource{SQLiteFile: b.TemporalSQLiteFile})
	}
	if len(temporalState) == 0 {
		d.Logger.Warn("backup: no TEMPORAL_BACKUP_DATABASE_URLS: backups will not hold Temporal's state (pending bailouts, schedules)")
	}
	w.RegisterWorkflowWithOptions(workflows.BackupWorkflow, workflow.RegisterOptions{Name: "BackupWorkflow"})
	w.RegisterActivityWithOptions(&activities.Backup{
		Pool: d.Pool, Store: backupStore(d), DatabaseURL: backupDatabaseURL(d.Config),
		Recipients: recipients, Passphrase: passphrase, PGBinDir: b.PGBinDir,
		KeepNightly: b.KeepNightly, KeepMonthly: b.KeepMonthly, Temporal: temporalState,
		TreasuryAnchor: manifestAnchor(d.Config),
	}, activity.RegisterOptions{})
	return nil, nil
}

func registerDrill(ctx context.Context, w worker.Registry, d Deps) (func(), error) {
	seedBackupMetrics(ctx, d)
	b := d.Config.Backup
	a := &activities.Drill{Pool: d.Pool, Store: backupStore(d), PGBinDir: b.PGBinDir, Jobs: b.DrillRestoreJobs,
		ProductionURL: d.Config.DatabaseURL, AllowProductionServer: b.DrillAllowProductionServer,
		RuntimeTemplate: d.Config.DatabaseURL, TreasuryTemplate: d.Config.Treasury.DatabaseURL}
	if a.Jobs == 0 {
		a.Jobs = runtime.NumCPU()
	}
	a.ServerURL = b.DrillDatabaseURL
	if a.ServerURL == "" {
		a.ServerURL = d.Config.DatabaseURL
	}
	if !a.AllowProductionServer && activities.SameServer(a.ServerURL, a.ProductionURL) {
		d.Logger.Warn("drill: DRILL_DATABASE_URL is unset or on DATABASE_URL's server: drills will refuse to run until DRILL_DATABASE_URL names a drill server (or DRILL_ALLOW_PRODUCTION_SERVER=true)")
	}
	if b.IdentityFile != "" {
		ids, err := backup.ReadIdentities(b.IdentityFile)
		if err != nil {
			return nil, fmt.Errorf("BACKUP_IDENTITY_FILE: %w", err)
		}
		a.Identities = ids
	}
	if b.PassphraseFile != "" {
		ids, err := backup.ReadPassphraseFile(b.PassphraseFile)
		if err != nil {
			return nil, fmt.Errorf("BACKUP_PASSPHRASE_FILE: %w", err)
		}
		a.Identities = append(a.Identities, ids...)
	}
	if len(a.Identities) == 0 {
		d.Logger.Warn("drill: no BACKUP_IDENTITY_FILE or BACKUP_PASSPHRASE_FILE: drills will fail until one is set")
	}
	w.RegisterWorkflowWithOptions(workflows.DrillWorkflow, workflow.RegisterOptions{Name: "DrillWorkflow"})
	w.RegisterActivityWithOptions(a, activity.RegisterOptions{})
	return nil, nil
}

// backupSchedules are the nightly backup and the quarterly fire drill.
func backupSchedules(cfg *config.Config) []schedule {
	return []schedule{
		{
			id: "backup-nightly", cron: cfg.Backup.Schedule, workflow: "BackupWorkflow",
			args:      []any{workflows.BackupInput{Kind: "nightly"}},
			taskQueue: workflows.BackupTaskQueue, workflowID: "backup-nightly",
			note: "Nightly encrypted backup (BACKUP_SCHEDULE)",
		},
		{
			id: "drill-quarterly", cron: cfg.Backup.DrillSchedule, workflow: "DrillWorkflow",
			args:      []any{workflows.DrillInput{RTOTarget: cfg.Backup.DrillRTOTarget, Kind: workflows.DefaultDrillKind(cfg.PITR.Enabled)}},
			taskQueue: workflows.DrillTaskQueue, workflowID: "drill-quarterly",
			note: "Quarterly restore fire drill, logical and (with PITR_CIPHER_PASS) point-in-time (DRILL_SCHEDULE)",
		},
	}
}

// readSecretFile reads a one-line secret, dropping the trailing newline.
func readSecretFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(b), "\r\n")
	if s == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return s, nil
}
