package backup

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	dto "github.com/prometheus/client_model/go"
)

// The metrics of backups and drills, served on the worker's /metrics and watched by the rules
// in deploy/prometheus/alerts.yml. Gauges hold the last known state (a worker seeds them from
// the catalog when it starts, so a restart does not look like a missing backup); counters
// count events since the process started.
var (
	metricLastSuccess = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_backup_last_success_timestamp_seconds",
		Help: "When the newest complete backup finished (Unix seconds).",
	})
	metricLastSize = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_backup_last_success_size_bytes",
		Help: "Stored (encrypted) size of the newest complete backup.",
	})
	metricLastDuration = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_backup_last_success_duration_seconds",
		Help: "How long the newest complete backup took.",
	})
	metricLastKind = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "orchestrator_backup_last_success_info",
		Help: "1 for the kind (nightly, manual) of the newest complete backup.",
	}, []string{"kind"})
	metricFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchestrator_backup_failures_total",
		Help: "Backup attempts that failed, by kind.",
	}, []string{"kind"})
	metricLastVerified = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_backup_last_verified_timestamp_seconds",
		Help: "When the newest backup a drill restored and verified was taken (Unix seconds).",
	})
	metricDrillRTO = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_drill_rto_seconds",
		Help: "Recovery time measured by the last drill.",
	})
	metricDrillTarget = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_drill_rto_target_seconds",
		Help: "Recovery time objective of the last drill.",
	})
	metricDrillLast = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_drill_last_timestamp_seconds",
		Help: "When the last drill finished (Unix seconds).",
	})
	metricDrillFailed = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_drill_last_failed",
		Help: "1 when the last drill failed (no restore, or the restored data did not verify), else 0.",
	})
	metricRTOBreaches = promauto.NewCounter(prometheus.CounterOpts{
		Name: "orchestrator_drill_rto_breaches_total",
		Help: "Drills whose recovery took longer than their target.",
	})
	metricDrillFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "orchestrator_drill_failures_total",
		Help: "Drills that failed.",
	})
	metricServingFailed = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_serving_check_last_failed",
		Help: "1 when the last serving check of a restored database failed, else 0.",
	})
	metricServingFailures = promauto.NewCounter(prometheus.CounterOpts{
		Name: "orchestrator_serving_check_failures_total",
		Help: "Serving checks of restored databases that failed.",
	})
	metricMismatches = promauto.NewCounter(prometheus.CounterOpts{
		Name: "orchestrator_fingerprint_mismatches_total",
		Help: "Restores whose data did not match the backup's fingerprint.",
	})
)

func init() {
	// Both kinds report 0 from the start, so that rate() and increase() see the first failure.
	for _, kind := range []string{"nightly", "manual"} {
		metricFailures.WithLabelValues(kind)
	}
}

// metricsMu makes the read-compare-set of the "newest" gauges atomic.
var metricsMu sync.Mutex

func unixSeconds(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// ObserveBackup records a complete backup of a kind (nightly, manual). An older backup than
// the one already recorded (a worker seeding from the catalog) changes nothing.
func ObserveBackup(kind string, startedAt, finishedAt time.Time, storedBytes int64) {
	metricsMu.Lock()
	defer metricsMu.Unlock()
	if unixSeconds(finishedAt) < getGauge(metricLastSuccess) {
		return
	}
	metricLastSuccess.Set(unixSeconds(finishedAt))
	metricLastSize.Set(float64(storedBytes))
	metricLastDuration.Set(finishedAt.Sub(startedAt).Seconds())
	metricLastKind.Reset()
	metricLastKind.WithLabelValues(kind).Set(1)
}

// ObserveBackupFailure counts a failed backup attempt.
func ObserveBackupFailure(kind string) { metricFailures.WithLabelValues(kind).Inc() }

// ObserveVerified records that a drill verified the backup taken at startedAt.
func ObserveVerified(startedAt time.Time) {
	metricsMu.Lock()
	defer metricsMu.Unlock()
	if v := unixSeconds(startedAt); v > getGauge(metricLastVerified) {
		metricLastVerified.Set(v)
	}
}

// DrillObservation is what a finished drill reports to the metrics.
type DrillObservation struct {
	FinishedAt time.Time
	RTO        time.Duration
	Target     time.Duration
	// Failed means the drill did not restore a verified database.
	Failed bool
	// Breached means the drill's outcome was a breach of the target (its RTO, in whole
	// seconds, may not show it for a target under a second).
	Breached bool
	// Mismatch means the restored data did not match the fingerprint.
	Mismatch bool
	// FromCatalog is a drill read back from the catalog when a worker starts: the gauges
	// are set, nothing is counted again.
	FromCatalog bool
}

// ObserveDrill records a finished drill: its RTO against the target, a breach, a failure.
func ObserveDrill(d DrillObservation) {
	metricDrillLast.Set(unixSeconds(d.FinishedAt))
	metricDrillTarget.Set(d.Target.Seconds())
	count := func(c prometheus.Counter) {
		if !d.FromCatalog {
			c.Inc()
		}
	}
	if d.Failed {
		metricDrillFailed.Set(1)
		count(metricDrillFailures)
	} else {
		metricDrillFailed.Set(0)
		metricDrillRTO.Set(d.RTO.Seconds())
		if d.Breached || (d.Target > 0 && d.RTO > d.Target) {
			count(metricRTOBreaches)
		}
	}
	if d.Mismatch && !d.FromCatalog {
		ObserveFingerprintMismatch()
	}
}

// ObserveServingCheck records the outcome of a serving check of a restored database (the
// application's read paths and a rolled-back treasury write, as the runtime roles).
func ObserveServingCheck(ok bool) {
	if ok {
		metricServingFailed.Set(0)
		return
	}
	metricServingFailed.Set(1)
	metricServingFailures.Inc()
}

// ObserveFingerprintMismatch counts a restore whose data did not match its fingerprint.
func ObserveFingerprintMismatch() { metricMismatches.Inc() }

func getGauge(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil || m.Gauge == nil {
		return 0
	}
	return m.Gauge.GetValue()
}
