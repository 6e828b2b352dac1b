package config

import "time"

// Backup configures nightly backups, restores and fire drills.
type Backup struct {
	// DatabaseURL is the database that is backed up (BACKUP_DATABASE_URL); empty means
	// DATABASE_URL.
	DatabaseURL string
	// Recipients are age X25519 public keys, age1... (BACKUP_RECIPIENTS, comma separated).
	Recipients []string
	// RecipientsFile is a file of age recipients, one a line (BACKUP_RECIPIENTS_FILE).
	RecipientsFile string
	// PassphraseFile switches to age's scrypt passphrase mode (BACKUP_PASSPHRASE_FILE).
	PassphraseFile string
	// IdentityFile is the age identity that decrypts backups (BACKUP_IDENTITY_FILE). Only
	// the drill worker and the restore command need it; the backup worker must not have it.
	IdentityFile string
	// Schedule is the nightly backup's cron expression in UTC (BACKUP_SCHEDULE).
	Schedule string
	// KeepNightly is how many of the newest backups retention keeps (BACKUP_KEEP_NIGHTLY).
	KeepNightly int
	// KeepMonthly is how many monthly backups (the first of each month) retention keeps
	// (BACKUP_KEEP_MONTHLY).
	KeepMonthly int
	// PGBinDir holds pg_dump and pg_restore (PG_BIN_DIR); empty means
	// /usr/lib/postgresql/<server major>/bin, then PATH.
	PGBinDir string
	// DrillSchedule is the fire drill's cron expression in UTC (DRILL_SCHEDULE).
	DrillSchedule string
	// DrillRTOTarget is the recovery time objective a drill is measured against
	// (DRILL_RTO_TARGET).
	DrillRTOTarget time.Duration
	// DrillDatabaseURL is a database on the server where drills create their scratch
	// databases (DRILL_DATABASE_URL); empty means DATABASE_URL.
	DrillDatabaseURL string
	// DrillRestoreJobs is a drill's pg_restore --jobs (DRILL_RESTORE_JOBS); 0 means the drill
	// worker's cores.
	DrillRestoreJobs int
	// DrillAllowProductionServer lets a drill restore onto DATABASE_URL's server
	// (DRILL_ALLOW_PRODUCTION_SERVER); `orchestrator dev` sets it, having one server.
	DrillAllowProductionServer bool
	// TemporalDatabaseURLs are Temporal's PostgreSQL databases the nightly backup dumps too
	// (TEMPORAL_BACKUP_DATABASE_URLS, comma separated).
	TemporalDatabaseURLs []string
	// TemporalSQLiteFile is the embedded dev server's state file, backed up with SQLite's
	// online backup API; set by `orchestrator dev`, not from the environment.
	TemporalSQLiteFile string
}

func loadBackup(e *env) Backup {
	return Backup{
		DatabaseURL:                e.str("BACKUP_DATABASE_URL", ""),
		Recipients:                 e.list("BACKUP_RECIPIENTS"),
		RecipientsFile:             e.str("BACKUP_RECIPIENTS_FILE", ""),
		PassphraseFile:             e.str("BACKUP_PASSPHRASE_FILE", ""),
		IdentityFile:               e.str("BACKUP_IDENTITY_FILE", ""),
		Schedule:                   e.str("BACKUP_SCHEDULE", "0 2 * * *"),
		KeepNightly:                e.integer("BACKUP_KEEP_NIGHTLY", 7, 1),
		KeepMonthly:                e.integer("BACKUP_KEEP_MONTHLY", 12, 0),
		PGBinDir:                   e.str("PG_BIN_DIR", ""),
		DrillSchedule:              e.str("DRILL_SCHEDULE", "0 3 1 1,4,7,10 *"),
		DrillRTOTarget:             e.duration("DRILL_RTO_TARGET", 30*time.Minute),
		DrillDatabaseURL:           e.str("DRILL_DATABASE_URL", ""),
		DrillRestoreJobs:           e.integer("DRILL_RESTORE_JOBS", 0, 0),
		DrillAllowProductionServer: e.boolean("DRILL_ALLOW_PRODUCTION_SERVER", false),
		TemporalDatabaseURLs:       e.list("TEMPORAL_BACKUP_DATABASE_URLS"),
	}
}
