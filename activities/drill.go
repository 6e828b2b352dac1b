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
	"github.com/creatorvault/orchestrator/recovery"
)

// Drill restores backups into scratch databases on the drill server and verifies them: the
// fingerprint, then a serving check as the application's roles. It is the only worker that
// holds the identity.
type Drill struct {
	Pool  *pgxpool.Pool
	Store backup.Store
	// Identities decrypt backups (X25519 identities, or the scrypt identity of
	// BACKUP_PASSPHRASE_FILE); empty makes every restore fail with a clear error.
	Identities []age.Identity
	// ServerURL connects an administrator to a database on the drill server
	// (DRILL_DATABASE_URL), where scratch databases are created and roles bootstrapped.
	ServerURL string
	// ProductionURL is DATABASE_URL; a drill refuses to restore onto its server unless
	// AllowProductionServer (DRILL_ALLOW_PRODUCTION_SERVER, and always in dev).
	ProductionURL         string
	AllowProductionServer bool
	// RuntimeTemplate and TreasuryTemplate give the serving check the users and passwords of
	// the runtime role and the treasury login (DATABASE_URL, TREASURY_DATABASE_URL).
	RuntimeTemplate, TreasuryTemplate string
	PGBinDir                          string
	// Jobs is pg_restore --jobs (DRILL_RESTORE_JOBS).
	Jobs           int
	HeartbeatEvery time.Duration
	// Bootstrap makes the roles on the drill server; nil means recovery.Bootstrap.
	Bootstrap func(ctx context.Context, adminURL string) error
}

// ResolveBackup reconciles the catalog with the object store and returns the given backup
// id if the store holds it complete, else the store's newest complete backup. The store
// decides, not the catalog: a lost or stale catalog cannot send a drill to a backup that is
// gone.
func (a *Drill) ResolveBackup(ctx context.Context, backupID string) (string, error) {
	if drift, err := recovery.ReconcileCatalog(ctx, a.Pool, a.Store); err != nil {
		if errors.Is(err, backup.ErrNewerFormat) {
			return "", nonRetryable("backup_newer_format", err)
		}
		return "", err
	} else if !drift.Empty() {
		activity.GetLogger(ctx).Warn("drill: "+drift.String(), "added", drift.Added, "missing", drift.Missing)
	}
	m, err := backup.Resolve(ctx, a.Store, backupID, time.Time{})
	if err != nil {
		if errors.Is(err, backup.ErrNoManifest) || errors.Is(err, backup.ErrNewerFormat) || errors.Is(err, backup.ErrUnreadable) ||
			strings.HasPrefix(err.Error(), "no complete backup") {
			return "", nonRetryable("backup_not_found", err)
		}
		return "", err
	}
	return m.ID, nil
}

// DrillRestoreInput names a drill's restore.
type DrillRestoreInput struct {
	DrillID  string
	BackupID string
}

// ServingReport is the serving check's report (db.ServingReport), named here for the
// workflow's report.
type ServingReport = db.ServingReport

// DrillRestoreResult reports a drill's restore. A failed restore carries it as the details
// of its error, so the report shows how far it got.
type DrillRestoreResult struct {
	StoredBytes     int64
	DumpBytes       int64
	Tables          int
	DownloadSeconds float64
	RestoreSeconds  float64
	VerifySeconds   float64
	Mismatches      []string
	// Serving is the serving check of the restored database; ServingSeconds its duration.
	Serving        *ServingReport
	ServingSeconds float64
	// Jobs is the pg_restore --jobs used.
	Jobs int
}

var unsafeName = regexp.MustCompile(`[^a-z0-9_]+`)

// ScratchName is the scratch database of one run of a drill: the drill's id and the first 8
// characters of its run id. The run id is there because a drill's id is only unique within one
// Temporal deployment: a manual drill is named for the second it started, and two deployments
// that share a drill server (seen: two test processes, each with its embedded Temporal server,
// on one machine's PostgreSQL) restored into, and dropped WITH (FORCE), the same database.
func ScratchName(drillID, runID string) string {
	n := scratchBase(drillID, 50)
	if run := unsafeName.ReplaceAllString(strings.ToLower(runID), ""); run != "" {
		n += "_" + run[:min(8, len(run))]
	}
	return n
}

// legacyScratchName is the name drills restored into before ScratchName had the run id; a
// drill in flight across the upgrade drops it too.
func legacyScratchName(drillID string) string { return scratchBase(drillID, 60) }

