package main

import (
	"context"
	"errors"
	"fmt"
	"image/color"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/forecast"
	"github.com/creatorvault/orchestrator/workflows"
)

// forecastCommands are the operator commands of the forecast domain.
func (a *app) forecastCommands() []*cobra.Command {
	cmd := &cobra.Command{Use: "forecast", Short: "Revenue forecasts: refresh, show, backtest"}
	cmd.AddCommand(a.forecastRefreshCmd(), a.forecastShowCmd(), a.forecastBacktestCmd())
	return []*cobra.Command{cmd}
}

func parseDay(flag, v string) (time.Time, error) {
	if v == "" {
		return db.Day(time.Now()), nil
	}
	t, err := time.Parse(time.DateOnly, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("--%s must be a date such as 2026-11-25", flag)
	}
	return t, nil
}

func parseCreator(v string) (uuid.UUID, error) {
	id, err := uuid.Parse(v)
	if err != nil {
		return uuid.Nil, errors.New("--creator must be a creator id (a UUID)")
	}
	return id, nil
}

func (a *app) forecastRefreshCmd() *cobra.Command {
	var creator, asOf string
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Refresh the forecasts of every creator (or one, --creator) through the workflow, and wait",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			day, err := parseDay("as-of", asOf)
			if err != nil {
				return err
			}
			in := workflows.ForecastRefreshInput{AsOf: day, BatchSize: a.cfg.Forecast.BatchSize}
			id := "forecast-refresh-manual-" + day.Format(time.DateOnly)
			if creator != "" {
				c, err := parseCreator(creator)
				if err != nil {
					return err
				}
				in.Creators = []uuid.UUID{c}
				id = workflows.ForecastRefreshWorkflowID(c, day)
			}
			tc, err := a.temporalClient(ctx)
			if err != nil {
				return err
			}
			defer tc.Close()
			run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{
				ID: id, TaskQueue: workflows.ForecastTaskQueue,
				WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
			}, workflows.ForecastRefreshWorkflow, in)
			if err != nil {
				return fmt.Errorf("start the refresh: %w", err)
			}
			res, err := waitRefresh(ctx, tc, run, cmd.ErrOrStderr())
			if err != nil {
				return fmt.Errorf("refresh %s: %w", id, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "forecasts as of %s: %d stored, %d skipped (too little history) in %d batches (workflow %s)\n",
				res.AsOf.Format(time.DateOnly), res.Done, res.Skipped, res.Batches, id)
			return nil
		},
	}
	cmd.Flags().StringVar(&creator, "creator", "", "refresh only this creator")
	cmd.Flags().StringVar(&asOf, "as-of", "", "the forecasts' as-of date (default today, UTC)")
	return cmd
}

// waitRefresh waits for the refresh, showing its progress (from the progress query) until it
// ends. A run that continued as new is followed to its end.
func waitRefresh(ctx context.Context, tc client.Client, run client.WorkflowRun, out io.Writer) (workflows.ForecastRefreshResult, error) {
	bar := progressbar.NewOptions(-1, progressbar.OptionSetWriter(out), progressbar.OptionSetDescription("creators"),
		progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
	done := make(chan error, 1)
	var res workflows.ForecastRefreshResult
	go func() { done <- run.Get(ctx, &res) }()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			_ = bar.Finish()
			return res, err
		case <-tick.C:
			v, err := tc.QueryWorkflow(ctx, run.GetID(), "", workflows.ForecastProgressQuery)
			if err != nil {
				continue
			}
			var p workflows.ForecastRefreshResult
			if v.Get(&p) == nil {
				_ = bar.Set(p.Done + p.Skipped)
			}
		}
	}
}

