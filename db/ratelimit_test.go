package db_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestRateLimitFixedAndSliding(t *testing.T) {
	ctx := context.Background()
	pool := testharness.Pool(t)
	limit := db.Limit{Max: 3, Window: time.Minute}
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	bucket := "test:" + t.Name()

	for i := range 3 {
		d, err := db.TakeRateLimit(ctx, pool, bucket, limit, t0.Add(time.Duration(i)*time.Second))
		require.NoError(t, err)
		require.True(t, d.Allowed, "hit %d", i)
	}
	d, err := db.TakeRateLimit(ctx, pool, bucket, limit, t0.Add(10*time.Second))
	require.NoError(t, err)
	require.False(t, d.Allowed)
	require.Greater(t, d.RetryAfter, 50*time.Second, "the window must end and the old hits fade")

	// Just after the boundary the previous window still weighs almost fully: still denied.
	d, err = db.TakeRateLimit(ctx, pool, bucket, limit, t0.Add(61*time.Second))
	require.NoError(t, err)
	require.False(t, d.Allowed, "no double burst at a window boundary")
	// Two thirds into the next window, 3*(1/3) = 1 weighs: one more hit fits... two do.
	d, err = db.TakeRateLimit(ctx, pool, bucket, limit, t0.Add(100*time.Second))
	require.NoError(t, err)
	require.True(t, d.Allowed)
	// Two windows later everything has faded.
	for range 3 {
		d, err = db.TakeRateLimit(ctx, pool, bucket, limit, t0.Add(181*time.Second))
		require.NoError(t, err)
		require.True(t, d.Allowed)
	}
}

// TestRateLimitHoldsUnderConcurrency: concurrent callers (as if on several API instances)
// never get more than the limit through.
func TestRateLimitHoldsUnderConcurrency(t *testing.T) {
	ctx := context.Background()
	pool := testharness.Pool(t)
	limit := db.Limit{Max: 20, Window: time.Hour}
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	allowed := 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			d, err := db.TakeRateLimit(ctx, pool, "test:concurrent", limit, now)
			require.NoError(t, err)
			if d.Allowed {
				mu.Lock()
				allowed++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	require.Equal(t, 20, allowed)
}
