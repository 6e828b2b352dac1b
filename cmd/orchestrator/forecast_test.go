package main

import (
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/demo"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workers"
	"github.com/creatorvault/orchestrator/workflows"
)

// TestForecastCommands: refresh one creator and all through the workflow (a worker runs in
// this process on the embedded server), show the stored forecast, backtest the demo.
func TestForecastCommands(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	pool, url := testharness.FreshDB(t)
	d, err := demo.Seed(ctx, pool, time.Now())
	require.NoError(t, err)
	tc := testharness.Temporal(t)
	require.NoError(t, workers.EnsureSearchAttributes(ctx, tc, "default"))
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- workers.Run(wctx, workers.Deps{Client: tc, Pool: pool, Config: cfg, Logger: testharness.Logger(t)}, []string{workflows.ForecastTaskQueue})
	}()
	defer func() { stop(); require.NoError(t, <-done) }()
	env := []string{"DATABASE_URL=" + url, "TEMPORAL_ADDRESS=" + testharness.TemporalAddr(t)}
	creator := d.Creators[0].ID.String()

	code, out, errOut := run(t, env, "forecast", "show", "--creator", creator)
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, errOut)
	require.Contains(t, errOut, "no forecast")
	_ = out

	code, out, errOut = run(t, env, "forecast", "refresh", "--creator", creator)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "1 stored, 0 skipped")

	code, out, errOut = run(t, env, "forecast", "show", "--creator", creator)
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "as of "+time.Now().UTC().Format(time.DateOnly))
	for _, h := range []string{"30", "60", "90"} {
		require.Regexp(t, `(?m)^\s*`+h+`\s+\d+\.\d\d\s+\d+\.\d\d\s+\d+\.\d\d`, out)
	}

	code, out, errOut = run(t, env, "forecast", "refresh")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "3 stored, 0 skipped")

	chart := filepath.Join(t.TempDir(), "reliability.png")
	code, out, errOut = run(t, env, "forecast", "backtest", "--png", chart)
	require.Equal(t, 0, code, errOut)
	t.Log(out)
	require.Contains(t, out, "3 series forecast, 0 skipped")
	for _, h := range []string{"30d", "60d", "90d"} {
		// Two demo creators sell in USDC, one in XLM: rows per asset and over all, each with
		// coverage, MAPE and bias.
		require.Regexp(t, `(?m)^\s*USDC\s+`+h+`\s+2\s+\d+\.\d%\s+\d+\.\d%\s+[+-]\d+\.\d%`, out)
		require.Regexp(t, `(?m)^\s*XLM\s+`+h+`\s+1\s+\d+\.\d%\s+\d+\.\d%\s+[+-]\d+\.\d%`, out)
		require.Regexp(t, `(?m)^\s*all\s+`+h+`\s+3\s+\d+\.\d%`, out)
	}
	f, err := os.Open(chart)
	require.NoError(t, err)
	img, err := png.Decode(f)
	require.NoError(t, f.Close())
	require.NoError(t, err)
	require.Greater(t, img.Bounds().Dx(), 300)

	for _, args := range [][]string{
		{"forecast", "show"},
		{"forecast", "show", "--creator", "nope"},
		{"forecast", "backtest", "--cutoff", "yesterday"},
		{"forecast", "backtest", "--cutoff", time.Now().UTC().Format(time.DateOnly)},
		{"forecast", "refresh", "--as-of", "2026-13-01"},
	} {
		code, _, errOut := run(t, env, args...)
		require.Equal(t, 1, code, "%v", args)
		require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, "%v: %s", args, errOut)
	}
}
