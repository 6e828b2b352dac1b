package backup

import (
	"bytes"
	"image/png"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestRTOChart(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	b, err := RTOChart([]RTOPoint{{t0, 300}, {t0.AddDate(0, 3, 0), 900}, {t0.AddDate(0, 6, 0), 2100}}, 30*time.Minute)
	require.NoError(t, err)
	img, err := png.Decode(bytes.NewReader(b))
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 100)
}
