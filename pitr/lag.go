package pitr

import (
	"context"
	"fmt"
	"time"
)

// Commit is a committed write: its time and the WAL segment holding its commit record, both
// read from the server after the commit returned (so its commit record is before Time and in
// Segment or an earlier one).
type Commit struct {
	Time    time.Time
	Segment string
}

// CommitPoint reads the server's clock and current WAL segment; called right after a commit,
// it is that commit's Commit.
func CommitPoint(ctx context.Context, q Querier) (Commit, error) {
	var c Commit
	if err := q.QueryRow(ctx, `SELECT clock_timestamp(), pg_walfile_name(pg_current_wal_insert_lsn())`).Scan(&c.Time, &c.Segment); err != nil {
		return Commit{}, fmt.Errorf("pitr: read the server's WAL position: %w", err)
	}
	c.Time = c.Time.UTC()
	return c, nil
}

// Lag is how long a commit took to reach the repository: the archive lag, the data a disaster
// at that moment would have lost (the RPO).
type Lag struct {
	// Archived is false when the commit's segment was not archived within the wait.
	Archived bool
	// Seconds runs from the commit to pg_stat_archiver's last_archived_time once the segment is
	// archived (the time of the newest archive seen, so up to one poll late), or to the end of
	// the wait.
	Seconds float64
	// LastArchived is the newest archived segment seen; LastFailed the newest failure, if any.
	LastArchived, LastFailed string
}

// WaitArchived waits, polling pg_stat_archiver every poll, until c.Segment is archived (WAL is
// never forced: the lag is what archive_timeout and the write rate give), at most max.
// progress, if not nil, is called after each poll.
func WaitArchived(ctx context.Context, q Querier, c Commit, max, poll time.Duration, progress func(Lag)) (Lag, error) {
	if poll <= 0 {
		poll = time.Second
	}
	deadline := time.Now().Add(max)
	for {
		var last, failed *string
		var lastAt *time.Time
		var now time.Time
		if err := q.QueryRow(ctx, `SELECT last_archived_wal, last_archived_time, last_failed_wal, clock_timestamp() FROM pg_stat_archiver`).
			Scan(&last, &lastAt, &failed, &now); err != nil {
			return Lag{}, fmt.Errorf("pitr: read pg_stat_archiver: %w", err)
		}
		var l Lag
		if last != nil {
			l.LastArchived = *last
		}
		if failed != nil {
			l.LastFailed = *failed
		}
		// Segment names are fixed-width hex (timeline, log, segment): on one timeline they
		// sort as the WAL does. History and partial files are longer and not compared.
		if len(l.LastArchived) == len(c.Segment) && l.LastArchived >= c.Segment && lastAt != nil {
			l.Archived = true
			l.Seconds = max0(lastAt.Sub(c.Time).Seconds())
			return l, nil
		}
		l.Seconds = max0(now.Sub(c.Time).Seconds())
		if progress != nil {
			progress(l)
		}
		if !time.Now().Before(deadline) {
			return l, nil
		}
		select {
		case <-ctx.Done():
			return l, ctx.Err()
		case <-time.After(poll):
		}
	}
}

func max0(v float64) float64 {
	if v < 0 {
		return 0
	}
	return v
}
