package pitr

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
)

// RestoreOptions describe a restore to a moment.
type RestoreOptions struct {
	// At is the moment: every transaction committed up to it is restored, none after.
	At time.Time
	// DataDir is the new data directory; it must not exist or be empty.
	DataDir string
	// Password is the source cluster's postgres password (the restored cluster has the
	// source's roles and passwords).
	Password string
	// RuntimeURL and TreasuryURL are the source's DATABASE_URL and TREASURY_DATABASE_URL; the
	// serving check runs with them pointed at the restored server. Empty skips the check.
	RuntimeURL, TreasuryURL string
	// KeepRunning leaves the restored server running (Result.Cluster); otherwise it is shut
	// down cleanly once checked, ready to be started by the machine's service manager.
	KeepRunning bool
	// RecoveryTimeout bounds WAL replay (default 10 minutes).
	RecoveryTimeout time.Duration
}

// RestoreResult is what a restore to a moment did.
type RestoreResult struct {
	// Target is the moment recovered to; Backup the physical backup it started from.
	Target time.Time
	Backup PhysicalBackup
	// LastTransaction is the commit time of the last transaction replayed (zero when the
	// backup itself was already past every commit before Target).
	LastTransaction time.Time
	// Serving is the serving check's report on the restored server.
	Serving db.ServingReport
	// Cluster is the restored server when KeepRunning.
	Cluster *pgcluster.Cluster
	// RestoreSeconds is pgBackRest's restore; RecoverySeconds the WAL replay up to promotion.
	RestoreSeconds, RecoverySeconds float64
}

// CheckTarget reports, in one line, why at cannot be restored to with what the repository
// holds: before the oldest backup ended, or after the newest archived WAL segment was
// uploaded. It returns the backup pgBackRest will start from.
func (e *Engine) CheckTarget(ctx context.Context, at time.Time) (PhysicalBackup, error) {
	if at.IsZero() {
		return PhysicalBackup{}, errors.New("pitr: no moment given (--at, RFC 3339)")
	}
	info, err := e.Info(ctx)
	if err != nil {
		return PhysicalBackup{}, err
	}
	if info.Status.Code != 0 {
		return PhysicalBackup{}, fmt.Errorf("pitr: the repository at %s%s has no usable stanza %s: %s (code %d)",
			e.cfg.hostPort(), e.cfg.RepoPath, e.cfg.Stanza, info.Status.Message, info.Status.Code)
	}
	backups := info.Sorted()
	if len(backups) == 0 || at.Before(backups[0].Stopped()) {
		oldest := "none"
		if len(backups) > 0 {
			oldest = backups[0].Label + " ended " + backups[0].Stopped().Format(time.RFC3339)
		}
		return PhysicalBackup{}, fmt.Errorf("pitr: %s is before the oldest physical backup (%s): nothing was restored", at.UTC().Format(time.RFC3339Nano), oldest)
	}
	from := backups[0]
	for _, b := range backups {
		if !b.Stopped().After(at) {
			from = b
		}
	}
	newest, segment, err := e.newestWAL(ctx, info)
	if err != nil {
		return PhysicalBackup{}, err
	}
	if at.After(newest) {
		return PhysicalBackup{}, fmt.Errorf("pitr: %s is after the newest archived WAL (segment %s, archived %s): nothing was restored",
			at.UTC().Format(time.RFC3339Nano), segment, newest.Format(time.RFC3339))
	}
	return from, nil
}

// newestWAL is the upload time of the newest archived segment: no commit after it can be in
// the archive.
func (e *Engine) newestWAL(ctx context.Context, info StanzaInfo) (time.Time, string, error) {
	if len(info.Archive) == 0 || info.Archive[len(info.Archive)-1].Max == "" {
		return time.Time{}, "", fmt.Errorf("pitr: the repository holds no WAL for stanza %s: is archive_command set?", e.cfg.Stanza)
	}
	a := info.Archive[len(info.Archive)-1]
	if len(a.Max) < 16 {
		return time.Time{}, "", fmt.Errorf("pitr: pgbackrest info: odd WAL segment name %q", a.Max)
	}
	entries, err := e.repoList(ctx, path.Join("archive", e.cfg.Stanza, a.ID, a.Max[:16]))
	if err != nil {
		return time.Time{}, "", err
	}
	var newest int64
	for name, ent := range entries {
		if strings.HasPrefix(name, a.Max) && ent.Time > newest {
			newest = ent.Time
		}
	}
	if newest == 0 {
		return time.Time{}, "", fmt.Errorf("pitr: WAL segment %s is not in the repository", a.Max)
	}
	return time.Unix(newest, 0).UTC(), a.Max, nil
}

