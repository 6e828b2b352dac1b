package backup

import (
	"bytes"
	"image/png"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gonum.org/v1/plot"
)

// The chart of a year of quarterly drills: restores of seconds, one over a 30-minute target,
// one failed. RTO_CHART_OUT=path writes the PNG for a person to look at.
func TestRTOChart(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	pts := []RTOPoint{
		{At: t0, RTOSeconds: 4},
		{At: t0.AddDate(0, 3, 0), RTOSeconds: 11},
		{At: t0.AddDate(0, 6, 0), RTOSeconds: 2400},
		{At: t0.AddDate(0, 9, 0), Failed: true},
		{At: t0.AddDate(1, 0, 0), RTOSeconds: 7},
	}
	b, err := RTOChart(pts, 30*time.Minute)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 100)
	if out := os.Getenv("RTO_CHART_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, b, 0o644))
	}
	// One drill, or none within the target, still draws.
	_, err = RTOChart(pts[:1], 30*time.Minute)
	require.NoError(t, err)
	_, err = RTOChart([]RTOPoint{{At: t0, Failed: true}}, 30*time.Minute)
	require.NoError(t, err)

	require.Equal(t, []string{"2s", "5s", "10s", "30s", "1min", "2min", "5min", "10min", "30min"}, tickLabels(durationTicks{}.Ticks(1.5, 2000)))
}

func tickLabels(ts []plot.Tick) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Label)
	}
	return out
}
