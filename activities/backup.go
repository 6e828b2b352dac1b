// Package activities holds the Temporal activities: methods on structs holding their
// dependencies, one file per domain.
package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
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
		Recipients: a.Recipients, Passphrase: a.Passphrase,
		Progress: func(n int64) { stored.Store(n) },
	})
	stop()
	if err != nil {
		_ = db.FailBackup(context.WithoutCancel(ctx), a.Pool, in.BackupID, err.Error(), time.Now())
		return BackupRunResult{}, err
	}
	fin := m.FinishedAt
	if err := db.CompleteBackup(ctx, a.Pool, db.Backup{ID: m.ID, Database: m.Database, ServerVersion: m.ServerVersion,
		FinishedAt: &fin, DumpBytes: m.DumpBytes, StoredBytes: m.StoredBytes, SHA256: m.SHA256, Tables: len(m.Tables)}); err != nil {
		return BackupRunResult{}, err
	}
	return BackupRunResult{BackupID: m.ID, ObjectKey: m.Object, SHA256: m.SHA256, DumpBytes: m.DumpBytes,
		StoredBytes: m.StoredBytes, Tables: len(m.Tables)}, nil
}

// PruneResult lists the backups retention deleted.
type PruneResult struct {
	Deleted []string
}

// Prune applies retention to the complete backups: keep the last KeepNightly, the first of
// each of the last KeepMonthly months, and the newest verified one.
func (a *Backup) Prune(ctx context.Context) (PruneResult, error) {
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

// Drill restores backups into scratch databases and verifies them. It is the only worker
// that holds the identity.
type Drill struct {
	Pool  *pgxpool.Pool
	Store backup.Store
	// Identities decrypt backups; empty makes every restore fail with a clear error.
	Identities []age.Identity
	// ServerURL is a database on the server where scratch databases are created.
	ServerURL string
	PGBinDir  string
	// Jobs is pg_restore --jobs; 0 or 1 streams into pg_restore.
	Jobs           int
	HeartbeatEvery time.Duration
}

// ResolveBackup returns the given backup id if it is complete, else the newest complete one.
func (a *Drill) ResolveBackup(ctx context.Context, backupID string) (string, error) {
	var b db.Backup
	var err error
	if backupID == "" || backupID == "latest" {
		b, err = db.LatestBackup(ctx, a.Pool, time.Time{})
	} else {
		b, err = db.GetBackup(ctx, a.Pool, backupID)
		if err == nil && b.Status != "complete" {
			err = fmt.Errorf("backup %s is %s, not complete", b.ID, b.Status)
			return "", nonRetryable("backup_not_complete", err)
		}
	}
	if err != nil {
		if _, ok := db.AsError(err); ok {
			return "", nonRetryable("backup_not_found", err)
		}
		return "", err
	}
	return b.ID, nil
}

// DrillRestoreInput names a drill's restore.
type DrillRestoreInput struct {
	DrillID  string
	BackupID string
}

// DrillRestoreResult reports a drill's restore.
type DrillRestoreResult struct {
	StoredBytes     int64
	DumpBytes       int64
	Tables          int
	DownloadSeconds float64
	RestoreSeconds  float64
	VerifySeconds   float64
	Mismatches      []string
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// ScratchName is the scratch database of a drill.
func ScratchName(drillID string) string {
	n := "drill_" + unsafeName.ReplaceAllString(strings.ToLower(drillID), "_")
	if len(n) > 60 {
		n = n[:60]
	}
	return n
}

// Restore creates the drill's scratch database (anew on retry), restores the backup into
// it and verifies the fingerprint. A mismatch is a non-retryable failure.
func (a *Drill) Restore(ctx context.Context, in DrillRestoreInput) (DrillRestoreResult, error) {
	if len(a.Identities) == 0 {
		return DrillRestoreResult{}, nonRetryable("drill_config", errors.New("drill: no backup identity configured (BACKUP_IDENTITY_FILE)"))
	}
	name := ScratchName(in.DrillID)
	if err := a.dropDB(ctx, name); err != nil {
		return DrillRestoreResult{}, err
	}
	if err := a.exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return DrillRestoreResult{}, fmt.Errorf("drill: create scratch database: %w", err)
	}
	var phase atomic.Value
	var done atomic.Int64
	phase.Store("download")
	stop := heartbeat(ctx, a.HeartbeatEvery, func() any { return fmt.Sprintf("%s %d bytes", phase.Load(), done.Load()) })
	defer stop()
	res, err := backup.Restore(ctx, a.Store, backup.RestoreOptions{
		ID: in.BackupID, TargetURL: pgcluster.WithDatabase(a.ServerURL, name), Identities: a.Identities,
		Jobs: a.Jobs, PGBinDir: a.PGBinDir,
		// The drill's role (DRILL_DATABASE_URL) owns the scratch database and nothing else.
		NoPrivileges: true,
		Progress:     func(p string, d, _ int64) { phase.Store(p); done.Store(d) },
	})
	if err != nil {
		if res != nil && len(res.Mismatches) > 0 {
			return DrillRestoreResult{Mismatches: res.Mismatches}, nonRetryable("drill_mismatch", err)
		}
		if errors.Is(err, backup.ErrNoManifest) || strings.Contains(err.Error(), "nothing was restored") {
			return DrillRestoreResult{}, nonRetryable("drill_backup_unusable", err)
		}
		return DrillRestoreResult{}, err
	}
	return DrillRestoreResult{StoredBytes: res.Manifest.StoredBytes, DumpBytes: res.Manifest.DumpBytes, Tables: len(res.Tables),
		DownloadSeconds: res.Download.Seconds(), RestoreSeconds: res.Restore.Seconds(), VerifySeconds: res.Verify.Seconds()}, nil
}

// DropScratch drops the drill's scratch database (idempotent).
func (a *Drill) DropScratch(ctx context.Context, drillID string) error {
	return a.dropDB(ctx, ScratchName(drillID))
}

func (a *Drill) dropDB(ctx context.Context, name string) error {
	if err := a.exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drill: drop scratch database: %w", err)
	}
	return nil
}