// Restore restores the repository to o.At into a new data directory, starts it, waits for
// recovery to reach the moment and promote, and runs the serving check. Bad input (no moment,
// a moment outside what the repository holds, a directory in use) fails before anything is
// written.
func (e *Engine) Restore(ctx context.Context, o RestoreOptions) (*RestoreResult, error) {
	if o.DataDir == "" {
		return nil, errors.New("pitr: no data directory to restore into")
	}
	if ents, err := os.ReadDir(o.DataDir); err == nil && len(ents) > 0 {
		return nil, fmt.Errorf("pitr: %s is not empty: a restore to a moment goes into a new data directory", o.DataDir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("pitr: %w", err)
	}
	if !pgcluster.OwnerCanReach(o.DataDir) {
		return nil, fmt.Errorf("pitr: %s is out of reach of the user PostgreSQL runs as (a parent directory is private)", o.DataDir)
	}
	backup, err := e.CheckTarget(ctx, o.At)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Target: o.At.UTC(), Backup: backup}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("pitr: %w", err)
	}
	if err := pgcluster.GiveToOwner(o.DataDir); err != nil {
		return nil, fmt.Errorf("pitr: %w", err)
	}
	start := time.Now()
	// PostgreSQL reads the target as a timestamptz; UTC with microseconds keeps it exact.
	target := o.At.UTC().Format("2006-01-02 15:04:05.000000") + "+00"
	if _, err := e.run(ctx, "restore", "--pg1-path="+o.DataDir, "--type=time", "--target="+target,
		"--target-action=promote", "--archive-mode=off"); err != nil {
		return nil, err
	}
	res.RestoreSeconds = time.Since(start).Seconds()

	start = time.Now()
	c, err := pgcluster.StartCluster(ctx, o.DataDir, pgcluster.ClusterOptions{Password: o.Password})
	if err != nil {
		return res, fmt.Errorf("pitr: start the restored server: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			_ = c.Stop()
		}
	}()
	timeout := o.RecoveryTimeout
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	conn, err := waitPromoted(ctx, c, timeout)
	if err != nil {
		return res, err
	}
	var last *time.Time
	err = conn.QueryRow(ctx, `SELECT pg_last_xact_replay_timestamp()`).Scan(&last)
	_ = conn.Close(ctx)
	if err != nil {
		return res, fmt.Errorf("pitr: last replayed transaction: %w", err)
	}
	if last != nil {
		res.LastTransaction = last.UTC()
	}
	res.RecoverySeconds = time.Since(start).Seconds()
	if o.RuntimeURL != "" {
		runtime, err1 := pointAt(o.RuntimeURL, c.Port)
		treasury, err2 := pointAt(o.TreasuryURL, c.Port)
		if err := errors.Join(err1, err2); err != nil {
			return res, err
		}
		rep, err := db.ServingCheck(ctx, runtime, treasury)
		res.Serving = rep
		if err != nil {
			return res, fmt.Errorf("pitr: the restored server does not serve: %w", err)
		}
	}
	if o.KeepRunning {
		keep, res.Cluster = true, c
	}
	return res, nil
}

// waitPromoted waits until the restored server has replayed to the target and promoted.
func waitPromoted(ctx context.Context, c *pgcluster.Cluster, timeout time.Duration) (*pgx.Conn, error) {
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-c.Exited():
			return nil, fmt.Errorf("pitr: the restored server stopped during recovery: %s", c.LastLog(5))
		case <-ctx.Done():
			return nil, ctx.Err()
		default:
		}
		conn, err := pgx.Connect(ctx, c.URL("postgres"))
		if err == nil {
			var inRecovery bool
			if err = conn.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&inRecovery); err == nil && !inRecovery {
				return conn, nil
			}
			_ = conn.Close(ctx)
		}
		lastErr = err
		time.Sleep(200 * time.Millisecond)
	}
	return nil, fmt.Errorf("pitr: the restored server did not finish recovery within %s (%v): %s", timeout, lastErr, c.LastLog(5))
}

// pointAt is rawURL with its host and port replaced by the restored server's.
func pointAt(rawURL string, port int) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("pitr: database URL: %w", err)
	}
	u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	q := u.Query()
	q.Del("host")
	u.RawQuery = q.Encode()
	return u.String(), nil
}