func (a *app) forecastShowCmd() *cobra.Command {
	var creator string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a creator's latest stored forecast",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if creator == "" {
				return errors.New("--creator is required")
			}
			id, err := parseCreator(creator)
			if err != nil {
				return err
			}
			pool, err := a.openPool(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			fs, err := db.LatestForecasts(cmd.Context(), pool, id)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for i, f := range fs {
				if i > 0 {
					fmt.Fprintln(w)
				}
				fmt.Fprintf(w, "creator %s, %s (amounts in %s), as of %s, model %s, %d paths, %d days of history\n",
					f.CreatorID, f.Asset, f.Asset, f.AsOf.UTC().Format(time.DateOnly), f.ModelVersion, f.Paths, f.HistoryDays)
				fmt.Fprintf(w, "base revenue %s per 30 days, growth %+.1f%%/30d (±%.1f%% log), churn %.1f%%/30d, volatility %.4f/day (ν %.1f), %d active streams\n",
					units(f.BaseRevenue), 100*f.GrowthRate, 100*f.GrowthStdError, 100*f.ChurnRate, f.Volatility, f.VolatilityDF, f.StreamCount)
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
				fmt.Fprintf(tw, "days\tpredicted\tlower %.0f%%\tupper\t\n", 100*f.ConfidenceLevel)
				for _, p := range f.Predictions {
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t\n", p.PeriodDays, units(p.Predicted), units(p.Lower), units(p.Upper))
				}
				if err := tw.Flush(); err != nil {
					return err
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&creator, "creator", "", "the creator id")
	return cmd
}

// units renders stroops as whole units with two decimals (revenue per 30 days).
func units(stroops int64) string { return fmt.Sprintf("%.2f", float64(stroops)/1e7) }

func (a *app) forecastBacktestCmd() *cobra.Command {
	var creator, cutoffFlag, pngPath string
	var paths int
	cmd := &cobra.Command{
		Use:   "backtest",
		Short: "Forecast from an earlier cut-off and report interval coverage, MAPE and bias per horizon",
		Long: `For every creator (or one, --creator) and every asset they earned in with enough
history before the cut-off (default 90 days ago), forecast as of the cut-off and compare each
horizon with the revenue that actually came: the share inside the 95% interval (coverage),
the mean absolute percentage error and the bias (mean signed percentage error) of the point
forecast (the paths' median).
Rows per asset and over all. --png writes a reliability chart: for nominal central intervals
of 10% to 99%, the share of actual values inside them. Reads DATABASE_URL; nothing is stored.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			last := forecast.Horizons[len(forecast.Horizons)-1]
			cutoff := db.Day(time.Now()).AddDate(0, 0, -last)
			if cutoffFlag != "" {
				var err error
				if cutoff, err = parseDay("cutoff", cutoffFlag); err != nil {
					return err
				}
			}
			if cutoff.AddDate(0, 0, last).After(db.Day(time.Now())) {
				return fmt.Errorf("--cutoff must be at least %d days ago so the actual revenue is known", last)
			}
			var only []uuid.UUID
			if creator != "" {
				id, err := parseCreator(creator)
				if err != nil {
					return err
				}
				only = []uuid.UUID{id}
			}
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			total := len(only)
			if only == nil {
				if total, err = db.CountCreators(ctx, pool); err != nil {
					return err
				}
			}
			bar := progressbar.NewOptions(total, progressbar.OptionSetWriter(cmd.ErrOrStderr()),
				progressbar.OptionSetDescription("backtest"), progressbar.OptionShowCount(), progressbar.OptionClearOnFinish())
			if paths <= 0 {
				paths = a.cfg.Forecast.Paths
			}
			bt := newBacktest(cutoff, paths)
			if only != nil {
				if err := bt.run(ctx, pool, only); err != nil {
					return err
				}
			} else {
				after := uuid.Nil
				for {
					ids, err := db.CreatorIDsAfter(ctx, pool, after, 500)
					if err != nil {
						return err
					}
					if len(ids) == 0 {
						break
					}
					if err := bt.run(ctx, pool, ids); err != nil {
						return err
					}
					_ = bar.Add(len(ids))
					after = ids[len(ids)-1]
				}
			}
			_ = bar.Finish()
			bt.report(cmd.OutOrStdout())
			if pngPath != "" {
				if err := writeReliabilityChart(pngPath, bt.all(), cutoff); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "reliability chart: %s\n", pngPath)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&creator, "creator", "", "backtest only this creator")
	cmd.Flags().StringVar(&cutoffFlag, "cutoff", "", "the cut-off date (default 90 days ago, UTC)")
	cmd.Flags().IntVar(&paths, "paths", 0, "Monte Carlo paths (default FORECAST_PATHS)")
	cmd.Flags().StringVar(&pngPath, "png", "", "write a reliability chart (PNG) to this file")
	return cmd
}

// backtest scores, per asset, forecasts made at a cut-off against what came after it; the
// scoring itself is forecast.Backtest's.
type backtest struct {
	cutoff  time.Time
	paths   int
	byAsset map[string]*forecast.Backtest
	none    int // creators without revenue before the cut-off
}

func newBacktest(cutoff time.Time, paths int) *backtest {
	return &backtest{cutoff: cutoff, paths: paths, byAsset: map[string]*forecast.Backtest{}}
}

func (b *backtest) run(ctx context.Context, q db.Querier, ids []uuid.UUID) error {
	last := forecast.Horizons[len(forecast.Horizons)-1]
	before, err := db.CreatorHistories(ctx, q, ids, b.cutoff, forecast.HistoryDays)
	if err != nil {
		return err
	}
	after, err := db.CreatorHistories(ctx, q, ids, b.cutoff.AddDate(0, 0, last), last)
	if err != nil {
		return err
	}
	for i, h := range before {
		if len(h.Assets) == 0 {
			b.none++
			continue
		}
		for _, ah := range h.Assets {
			bt := b.byAsset[ah.Asset]
			if bt == nil {
				bt = forecast.NewBacktest(b.paths)
				b.byAsset[ah.Asset] = bt
			}
			future := make([]float64, last)
			if fh, ok := after[i].Asset(ah.Asset); ok {
				future = fh.Engine().Revenue
			}
			if err := bt.Add(ah.Asset, ah.Engine(), future, forecast.Seed(h.CreatorID, ah.Asset, b.cutoff)); err != nil {
				return err
			}
		}
	}
	return nil
}

// assets lists the assets backtested, in the engine's order.
func (b *backtest) assets() []string {
	out := make([]string, 0, len(b.byAsset))
	for asset := range b.byAsset {
		out = append(out, asset)
	}
	slices.SortFunc(out, func(x, y string) int {
		ix, iy := slices.Index(forecast.Assets, x), slices.Index(forecast.Assets, y)
		if ix != iy {
			return ix - iy
		}
		return strings.Compare(x, y)
	})
	return out
}

// all merges the assets' scores (coverage and percentage errors are unit-free).
func (b *backtest) all() *forecast.Backtest {
	out := forecast.NewBacktest(b.paths)
	for _, asset := range b.assets() {
		out.Merge(b.byAsset[asset])
	}
	return out
}

func (b *backtest) report(w io.Writer) {
	all := b.all()
	fmt.Fprintf(w, "backtest from cut-off %s (model %s): %d series forecast, %d skipped (too little history), %d creators without revenue\n",
		b.cutoff.Format(time.DateOnly), forecast.ModelVersion, all.Tested, all.Skipped, b.none)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "asset\thorizon\tn\tcoverage (95%% interval)\tMAPE\tbias\t\n")
	row := func(name string, bt *forecast.Backtest) {
		for _, s := range bt.Scores {
			fmt.Fprintf(tw, "%s\t%dd\t%d\t%.1f%%\t%.1f%%\t%+.1f%%\t\n", name, s.PeriodDays, s.N, 100*s.Coverage(), 100*s.MAPE(), 100*s.Bias())
		}
	}
	for _, asset := range b.assets() {
		row(asset, b.byAsset[asset])
	}
	if len(b.byAsset) > 1 {
		row("all", all)
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "coverage: share of actual 30-day revenue inside the interval; MAPE and bias: of the point forecast (median), over actual values above 0 (bias > 0: too high)")
}

// writeReliabilityChart draws, per horizon, the observed coverage of central intervals
// against their nominal level; a calibrated forecast lies on the diagonal.
func writeReliabilityChart(path string, bt *forecast.Backtest, cutoff time.Time) error {
	p := plot.New()
	p.Title.Text = "Forecast reliability, cut-off " + cutoff.Format(time.DateOnly) + " (" + forecast.ModelVersion + ")"
	p.X.Label.Text = "nominal coverage of the central interval"
	p.Y.Label.Text = "observed coverage"
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = 0, 1, 0, 1
	p.Add(plotter.NewGrid())
	diag, err := plotter.NewLine(plotter.XYs{{X: 0, Y: 0}, {X: 1, Y: 1}})
	if err != nil {
		return err
	}
	diag.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	diag.Color = color.Gray{Y: 120}
	p.Add(diag)
	p.Legend.Add("calibrated", diag)
	colors := []color.Color{color.RGBA{R: 20, G: 70, B: 180, A: 255}, color.RGBA{R: 200, G: 110, B: 20, A: 255}, color.RGBA{R: 30, G: 150, B: 70, A: 255}}
	for k, s := range bt.Scores {
		rel := s.Reliability(forecast.ReliabilityLevels)
		if rel == nil {
			continue
		}
		pts := make(plotter.XYs, len(rel))
		for i, v := range rel {
			pts[i] = plotter.XY{X: forecast.ReliabilityLevels[i], Y: v}
		}
		l, sc, err := plotter.NewLinePoints(pts)
		if err != nil {
			return err
		}
		l.Color, sc.Color = colors[k%len(colors)], colors[k%len(colors)]
		p.Add(l, sc)
		p.Legend.Add(fmt.Sprintf("%d days (n=%d)", s.PeriodDays, s.N), l, sc)
	}
	p.Legend.Top, p.Legend.Left = true, true
	return p.Save(6*vg.Inch, 6*vg.Inch, path)
}
