package activities

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/pitr"
)

// DrillMarker is a PITR drill's marker row as written: Commit is the server's clock and WAL
// segment read right after it committed.
type DrillMarker struct {
	Seq      int
	Commit   pitr.Commit
	Database string
}

// WriteMarkerInput names a marker row.
type WriteMarkerInput struct {
	DrillID string
	Seq     int
}

// WriteMarker writes a PITR drill's marker row into the production database (DATABASE_URL)
// and reads the moment just after its commit on the server's clock, the clock PostgreSQL
// compares a recovery target with.
func (a *Drill) WriteMarker(ctx context.Context, in WriteMarkerInput) (DrillMarker, error) {
	if err := db.WriteDrillMarker(ctx, a.Pool, in.DrillID, in.Seq); err != nil {
		return DrillMarker{}, fmt.Errorf("drill: write marker %d: %w", in.Seq, err)
	}
	c, err := pitr.CommitPoint(ctx, a.Pool)
	if err != nil {
		return DrillMarker{}, err
	}
	m := DrillMarker{Seq: in.Seq, Commit: c}
	if err := a.Pool.QueryRow(ctx, `SELECT current_database()`).Scan(&m.Database); err != nil {
		return DrillMarker{}, err
	}
	return m, nil
}

// WaitArchivedInput is the commit whose archiving a drill waits for, at most Max.
type WaitArchivedInput struct {
	Commit pitr.Commit
	Max    time.Duration
}

// WaitArchived measures the archive lag (the RPO): it waits, without forcing a WAL switch,
// until the segment holding the commit is in the repository, as pg_stat_archiver reports. Not
// archived within Max is a non-retryable failure naming the last failed segment.
func (a *Drill) WaitArchived(ctx context.Context, in WaitArchivedInput) (pitr.Lag, error) {
	lag, err := pitr.WaitArchived(ctx, a.Pool, in.Commit, in.Max, time.Second, func(l pitr.Lag) {
		activity.RecordHeartbeat(ctx, fmt.Sprintf("waiting %.0fs for %s to be archived", l.Seconds, in.Commit.Segment))
	})
	if err != nil {
		return lag, err
	}
	if !lag.Archived {
		msg := fmt.Sprintf("drill: WAL segment %s (the drill's marker) not archived within %s (last archived %q, last failed %q): WAL archiving is broken or far behind",
			in.Commit.Segment, in.Max, lag.LastArchived, lag.LastFailed)
		return lag, temporal.NewNonRetryableApplicationError(msg, "drill_wal_not_archived", nil, lag)
	}
	return lag, nil
}

// PITRDrillInput is a PITR drill's restore: to At, in Database the marker Present must be
// there and Absent must not.
type PITRDrillInput struct {
	DrillID         string
	Database        string
	At              time.Time
	Present, Absent int
}

// PITRDrillResult is what the restore found and how long each part took.
type PITRDrillResult struct {
	// Backup is the label of the physical backup the restore started from.
	Backup          string
	LastTransaction time.Time
	// Markers are the drill's marker rows found in the restored database.
	Markers                         []int
	MarkerFound, LaterMarkerAbsent  bool
	Serving                         *ServingReport
	RestoreSeconds, RecoverySeconds float64
	VerifySeconds, ServingSeconds   float64
}

// DrillDataDir is where a drill restores to a moment: a scratch data directory beside
// pgBackRest's configuration, removed afterwards.
func DrillDataDir(pitrDir, drillID string) string {
	return filepath.Join(pitrDir, "drills", ScratchName(drillID, ""))
}

// DrillRestore restores the repository to in.At into a scratch data directory on a scratch
// port (pgBackRest restore --type=time, the source's own restore path), waits for the replay
// to promote, checks the marker rows, runs the serving check as the application's roles and
// removes the scratch server. Markers wrong or a failed serving check are non-retryable, with
// the result as details.
func (a *PITR) DrillRestore(ctx context.Context, in PITRDrillInput) (PITRDrillResult, error) {
	e, err := a.engine()
	if err != nil {
		return PITRDrillResult{}, err
	}
	dir := DrillDataDir(e.Config().Dir, in.DrillID)
	if err := os.RemoveAll(dir); err != nil { // a previous attempt's
		return PITRDrillResult{}, fmt.Errorf("drill: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o711); err != nil {
		return PITRDrillResult{}, fmt.Errorf("drill: %w", err)
	}
	// The server runs as the clusters' user: let it pass through pgBackRest's directory and
	// the drills' (execute bit only, nothing can be listed; the configuration stays 0600).
	for _, d := range []string{e.Config().Dir, filepath.Dir(dir)} {
		if st, err := os.Stat(d); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
				return PITRDrillResult{}, fmt.Errorf("drill: %w", err)
			}
		}
	}
	defer func() { _ = os.RemoveAll(dir); _ = os.Remove(dir + ".log") }()
	stop := heartbeat(ctx, a.HeartbeatEvery, func() any { return "pgbackrest restore --type=time to " + in.At.Format(time.RFC3339Nano) })
	defer stop()
	res, err := e.Restore(ctx, pitr.RestoreOptions{At: in.At, DataDir: dir, Password: e.Config().PGPassword,
		RuntimeURL: a.RuntimeTemplate, TreasuryURL: a.TreasuryTemplate, KeepRunning: true})
	var out PITRDrillResult
	if res != nil {
		out.Backup, out.LastTransaction = res.Backup.Label, res.LastTransaction
		out.RestoreSeconds, out.RecoverySeconds = res.RestoreSeconds, res.RecoverySeconds
		if len(res.Serving.Checks) > 0 {
			serving := res.Serving
			out.Serving = &serving
			for _, c := range serving.Checks {
				out.ServingSeconds += c.Seconds
			}
		}
	}
	if err != nil {
		switch {
		case out.Serving != nil && !out.Serving.OK:
			return out, temporal.NewNonRetryableApplicationError(err.Error(), "drill_not_serving", err, out)
		case strings.Contains(err.Error(), "nothing was restored"):
			return out, temporal.NewNonRetryableApplicationError(err.Error(), "drill_pitr_target", err, out)
		}
		return out, err
	}
	defer func() { _ = res.Cluster.Stop() }()
	start := time.Now()
	conn, err := pgx.Connect(ctx, res.Cluster.URL(in.Database))
	if err != nil {
		return out, fmt.Errorf("drill: connect to the restored server: %w", err)
	}
	defer conn.Close(context.Background())
	if out.Markers, err = db.DrillMarkers(ctx, conn, in.DrillID); err != nil {
		return out, fmt.Errorf("drill: read the markers of the restored database: %w", err)
	}
	out.VerifySeconds = time.Since(start).Seconds()
	out.MarkerFound = slices.Contains(out.Markers, in.Present)
	out.LaterMarkerAbsent = !slices.Contains(out.Markers, in.Absent)
	if !out.MarkerFound || !out.LaterMarkerAbsent {
		err := fmt.Errorf("drill: restored to %s, the markers are %v: want %d there and %d not", in.At.Format(time.RFC3339Nano), out.Markers, in.Present, in.Absent)
		return out, temporal.NewNonRetryableApplicationError(err.Error(), "drill_pitr_mismatch", err, out)
	}
	return out, nil
}