func (a *Drill) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, a.ServerURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql)
	return err
}

// DrillRecord is a drill's outcome and report.
type DrillRecord struct {
	DrillID          string
	BackupID         string
	StartedAt        time.Time
	FinishedAt       time.Time
	Outcome          string
	RTOSeconds       int
	RTOTargetSeconds int
	Detail           string
	Report           any
}

// Record stores a drill's row and report; a passing drill marks its backup verified.
func (a *Drill) Record(ctx context.Context, in DrillRecord) error {
	report, err := json.Marshal(in.Report)
	if err != nil {
		return nonRetryable("drill_report", err)
	}
	var fin *time.Time
	if !in.FinishedAt.IsZero() {
		fin = &in.FinishedAt
	}
	if err := db.RecordDrill(ctx, a.Pool, db.Drill{ID: in.DrillID, BackupID: in.BackupID, StartedAt: in.StartedAt,
		FinishedAt: fin, Outcome: in.Outcome, RTOSeconds: in.RTOSeconds, RTOTargetSeconds: in.RTOTargetSeconds,
		Detail: in.Detail, Report: report}); err != nil {
		return err
	}
	if err := a.storeReport(ctx, in.DrillID, report); err != nil {
		return err
	}
	if in.Outcome == "pass" || in.Outcome == "rto_exceeded" {
		return db.MarkBackupVerified(ctx, a.Pool, in.BackupID, in.FinishedAt)
	}
	return nil
}

// DrillReportKey is where a drill's report is stored in S3 (ext json or md).
func DrillReportKey(drillID, ext string) string { return "drills/" + drillID + "." + ext }

