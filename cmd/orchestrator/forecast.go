package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/activities"
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
			f, err := db.LatestForecast(cmd.Context(), pool, id)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "creator %s, as of %s, model %s, %d paths, %d days of history\n",
				f.CreatorID, f.AsOf.UTC().Format(time.DateOnly), f.ModelVersion, f.Paths, f.HistoryDays)
			fmt.Fprintf(w, "base revenue %s per 30 days, growth %+.1f%%/30d, churn %.1f%%/30d, volatility %.3f, %d active streams\n",
				units(f.BaseRevenue), 100*f.GrowthRate, 100*f.ChurnRate, f.Volatility, f.StreamCount)
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprintf(tw, "days\tpredicted\tlower %.0f%%\tupper\t\n", 100*f.ConfidenceLevel)
			for _, p := range f.Predictions {
				fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t\n", p.PeriodDays, units(p.Predicted), units(p.Lower), units(p.Upper))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVar(&creator, "creator", "", "the creator id")
	return cmd
}

// units renders stroops as whole units with two decimals (revenue per 30 days).
func units(stroops int64) string { return fmt.Sprintf("%.2f", float64(stroops)/1e7) }

func (a *app) forecastBacktestCmd() *cobra.Command {
	var creator, cutoffFlag string
	var paths int
	cmd := &cobra.Command{
		Use:   "backtest",
		Short: "Forecast from an earlier cut-off and report interval coverage and error per horizon",
		Long: `For every creator (or one, --creator) with enough history before the cut-off (default
90 days ago), forecast as of the cut-off and compare each horizon with the revenue that
actually came: the share inside the 95% interval (coverage) and the errors of the mean.
Nothing is stored.`,
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
			return nil
		},
	}
	cmd.Flags().StringVar(&creator, "creator", "", "backtest only this creator")
	cmd.Flags().StringVar(&cutoffFlag, "cutoff", "", "the cut-off date (default 90 days ago, UTC)")
	cmd.Flags().IntVar(&paths, "paths", 0, "Monte Carlo paths (default FORECAST_PATHS)")
	return cmd
}

// backtest scores forecasts made at a cut-off against what came after it.
type backtest struct {
	cutoff  time.Time
	paths   int
	scores  []forecast.Score
	tested  int
	skipped int
}

func newBacktest(cutoff time.Time, paths int) *backtest {
	b := &backtest{cutoff: cutoff, paths: paths}
	for _, h := range forecast.Horizons {
		b.scores = append(b.scores, forecast.Score{PeriodDays: h})
	}
	return b
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
		in := activities.EngineHistory(h)
		res, err := forecast.Forecast(in, forecast.Seed(h.CreatorID, b.cutoff), forecast.Options{Paths: b.paths})
		if activities.IsForecastRefusal(err) {
			b.skipped++
			continue
		}
		if err != nil {
			return err
		}
		b.tested++
		full := append(in.Revenue, activities.EngineHistory(after[i]).Revenue...)
		for k, p := range res.Predictions {
			if actual, ok := forecast.Actual(full, len(in.Revenue), p.PeriodDays); ok {
				b.scores[k].Add(p, actual)
			}
		}
	}
	return nil
}

func (b *backtest) report(w io.Writer) {
	fmt.Fprintf(w, "backtest from cut-off %s: %d creators forecast, %d skipped (too little history)\n",
		b.cutoff.Format(time.DateOnly), b.tested, b.skipped)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "horizon\tn\tcoverage (95%% interval)\tMAE\tRMSE\tMAPE\t\n")
	for _, s := range b.scores {
		fmt.Fprintf(tw, "%dd\t%d\t%.1f%%\t%.2f\t%.2f\t%.1f%%\t\n", s.PeriodDays, s.N, 100*s.Coverage(), s.MAE()/1e7, s.RMSE()/1e7, 100*s.MAPE())
	}
	_ = tw.Flush()
	fmt.Fprintln(w, "amounts are units per 30 days (stroops / 10^7); coverage is the share of actual revenue inside the interval")
}
