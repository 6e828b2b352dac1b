package backup

import (
	"bytes"
	"fmt"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// RTOPoint is one drill on the RTO chart.
type RTOPoint struct {
	At         time.Time
	RTOSeconds float64
}

// RTOChart draws the RTO of past drills (oldest to newest) against the target as a PNG.
func RTOChart(points []RTOPoint, target time.Duration) ([]byte, error) {
	p := plot.New()
	p.Title.Text = "Restore time (RTO) across drills"
	p.X.Label.Text = "drill"
	p.Y.Label.Text = "seconds"
	xy := make(plotter.XYs, len(points))
	for i, pt := range points {
		xy[i].X, xy[i].Y = float64(i+1), pt.RTOSeconds
	}
	line, dots, err := plotter.NewLinePoints(xy)
	if err != nil {
		return nil, fmt.Errorf("RTO chart: %w", err)
	}
	p.Add(line, dots)
	p.Legend.Add("RTO", line)
	if target > 0 && len(points) > 0 {
		tl, err := plotter.NewLine(plotter.XYs{{X: 1, Y: target.Seconds()}, {X: float64(max(len(points), 2)), Y: target.Seconds()}})
		if err != nil {
			return nil, fmt.Errorf("RTO chart: %w", err)
		}
		tl.Dashes = []vg.Length{vg.Points(4), vg.Points(4)}
		p.Add(tl)
		p.Legend.Add("target", tl)
	}
	w, err := p.WriterTo(6*vg.Inch, 3*vg.Inch, "png")
	if err != nil {
		return nil, fmt.Errorf("RTO chart: %w", err)
	}
	var b bytes.Buffer
	if _, err := w.WriteTo(&b); err != nil {
		return nil, fmt.Errorf("RTO chart: %w", err)
	}
	return b.Bytes(), nil
}