// storeReport writes the report as JSON and Markdown next to the backups.
func (a *Drill) storeReport(ctx context.Context, drillID string, report []byte) error {
	if a.Store.S3 == nil {
		return nil
	}
	md, err := reportMarkdown(report)
	if err != nil {
		return nonRetryable("drill_report", err)
	}
	for ext, body := range map[string][]byte{"json": report, "md": md} {
		ct := "application/json"
		if ext == "md" {
			ct = "text/markdown; charset=utf-8"
		}
		if _, err := a.Store.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(a.Store.Bucket),
			Key: aws.String(DrillReportKey(drillID, ext)), Body: bytes.NewReader(body), ContentType: aws.String(ct)}); err != nil {
			return fmt.Errorf("drill: store report: %w", err)
		}
	}
	return a.storeChart(ctx)
}

// DrillChartKey is the PNG chart of RTO across past drills.
const DrillChartKey = "drills/rto-chart.png"

// storeChart redraws the RTO chart from the last 40 finished drills.
func (a *Drill) storeChart(ctx context.Context) error {
	drills, err := db.ListDrills(ctx, a.Pool, 40)
	if err != nil {
		return err
	}
	var pts []backup.RTOPoint
	var target time.Duration
	for i := len(drills) - 1; i >= 0; i-- {
		d := drills[i]
		if d.Outcome == "running" {
			continue
		}
		pts = append(pts, backup.RTOPoint{At: d.StartedAt, RTOSeconds: float64(d.RTOSeconds)})
		target = time.Duration(d.RTOTargetSeconds) * time.Second
	}
	if len(pts) == 0 {
		return nil
	}
	png, err := backup.RTOChart(pts, target)
	if err != nil {
		return nonRetryable("drill_chart", err)
	}
	if _, err := a.Store.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(a.Store.Bucket), Key: aws.String(DrillChartKey),
		Body: bytes.NewReader(png), ContentType: aws.String("image/png")}); err != nil {
		return fmt.Errorf("drill: store RTO chart: %w", err)
	}
	return nil
}

// reportMarkdown renders a drill report (the JSON of workflows.DrillReport) for people.
func reportMarkdown(report []byte) ([]byte, error) {
	var r struct {
		DrillID          string    `json:"drill_id"`
		BackupID         string    `json:"backup_id"`
		Outcome          string    `json:"outcome"`
		StartedAt        time.Time `json:"started_at"`
		RTOSeconds       int       `json:"rto_seconds"`
		RTOTargetSeconds int       `json:"rto_target_seconds"`
		Breached         bool      `json:"breached"`
		StoredBytes      int64     `json:"stored_bytes"`
		DumpBytes        int64     `json:"dump_bytes"`
		Tables           int       `json:"tables"`
		Verified         bool      `json:"verified"`
		Error            string    `json:"error"`
		Steps            []struct {
			Name    string  `json:"name"`
			Seconds float64 `json:"seconds"`
		} `json:"steps"`
		Recommendations []string `json:"recommendations"`
	}
	if err := json.Unmarshal(report, &r); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Fire drill %s\n\n", r.DrillID)
	fmt.Fprintf(&b, "- Outcome: **%s**\n- Started: %s\n- Backup: %s (%d bytes stored, %d bytes dump, %d tables)\n",
		r.Outcome, r.StartedAt.UTC().Format(time.RFC3339), r.BackupID, r.StoredBytes, r.DumpBytes, r.Tables)
	fmt.Fprintf(&b, "- RTO: %ds against a %ds target (breached: %t)\n- Verified against the manifest fingerprint: %t\n",
		r.RTOSeconds, r.RTOTargetSeconds, r.Breached, r.Verified)
	if r.Error != "" {
		fmt.Fprintf(&b, "- Error: %s\n", r.Error)
	}
	b.WriteString("\n| step | seconds |\n|---|---:|\n")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "| %s | %.1f |\n", s.Name, s.Seconds)
	}
	if len(r.Recommendations) > 0 {
		b.WriteString("\n## Recommendations\n\n")
		for _, rec := range r.Recommendations {
			fmt.Fprintf(&b, "- %s\n", rec)
		}
	}
	return b.Bytes(), nil
}
