package pitr_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/pitr"
	"github.com/creatorvault/orchestrator/pitr/pitrtest"
)

// scrape gathers the process's metrics (what /metrics serves) as name{k="v"} → value.
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	families, err := prometheus.DefaultGatherer.Gather()
	require.NoError(t, err)
	out := map[string]float64{}
	for _, f := range families {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			for _, l := range m.GetLabel() {
				key += "{" + l.GetName() + "=" + l.GetValue() + "}"
			}
			switch {
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			}
		}
	}
	return out
}

// TestArchiveMetrics: against a real cluster archiving with pgBackRest into the TLS store, the
// metrics read as the runtime role show the archiver's real state (a recent archived segment,
// a small lag, the full backup's end from pgBackRest's info), every metric the alert rules
// use is exported, and when archive_command fails (the repository's bucket is wrong) the
// failures count up, the last failure is newer than the last success and the lag grows, until
// archiving is repaired.
func TestArchiveMetrics(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	f := pitrtest.Start(t, ctx)
	started := time.Now()

	app, err := db.Open(ctx, f.Roles.App)
	require.NoError(t, err)
	defer app.Close()
	stop := pitr.WatchArchive(app)
	defer stop()
	admin, err := db.Open(ctx, f.AdminURL)
	require.NoError(t, err)
	defer admin.Close()

	// A row written and archived (check switches WAL and waits for the segment).
	_, err = admin.Exec(ctx, `INSERT INTO pitr_marks (n) VALUES (1)`)
	require.NoError(t, err)
	require.NoError(t, f.Engine.Check(ctx))
	info, err := f.Engine.Info(ctx)
	require.NoError(t, err)
	pitr.ObserveInfo(info)
	m := scrape(t)
	require.Equal(t, 1.0, m["orchestrator_pitr_archiver_up"])
	require.Equal(t, 1.0, m["orchestrator_pitr_archiving"])
	require.Positive(t, m["orchestrator_pitr_archived_files_total"])
	last := m["orchestrator_pitr_archive_last_success_timestamp_seconds"]
	require.InDelta(t, float64(time.Now().Unix()), last, time.Since(started).Seconds()+5, "the segment check archived")
	require.GreaterOrEqual(t, m["orchestrator_pitr_archive_lag_seconds"], 0.0)
	require.Less(t, m["orchestrator_pitr_archive_lag_seconds"], 90.0)
	full, ok := info.Oldest()
	require.True(t, ok)
	require.Equal(t, float64(full.Timestamp.Stop), m["orchestrator_pitr_backup_last_success_timestamp_seconds{kind=full}"])
	require.Zero(t, m["orchestrator_pitr_backup_last_success_timestamp_seconds{kind=diff}"], "no diff yet")
	require.Contains(t, m, "orchestrator_pitr_backup_failures_total{kind=full}")

	// The alert rules use only metrics this package exports.
	rules, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "alerts.yml"))
	require.NoError(t, err)
	used := regexp.MustCompile(`orchestrator_pitr_[a-z_]+`).FindAllString(string(rules), -1)
	require.NotEmpty(t, used)
	names := map[string]bool{}
	for k := range m {
		names[regexp.MustCompile(`\{.*`).ReplaceAllString(k, "")] = true
	}
	for _, name := range used {
		require.True(t, names[name], "alerts.yml uses %s, which pitr/metrics.go does not export", name)
	}

	// archive_command fails: pgBackRest is pointed at a bucket that does not exist.
	failedBefore := m["orchestrator_pitr_archive_failures_total"]
	broken := f.Engine.Config()
	broken.S3Bucket = "no-such-bucket"
	eBroken, err := pitr.New(broken)
	require.NoError(t, err)
	require.NoError(t, eBroken.WriteConfig())
	writeAndSwitch := func(n int) {
		_, err := admin.Exec(ctx, `INSERT INTO pitr_marks (n) VALUES ($1)`, n)
		require.NoError(t, err)
		_, err = admin.Exec(ctx, `SELECT pg_switch_wal()`)
		require.NoError(t, err)
	}
	writeAndSwitch(2)
	require.Eventually(t, func() bool {
		m = scrape(t)
		return m["orchestrator_pitr_archive_failures_total"] > failedBefore
	}, time.Minute, 200*time.Millisecond, "failures count up")
	require.Greater(t, m["orchestrator_pitr_archive_last_failure_timestamp_seconds"], m["orchestrator_pitr_archive_last_success_timestamp_seconds"])
	lag := m["orchestrator_pitr_archive_lag_seconds"]
	require.Positive(t, lag, "WAL waits")
	time.Sleep(1100 * time.Millisecond)
	require.Greater(t, scrape(t)["orchestrator_pitr_archive_lag_seconds"], lag, "the lag grows while archiving fails")

	// Repaired: the waiting segment and the next are archived, the lag is small again.
	require.NoError(t, f.Engine.WriteConfig())
	writeAndSwitch(3)
	require.Eventually(t, func() bool {
		m = scrape(t)
		return m["orchestrator_pitr_archive_last_success_timestamp_seconds"] > m["orchestrator_pitr_archive_last_failure_timestamp_seconds"]
	}, 90*time.Second, 200*time.Millisecond, "archiving recovers")
	require.Less(t, m["orchestrator_pitr_archive_lag_seconds"], 90.0)

	// Without a watched server the archive metrics are not reported.
	stop()
	_, ok = scrape(t)["orchestrator_pitr_archive_lag_seconds"]
	require.False(t, ok)
}