// scratchBase is "drill_" and the drill's id made a safe identifier, at most limit bytes.
func scratchBase(drillID string, limit int) string {
	n := "drill_" + unsafeName.ReplaceAllString(strings.ToLower(drillID), "_")
	return n[:min(limit, len(n))]
}

// runOf is the workflow run of the activity ctx belongs to ("" outside an activity).
func runOf(ctx context.Context) string {
	if !activity.IsActivity(ctx) {
		return ""
	}
	return activity.GetInfo(ctx).WorkflowExecution.RunID
}

// ErrProductionServer means a drill was about to restore onto the production server.
var ErrProductionServer = errors.New("drill: DRILL_DATABASE_URL is the production server (DATABASE_URL's); name a drill server, or set DRILL_ALLOW_PRODUCTION_SERVER=true to restore beside production")

// Restore creates the drill's scratch database (anew on retry) on the drill server, restores
// the backup into it with the roles bootstrapped, verifies the fingerprint and runs the
// serving check. A mismatch, an unusable backup or a failed serving check is a
// non-retryable failure.
func (a *Drill) Restore(ctx context.Context, in DrillRestoreInput) (DrillRestoreResult, error) {
	if len(a.Identities) == 0 {
		return DrillRestoreResult{}, nonRetryable("drill_config", errors.New("drill: no backup identity configured (BACKUP_IDENTITY_FILE or BACKUP_PASSPHRASE_FILE)"))
	}
	if !a.AllowProductionServer && SameServer(a.ServerURL, a.ProductionURL) {
		return DrillRestoreResult{}, nonRetryable("drill_production_server", ErrProductionServer)
	}
	name := ScratchName(in.DrillID, runOf(ctx))
	if err := a.dropDB(ctx, name); err != nil {
		return DrillRestoreResult{}, err
	}
	m, err := backup.ReadManifest(ctx, a.Store, in.BackupID)
	if err != nil {
		return DrillRestoreResult{}, nonRetryable("drill_backup_unusable", err)
	}
	var phase atomic.Value
	var done atomic.Int64
	phase.Store("download")
	stop := heartbeat(ctx, a.HeartbeatEvery, func() any { return fmt.Sprintf("%s %d bytes", phase.Load(), done.Load()) })
	defer stop()
	jobs := a.Jobs
	if jobs < 1 {
		jobs = 1
	}
	res, err := recovery.Restore(ctx, recovery.Options{
		Store: a.Store, Manifest: m, TargetURL: pgcluster.WithDatabase(a.ServerURL, name), Create: true,
		Identities: a.Identities, Jobs: jobs, PGBinDir: a.PGBinDir, Bootstrap: a.Bootstrap,
		RuntimeTemplate: a.RuntimeTemplate, TreasuryTemplate: a.TreasuryTemplate,
		Progress: func(p string, d, _ int64) { phase.Store(p); done.Store(d) },
	})
	out := DrillRestoreResult{StoredBytes: m.StoredBytes, DumpBytes: m.DumpBytes, Tables: len(m.Tables), Jobs: jobs}
	if res != nil {
		if r := res.Restore; r != nil {
			out.DownloadSeconds, out.RestoreSeconds, out.VerifySeconds = r.Download.Seconds(), r.Restore.Seconds(), r.Verify.Seconds()
			out.Mismatches = r.Mismatches
		}
		if len(res.Serving.Checks) > 0 {
			serving := res.Serving
			out.Serving = &serving
			for _, c := range serving.Checks {
				out.ServingSeconds += c.Seconds
			}
		}
	}
	if out.Serving != nil {
		backup.ObserveServingCheck(out.Serving.OK)
	}
	if err != nil {
		switch {
		case len(out.Mismatches) > 0:
			backup.ObserveFingerprintMismatch()
			return out, temporal.NewNonRetryableApplicationError(err.Error(), "drill_mismatch", err, out)
		case errors.Is(err, db.ErrNotServing):
			return out, temporal.NewNonRetryableApplicationError(err.Error(), "drill_not_serving", err, out)
		case errors.Is(err, backup.ErrNoManifest) || strings.Contains(err.Error(), "nothing was restored"):
			return out, temporal.NewNonRetryableApplicationError(err.Error(), "drill_backup_unusable", err, out)
		}
		return out, err
	}
	return out, nil
}

