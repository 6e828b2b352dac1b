package api

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// targetLine is one row of a benchmark's verdict: the figure, its target, MET or MISSED.
func targetLine(name, got, target string, met bool) string {
	verdict := "MISSED"
	if met {
		verdict = "MET"
	}
	return fmt.Sprintf("%-34s %12s  target %-10s %s\n", name, got, target, verdict)
}

// cmLoadResult is one endpoint's run under load.
type cmLoadResult struct {
	requests int
	errors   int
	rps      float64
	p50, p99 time.Duration
}

// seedCommentLoad gives a creator 10,000 comments (5,000 threads of a comment and a reply)
// with three likes each from 100 subscribed fans, and returns the creator and one fan.
func seedCommentLoad(b *testing.B, pool *pgxpool.Pool) (creator, fan uuid.UUID) {
	ctx := context.Background()
	creator, tier := uuid.New(), uuid.New()
	now := time.Now().UTC()
	// Ids derived from the creator: md5(creator || name) read as a UUID.
	steps := []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, role, display_name) VALUES ($1, 'creator', 'Load Creator')`, []any{creator}},
		{`INSERT INTO creators (id, handle) VALUES ($1, 'load_' || substr(md5($1::uuid::text), 1, 8))`, []any{creator}},
		{`INSERT INTO subscription_tiers (id, creator_id, name, level, price_stroops, asset) VALUES ($2, $1, 'Gold', 3, 10000000, 'USDC')`, []any{creator, tier}},
		{`INSERT INTO users (id, role, display_name)
		   SELECT md5($1::uuid::text || 'fan' || i)::uuid, 'fan', 'Load Fan ' || i FROM generate_series(1, 100) i`, []any{creator}},
		{`INSERT INTO subscriptions (id, fan_id, creator_id, tier_id, started_at, current_period_end)
		   SELECT gen_random_uuid(), md5($1::uuid::text || 'fan' || i)::uuid, $1, $2, $3::timestamptz - interval '1 day', $3::timestamptz + interval '29 days'
		     FROM generate_series(1, 100) i`, []any{creator, tier, now}},
		{`INSERT INTO comments (id, creator_id, author_id, root_id, depth, content, created_at)
		   SELECT md5($1::uuid::text || 'c' || i)::uuid, $1, md5($1::uuid::text || 'fan' || (i % 100 + 1))::uuid, md5($1::uuid::text || 'c' || i)::uuid, 0,
		          'Load comment number ' || i || ' with a sentence or two of text, as fans write them.',
		          $2::timestamptz - make_interval(secs => 10000 - i)
		     FROM generate_series(1, 5000) i`, []any{creator, now}},
		{`INSERT INTO comments (id, creator_id, author_id, parent_id, root_id, depth, content, created_at)
		   SELECT md5($1::uuid::text || 'r' || i)::uuid, $1, $1, md5($1::uuid::text || 'c' || i)::uuid, md5($1::uuid::text || 'c' || i)::uuid, 1,
		          'Thanks for number ' || i, $2::timestamptz - make_interval(secs => 9000 - i)
		     FROM generate_series(1, 5000) i`, []any{creator, now}},
		{`INSERT INTO comment_likes (comment_id, user_id, created_at)
		   SELECT c.id, md5($1::uuid::text || 'fan' || f)::uuid, $2 FROM comments c, generate_series(1, 3) f WHERE c.creator_id = $1`, []any{creator, now}},
		{`ANALYZE comments`, nil},
		{`ANALYZE comment_likes`, nil},
	}
	for _, st := range steps {
		_, err := pool.Exec(ctx, st.sql, st.args...)
		require.NoError(b, err, st.sql)
	}
	var f uuid.UUID
	require.NoError(b, pool.QueryRow(ctx, `SELECT md5($1::uuid::text || 'fan1')::uuid`, creator).Scan(&f))
	return creator, f
}

// BenchmarkCommentsListing: GET /api/v1/comments/{creator_id} (first page of 50 threads, 100
// comments with like counts) on a creator with 10,000 comments, against GET /health on the
// same server in the same run, at 100 concurrent connections over loopback from a separate
// process (runLoad).
// Target: listing ≥ 30% of the health endpoint's throughput, p99 under 20 ms.
func BenchmarkCommentsListing(b *testing.B) {
	pool, _ := testharness.FreshDB(b)
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(b, err)
	cfg.Auth.JWTSecret = testSecret
	router := NewRouter(Deps{Pool: pool, Config: cfg, Logger: slog.New(slog.DiscardHandler)})
	srv := httptest.NewServer(router)
	defer srv.Close()
	creator, fan := seedCommentLoad(b, pool)
	tok, err := IssueToken(testSecret, fan, RoleFan, time.Hour, time.Now())
	require.NoError(b, err)

	const conns = 100
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns}}
	list := srv.URL + "/api/v1/comments/" + creator.String()
	// Warm up, and check the answer is the page it should be.
	resp, err := client.Get(srv.URL + "/health")
	require.NoError(b, err)
	_ = resp.Body.Close()
	_ = runLoad(b, loadSpec{URL: list, Conns: 4, Duration: time.Second, Want: http.StatusOK, Items: []loadItem{{Token: tok}}})

	for i := 0; i < b.N; i++ {
		d := benchDuration(3 * time.Second)
		loadStart := testharness.LoadAvg()
		health := runLoad(b, loadSpec{URL: srv.URL + "/health", Conns: conns, Duration: d, Want: http.StatusOK, Items: []loadItem{{}}})
		comments := runLoad(b, loadSpec{URL: list, Conns: conns, Duration: d, Want: http.StatusOK, Items: []loadItem{{Token: tok}}})
		ratio := comments.rps / health.rps
		b.Logf("\n%-34s %9s %8s %10s %10s\n%-34s %9.0f %8d %10s %10s\n%-34s %9.0f %8d %10s %10s\n%s%s"+
			"pool max conns %d; load average %s at start, %s at end",
			"endpoint (100 conns, 3 s, load process)", "req/s", "errors", "p50", "p99",
			"GET /health", health.rps, health.errors, health.p50.Round(10*time.Microsecond), health.p99.Round(10*time.Microsecond),
			"GET /api/v1/comments/{creator_id}", comments.rps, comments.errors, comments.p50.Round(10*time.Microsecond), comments.p99.Round(10*time.Microsecond),
			targetLine("listing/health throughput", fmt.Sprintf("%.1f%%", 100*ratio), ">= 30%", ratio >= 0.30),
			targetLine("listing p99", comments.p99.Round(10*time.Microsecond).String(), "< 20ms", comments.p99 < 20*time.Millisecond),
			pool.Config().MaxConns, loadStart, testharness.LoadAvg())
		b.ReportMetric(comments.rps, "list-req/s")
		b.ReportMetric(float64(comments.p99.Microseconds())/1000, "list-p99-ms")
		b.ReportMetric(100*ratio, "list/health-%")
		require.Zero(b, comments.errors)
	}
}
