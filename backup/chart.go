package backup

import (
	"bytes"
	"fmt"
	"image/color"
	"math"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// RTOPoint is one drill on the RTO chart.
type RTOPoint struct {
	At         time.Time
	RTOSeconds float64
	// Failed marks a drill that did not restore a verified database.
	Failed bool
}

var (
	chartGreen = color.RGBA{R: 0x1b, G: 0x7f, B: 0x3b, A: 0xff}
	chartRed   = color.RGBA{R: 0xc6, G: 0x28, B: 0x28, A: 0xff}
	chartGrey  = color.RGBA{R: 0x55, G: 0x55, B: 0x55, A: 0xff}
)

// RTOChart draws the RTO of past drills (oldest to newest) against the target as a PNG:
// dates on the x-axis; a log scale, so that a restore of seconds and a target of half an hour
// are both readable; drills over the target and failed drills marked in red (a failed drill,
// which has no RTO, sits on the bottom edge); the legend in a column of its own, off the data.
func RTOChart(points []RTOPoint, target time.Duration) ([]byte, error) {
	p := plot.New()
	p.Title.Text = "Restore time (RTO) of fire drills"
	p.Y.Label.Text = "RTO (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = durationTicks{}
	p.X.Tick.Marker = plot.TimeTicks{Format: "2006-01-02"}
	p.X.Label.Text = "drill date (UTC)"
	p.Add(plotter.NewGrid())

	lo, hi := target.Seconds(), target.Seconds()
	for _, pt := range points {
		if !pt.Failed && pt.RTOSeconds > 0 {
			lo, hi = math.Min(lo, pt.RTOSeconds), math.Max(hi, pt.RTOSeconds)
		}
	}
	if lo <= 0 {
		lo, hi = 1, math.Max(hi, 60)
	}
	p.Y.Min, p.Y.Max = math.Max(lo/3, 0.5), hi*3
	floor := p.Y.Min

	var ok, breached, failed, all plotter.XYs
	for _, pt := range points {
		xy := plotter.XY{X: float64(pt.At.Unix()), Y: math.Max(pt.RTOSeconds, floor)}
		switch {
		case pt.Failed:
			xy.Y = floor
			failed = append(failed, xy)
			continue
		case target > 0 && pt.RTOSeconds > target.Seconds():
			breached = append(breached, xy)
		default:
			ok = append(ok, xy)
		}
		all = append(all, xy)
	}
	legend := plot.NewLegend()
	if len(all) > 1 {
		line, err := plotter.NewLine(all)
		if err != nil {
			return nil, fmt.Errorf("RTO chart: %w", err)
		}
		line.Color = chartGrey
		p.Add(line)
	}
	marks := []struct {
		name  string
		xy    plotter.XYs
		shape draw.GlyphDrawer
		color color.Color
	}{
		{"within target", ok, draw.CircleGlyph{}, chartGreen},
		{"over target", breached, draw.PyramidGlyph{}, chartRed},
		{"failed drill", failed, draw.CrossGlyph{}, chartRed},
	}
	for _, m := range marks {
		if len(m.xy) == 0 {
			continue
		}
		s, err := plotter.NewScatter(m.xy)
		if err != nil {
			return nil, fmt.Errorf("RTO chart: %w", err)
		}
		s.GlyphStyle = draw.GlyphStyle{Shape: m.shape, Color: m.color, Radius: vg.Points(5)}
		p.Add(s)
		legend.Add(m.name, s)
	}
	if target > 0 && len(points) > 0 {
		x0, x1 := float64(points[0].At.Unix()), float64(points[len(points)-1].At.Unix())
		if x1 == x0 {
			x0, x1 = x0-86400, x1+86400
		}
		tl, err := plotter.NewLine(plotter.XYs{{X: x0, Y: target.Seconds()}, {X: x1, Y: target.Seconds()}})
		if err != nil {
			return nil, fmt.Errorf("RTO chart: %w", err)
		}
		tl.Color = chartRed
		tl.Dashes = []vg.Length{vg.Points(5), vg.Points(4)}
		p.Add(tl)
		legend.Add("target "+shortDuration(target.Seconds()), tl)
	}

	const width, height, legendWidth = 7 * vg.Inch, 3.5 * vg.Inch, 1.7 * vg.Inch
	img := vgimg.New(width, height)
	dc := draw.New(img)
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Top = true
	legend.Draw(draw.Crop(dc, width-legendWidth+vg.Points(8), 0, 0, -vg.Points(24)))
	var b bytes.Buffer
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(&b); err != nil {
		return nil, fmt.Errorf("RTO chart: %w", err)
	}
	return b.Bytes(), nil
}

// durationTicks labels a log-scaled axis of seconds at round durations.
type durationTicks struct{}

var roundDurations = []float64{1, 2, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 4 * 3600, 8 * 3600, 24 * 3600}

func (durationTicks) Ticks(min, max float64) []plot.Tick {
	var ticks []plot.Tick
	for _, v := range roundDurations {
		if v >= min && v <= max {
			ticks = append(ticks, plot.Tick{Value: v, Label: shortDuration(v)})
		}
	}
	return ticks
}

// shortDuration writes seconds as 1.5s, 45s, 2min, 30min, 2h.
func shortDuration(s float64) string {
	switch {
	case s < 10:
		return fmt.Sprintf("%gs", math.Round(s*10)/10)
	case s < 60:
		return fmt.Sprintf("%.0fs", s)
	case s < 2*3600:
		return fmt.Sprintf("%.0fmin", s/60)
	default:
		return fmt.Sprintf("%.1fh", s/3600)
	}
}