// SameServer reports whether two PostgreSQL URLs point at the same server (host and port,
// with localhost and the loopback addresses taken as one).
func SameServer(a, b string) bool {
	if a == "" || b == "" {
		return false
	}
	ca, errA := pgx.ParseConfig(a)
	cb, errB := pgx.ParseConfig(b)
	if errA != nil || errB != nil {
		return a == b
	}
	norm := func(h string) string {
		switch h {
		case "localhost", "::1", "127.0.0.1":
			return "loopback"
		}
		return strings.ToLower(h)
	}
	return norm(ca.Host) == norm(cb.Host) && ca.Port == cb.Port
}

// DropScratch drops the drill run's scratch database (idempotent), and the name a run
// restored into before the upgrade that added the run id.
func (a *Drill) DropScratch(ctx context.Context, drillID string) error {
	if err := a.dropDB(ctx, legacyScratchName(drillID)); err != nil {
		return err
	}
	return a.dropDB(ctx, ScratchName(drillID, runOf(ctx)))
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
	verified := in.Outcome == "pass" || in.Outcome == "rto_exceeded"
	if verified {
		if err := db.MarkBackupVerified(ctx, a.Pool, in.BackupID, in.FinishedAt); err != nil {
			return err
		}
		if b, err := db.GetBackup(ctx, a.Pool, in.BackupID); err == nil {
			backup.ObserveVerified(b.StartedAt)
		}
	}
	// Last, so that a retry of this activity does not count the drill twice.
	backup.ObserveDrill(backup.DrillObservation{FinishedAt: in.FinishedAt, RTO: time.Duration(in.RTOSeconds) * time.Second,
		Target: time.Duration(in.RTOTargetSeconds) * time.Second, Failed: !verified, Breached: in.Outcome == "rto_exceeded"})
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
		pts = append(pts, backup.RTOPoint{At: d.StartedAt, RTOSeconds: float64(d.RTOSeconds), Failed: d.Outcome == "fail"})
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

// DrillStep is one step's duration in a drill's report.
type DrillStep struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// PITRReport is a PITR drill's part of the report: the marker written at a known moment
// (MarkerAt, on the database server's clock, just after its commit), the later marker, the
// moment restored to (TargetAt, between them), what the restored server held, the archive lag
// (RPO) and the restore's RTO.
type PITRReport struct {
	// Backup is the physical backup the restore started from.
	Backup            string    `json:"backup"`
	MarkerAt          time.Time `json:"marker_at"`
	LaterMarkerAt     time.Time `json:"later_marker_at"`
	TargetAt          time.Time `json:"target_at"`
	LastTransaction   time.Time `json:"last_transaction"`
	MarkerFound       bool      `json:"marker_found"`
	LaterMarkerAbsent bool      `json:"later_marker_absent"`
	Verified          bool      `json:"verified"`
	// RPOSeconds is the archive lag: from the later marker's commit until its WAL segment was
	// in the repository, measured without forcing a WAL switch. RPOArchived is false when it
	// was not archived within the wait.
	RPOSeconds       float64 `json:"rpo_seconds"`
	RPOTargetSeconds int     `json:"rpo_target_seconds"`
	RPOArchived      bool    `json:"rpo_archived"`
	// RTOSeconds runs from the start of the restore to the verified, serving-checked server.
	RTOSeconds int            `json:"rto_seconds"`
	Breached   bool           `json:"breached"`
	BreachedAt *time.Time     `json:"breached_at,omitempty"`
	Serving    *ServingReport `json:"serving,omitempty"`
	Steps      []DrillStep    `json:"steps"`
	Error      string         `json:"error,omitempty"`
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// reportMarkdown renders a drill report (the JSON of workflows.DrillReport) for people.
func reportMarkdown(report []byte) ([]byte, error) {
	var r struct {
		DrillID          string            `json:"drill_id"`
		BackupID         string            `json:"backup_id"`
		Outcome          string            `json:"outcome"`
		StartedAt        time.Time         `json:"started_at"`
		RTOSeconds       int               `json:"rto_seconds"`
		RTOTargetSeconds int               `json:"rto_target_seconds"`
		Breached         bool              `json:"breached"`
		StoredBytes      int64             `json:"stored_bytes"`
		DumpBytes        int64             `json:"dump_bytes"`
		Tables           int               `json:"tables"`
		Verified         bool              `json:"verified"`
		Serving          *db.ServingReport `json:"serving"`
		RestoreJobs      int               `json:"restore_jobs"`
		Error            string            `json:"error"`
		Steps            []DrillStep       `json:"steps"`
		Recommendations  []string          `json:"recommendations"`
		Kind             string            `json:"kind"`
		PITR             *PITRReport       `json:"pitr"`
	}
	if err := json.Unmarshal(report, &r); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "# Fire drill %s\n\n", r.DrillID)
	if r.Kind != "" {
		fmt.Fprintf(&b, "- Kind: %s\n", r.Kind)
	}
	fmt.Fprintf(&b, "- Outcome: **%s**\n- Started: %s\n- Backup: %s (%d bytes stored, %d bytes dump, %d tables)\n",
		r.Outcome, r.StartedAt.UTC().Format(time.RFC3339), r.BackupID, r.StoredBytes, r.DumpBytes, r.Tables)
	fmt.Fprintf(&b, "- RTO: %ds against a %ds target (breached: %t)\n- Verified against the manifest fingerprint: %t\n",
		r.RTOSeconds, r.RTOTargetSeconds, r.Breached, r.Verified)
	if r.Serving != nil {
		fmt.Fprintf(&b, "- Serving check as the runtime role and the treasury login: %s\n", map[bool]string{true: "passed", false: "**failed**"}[r.Serving.OK])
	}
	if r.RestoreJobs > 0 {
		fmt.Fprintf(&b, "- pg_restore jobs: %d\n", r.RestoreJobs)
	}
	if r.Error != "" {
		fmt.Fprintf(&b, "- Error: %s\n", r.Error)
	}
	b.WriteString("\n| step | seconds |\n|---|---:|\n")
	for _, s := range r.Steps {
		fmt.Fprintf(&b, "| %s | %.1f |\n", s.Name, s.Seconds)
	}
	if r.Serving != nil {
		b.WriteString("\n| serving check | role | result |\n|---|---|---|\n")
		for _, c := range r.Serving.Checks {
			res := "ok"
			if !c.OK {
				res = "FAILED: " + c.Error
			}
			fmt.Fprintf(&b, "| %s | %s | %s |\n", c.Name, c.Role, res)
		}
	}
	if p := r.PITR; p != nil {
		ts := func(t time.Time) string {
			if t.IsZero() {
				return "-"
			}
			return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
		}
		fmt.Fprintf(&b, "\n## Point-in-time recovery\n\n")
		fmt.Fprintf(&b, "- Verified: **%t** (restored from physical backup %s)\n", p.Verified, orDash(p.Backup))
		fmt.Fprintf(&b, "- Marker 1 committed before %s; marker 2 at %s; restored to %s (last transaction %s)\n",
			ts(p.MarkerAt), ts(p.LaterMarkerAt), ts(p.TargetAt), ts(p.LastTransaction))
		fmt.Fprintf(&b, "- Marker 1 there: %t; marker 2 absent: %t\n", p.MarkerFound, p.LaterMarkerAbsent)
		if p.RPOArchived {
			fmt.Fprintf(&b, "- RPO (archive lag): %.1fs against a %ds target\n", p.RPOSeconds, p.RPOTargetSeconds)
		} else {
			fmt.Fprintf(&b, "- RPO (archive lag): **not archived** after %.0fs (target %ds)\n", p.RPOSeconds, p.RPOTargetSeconds)
		}
		fmt.Fprintf(&b, "- RTO: %ds against a %ds target (breached: %t)\n", p.RTOSeconds, r.RTOTargetSeconds, p.Breached)
		if p.Serving != nil {
			fmt.Fprintf(&b, "- Serving check of the restored server: %s\n", map[bool]string{true: "passed", false: "**failed**"}[p.Serving.OK])
		}
		if p.Error != "" {
			fmt.Fprintf(&b, "- Error: %s\n", p.Error)
		}
		b.WriteString("\n| step | seconds |\n|---|---:|\n")
		for _, s := range p.Steps {
			fmt.Fprintf(&b, "| %s | %.1f |\n", s.Name, s.Seconds)
		}
	}
	if len(r.Recommendations) > 0 {
		b.WriteString("\n## Recommendations\n\n")
		for _, rec := range r.Recommendations {
			fmt.Fprintf(&b, "- %s\n", rec)
		}
	}
	return b.Bytes(), nil
}
