package backup

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
)

// promtool is Debian's prometheus package's (.ci/run installs it). The rules are checked and
// their unit tests run; a machine without promtool fails here, loudly, rather than skipping.
func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	require.NoError(t, err, "promtool is needed to check deploy/prometheus/alerts.yml: apt-get install prometheus (as .ci/run does)")
	return bin
}

func TestAlertRules(t *testing.T) {
	bin := promtool(t)
	dir := filepath.Join("..", "deploy", "prometheus")
	for _, args := range [][]string{{"check", "rules", "alerts.yml"}, {"test", "rules", "alerts_test.yml"}} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "promtool %v:\n%s", args, out)
	}
}

// Every metric the rules use is one this package exports, or package pitr's (orchestrator_pitr_*,
// checked there): a renamed metric would silence an alert without any error from promtool.
func TestAlertRulesUseExportedMetrics(t *testing.T) {
	now := time.Now()
	ObserveBackup("nightly", now.Add(-time.Minute), now, 1)
	ObserveVerified(now.Add(-time.Minute))
	ObserveDrill(DrillObservation{FinishedAt: now, RTO: time.Second, Target: time.Minute})
	ObserveServingCheck(true)
	families, err := prometheus.DefaultGatherer.Gather()
	require.NoError(t, err)
	exported := map[string]bool{}
	for _, f := range families {
		exported[f.GetName()] = true
	}
	rules, err := os.ReadFile(filepath.Join("..", "deploy", "prometheus", "alerts.yml"))
	require.NoError(t, err)
	used := regexp.MustCompile(`orchestrator_[a-z_]+`).FindAllString(string(rules), -1)
	require.NotEmpty(t, used)
	for _, name := range used {
		if strings.HasPrefix(name, "orchestrator_pitr_") {
			continue // package pitr's, checked by its TestArchiveMetrics
		}
		require.True(t, exported[name], "alerts.yml uses %s, which backup/metrics.go does not export", name)
	}
}

func TestMetricsKeepTheNewest(t *testing.T) {
	now := time.Now().Add(time.Hour) // later than anything other tests observed
	ObserveBackup("manual", now.Add(-2*time.Minute), now, 42)
	ObserveBackup("nightly", now.Add(-48*time.Hour), now.Add(-47*time.Hour), 7) // seeding an older one
	require.InDelta(t, unixSeconds(now), getGauge(metricLastSuccess), 1e-3)
	require.EqualValues(t, 42, getGauge(metricLastSize))
	require.InDelta(t, 120, getGauge(metricLastDuration), 1e-6)

	before := counterValue(t, metricRTOBreaches)
	ObserveDrill(DrillObservation{FinishedAt: now, RTO: 40 * time.Minute, Target: 30 * time.Minute})
	require.Equal(t, before+1, counterValue(t, metricRTOBreaches))
	require.Zero(t, getGauge(metricDrillFailed))
	ObserveDrill(DrillObservation{FinishedAt: now, Target: 30 * time.Minute, Failed: true, Mismatch: true})
	require.EqualValues(t, 1, getGauge(metricDrillFailed))
	ObserveServingCheck(false)
	require.EqualValues(t, 1, getGauge(metricServingFailed))
	ObserveServingCheck(true)
	require.Zero(t, getGauge(metricServingFailed))
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	ch := make(chan prometheus.Metric, 1)
	c.Collect(ch)
	var m dto.Metric
	require.NoError(t, (<-ch).Write(&m))
	return m.GetCounter().GetValue()
}
