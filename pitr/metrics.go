package pitr

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The metrics of point-in-time recovery, served on the process's /metrics (the worker's
// METRICS_ADDR, dev's API) beside the logical backups' and watched by the rules in
// deploy/prometheus/alerts.yml.
//
// The archive metrics are read from the server's pg_stat_archiver when Prometheus scrapes
// (WatchArchive), so they are as fresh as the scrape; the physical backup metrics from
// pgBackRest's info (ObserveInfo), after every backup and every few minutes (WatchInfo).
var (
	metricBackupLast = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "orchestrator_pitr_backup_last_success_timestamp_seconds",
		Help: "When the newest physical backup of a kind (full, diff) in the pgBackRest repository ended (Unix seconds); 0 when it holds none.",
	}, []string{"kind"})
	metricBackupFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchestrator_pitr_backup_failures_total",
		Help: "Physical backup attempts (pgbackrest backup) that failed, by kind.",
	}, []string{"kind"})
	metricInfoLast = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_pitr_info_last_success_timestamp_seconds",
		Help: "When pgBackRest's info was last read from the repository (Unix seconds).",
	})

	descArchiving = prometheus.NewDesc("orchestrator_pitr_archiving",
		"1 when the watched server archives its WAL (archive_mode is not off), else 0.", nil, nil)
	descArchiveLag = prometheus.NewDesc("orchestrator_pitr_archive_lag_seconds",
		"Seconds since the last WAL segment was archived, while WAL written since waits to be archived; 0 when every written segment is in the repository.", nil, nil)
	descArchiveLast = prometheus.NewDesc("orchestrator_pitr_archive_last_success_timestamp_seconds",
		"When the server last archived a WAL file (pg_stat_archiver.last_archived_time, Unix seconds).", nil, nil)
	descArchiveLastFailure = prometheus.NewDesc("orchestrator_pitr_archive_last_failure_timestamp_seconds",
		"When archive_command last failed (pg_stat_archiver.last_failed_time, Unix seconds); 0 if never.", nil, nil)
	descArchived = prometheus.NewDesc("orchestrator_pitr_archived_files_total",
		"WAL files archived (pg_stat_archiver.archived_count, since the server's statistics were reset).", nil, nil)
	descArchiveFailures = prometheus.NewDesc("orchestrator_pitr_archive_failures_total",
		"Failed archive_command runs (pg_stat_archiver.failed_count, since the server's statistics were reset).", nil, nil)
	descArchiverUp = prometheus.NewDesc("orchestrator_pitr_archiver_up",
		"1 when the last scrape read pg_stat_archiver, else 0.", nil, nil)
)

func init() {
	// Both kinds report from the start, so that increase() sees the first failure.
	for _, k := range []Kind{Full, Diff} {
		metricBackupFailures.WithLabelValues(string(k))
	}
	prometheus.MustRegister(archiver)
}

// Querier is what reads pg_stat_archiver: a pool or a connection, as any role (the view and
// the functions it uses are public).
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// archiveWatch is the collector of the archive metrics: it asks the watched server at each
// scrape. Without a server it reports nothing.
type archiveWatch struct {
	mu sync.Mutex
	q  Querier
}

var archiver = &archiveWatch{}

// WatchArchive makes /metrics report the WAL archiver of q's server (which must be the
// cluster pgBackRest archives). stop ends it.
func WatchArchive(q Querier) (stop func()) {
	archiver.mu.Lock()
	archiver.q = q
	archiver.mu.Unlock()
	return func() {
		archiver.mu.Lock()
		if archiver.q == q {
			archiver.q = nil
		}
		archiver.mu.Unlock()
	}
}

func (w *archiveWatch) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descArchiving, descArchiveLag, descArchiveLast, descArchiveLastFailure, descArchived, descArchiveFailures, descArchiverUp} {
		ch <- d
	}
}

// archiverQuery reads the archiver's statistics with the server's clock. The lag is 0 when
// the newest file archived is (or follows) the segment being written: after a switch nothing
// waits. Otherwise it is the time since the last archived file (or since the server started,
// if it has archived none), which is what a disaster now would lose at most. A .backup file's
// name starts with its segment's, hence left(…, 24).
const archiverQuery = `
SELECT current_setting('archive_mode') <> 'off',
       a.archived_count, a.failed_count,
       coalesce(extract(epoch FROM a.last_archived_time), 0)::float8,
       coalesce(extract(epoch FROM a.last_failed_time), 0)::float8,
       CASE WHEN pg_is_in_recovery() THEN 0
            WHEN a.last_archived_wal IS NOT NULL
             AND left(a.last_archived_wal, 24) COLLATE "C" >= pg_walfile_name(pg_current_wal_lsn()) THEN 0
            ELSE extract(epoch FROM now() - coalesce(a.last_archived_time, pg_postmaster_start_time()))::float8
       END
FROM pg_stat_archiver a`

func (w *archiveWatch) Collect(ch chan<- prometheus.Metric) {
	w.mu.Lock()
	q := w.q
	w.mu.Unlock()
	if q == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var (
		on                     bool
		archived, failed       int64
		last, lastFailure, lag float64
	)
	if err := q.QueryRow(ctx, archiverQuery).Scan(&on, &archived, &failed, &last, &lastFailure, &lag); err != nil {
		ch <- prometheus.MustNewConstMetric(descArchiverUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descArchiverUp, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(descArchiving, prometheus.GaugeValue, boolFloat(on))
	ch <- prometheus.MustNewConstMetric(descArchived, prometheus.CounterValue, float64(archived))
	ch <- prometheus.MustNewConstMetric(descArchiveFailures, prometheus.CounterValue, float64(failed))
	ch <- prometheus.MustNewConstMetric(descArchiveLastFailure, prometheus.GaugeValue, lastFailure)
	if on {
		ch <- prometheus.MustNewConstMetric(descArchiveLast, prometheus.GaugeValue, last)
		ch <- prometheus.MustNewConstMetric(descArchiveLag, prometheus.GaugeValue, lag)
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// ObserveInfo sets the physical backup metrics from the repository's catalog: per kind, when
// the newest backup that did not fail ended (0 when there is none, which the rules treat as
// long ago).
func ObserveInfo(info StanzaInfo) {
	newest := map[Kind]int64{Full: 0, Diff: 0}
	for _, b := range info.Backup {
		if b.Error {
			continue
		}
		if _, tracked := newest[b.Type]; tracked && b.Timestamp.Stop > newest[b.Type] {
			newest[b.Type] = b.Timestamp.Stop
		}
	}
	for k, stop := range newest {
		metricBackupLast.WithLabelValues(string(k)).Set(float64(stop))
	}
	metricInfoLast.Set(float64(time.Now().UnixNano()) / 1e9)
}

// ObserveBackupFailure counts a failed physical backup of kind.
func ObserveBackupFailure(kind Kind) { metricBackupFailures.WithLabelValues(string(kind)).Inc() }

// WatchInfo reads the repository's catalog now and then every interval until ctx ends,
// setting the physical backup metrics (so that a restarted worker reports the backups it did
// not make). A failed read is logged and tried again at the next interval.
func (e *Engine) WatchInfo(ctx context.Context, every time.Duration, logger *slog.Logger) {
	for {
		info, err := e.Info(ctx)
		switch {
		case err == nil:
			ObserveInfo(info)
		case ctx.Err() == nil:
			logger.Warn("pitr: cannot read the repository's catalog for the metrics", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(every):
		}
	}
}
