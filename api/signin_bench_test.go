package api

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// BenchmarkLogin (issue 18): POST /api/v1/auth/login over real HTTP with the configured
// Argon2id parameters (ARGON2_*; default OWASP's minimum), as many clients as cores, for a
// fixed time. Prints the parameters, throughput and latency quantiles. Each login is one
// Argon2id verification, a session and a refresh token written, and two rate-limit counts.
func BenchmarkLogin(b *testing.B) {
	pool, _ := testharness.FreshDB(b)
	cfg, err := config.Load()
	require.NoError(b, err)
	cfg.Auth.JWTSecret = testSecret
	unlimited := db.Limit{Max: 1 << 30, Window: time.Hour}
	router, srv := buildRouter(Deps{Pool: pool, Config: cfg, Logger: slog.New(slog.DiscardHandler), Context: b.Context(),
		SignIn: SignInOptions{AccountLimit: unlimited, AddressLimit: unlimited}})
	hs := httptest.NewServer(router)
	defer hs.Close()

	const users = 50
	emails := make([]string, users)
	for i := range users {
		id := uuid.New()
		emails[i] = fmt.Sprintf("bench%d@example.com", i)
		_, err := pool.Exec(b.Context(), `INSERT INTO users (id, role, display_name) VALUES ($1, 'fan', 'Bench')`, id)
		require.NoError(b, err)
		h, err := srv.hasher.Hash("correct horse battery")
		require.NoError(b, err)
		require.NoError(b, db.CreateCredentials(b.Context(), pool, id, emails[i], h, time.Now()))
	}
	conns := runtime.GOMAXPROCS(0)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
	login := func(email string) (time.Duration, error) {
		start := time.Now()
		resp, err := client.Post(hs.URL+"/api/v1/auth/login", "application/json",
			bytes.NewReader(fmt.Appendf(nil, `{"email":%q,"password":"correct horse battery"}`, email)))
		if err != nil {
			return 0, err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("status %d", resp.StatusCode)
		}
		return time.Since(start), nil
	}
	_, err = login(emails[0])
	require.NoError(b, err)

	const duration = 5 * time.Second
	b.ResetTimer()
	var mu sync.Mutex
	var lat []time.Duration
	var firstErr error
	ctx, cancel := context.WithTimeout(context.Background(), duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Go(func() {
			for i := w; ctx.Err() == nil; i += conns {
				d, err := login(emails[i%users])
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				lat = append(lat, d)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	require.NoError(b, firstErr)
	slices.Sort(lat)
	p := srv.hasher.Params()
	b.ReportMetric(float64(len(lat))/elapsed.Seconds(), "logins/s")
	b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99_ms")
	fmt.Printf("\nLogin (POST /api/v1/auth/login), Argon2id %s, %d clients, %d cores, %s\n", p, conns, runtime.NumCPU(), elapsed.Round(time.Millisecond))
	fmt.Printf("| logins | logins/s | p50 | p90 | p99 | max |\n|---|---|---|---|---|---|\n")
	fmt.Printf("| %d | %.1f | %s | %s | %s | %s |\n", len(lat), float64(len(lat))/elapsed.Seconds(),
		quantile(lat, 0.50).Round(time.Millisecond), quantile(lat, 0.90).Round(time.Millisecond),
		quantile(lat, 0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond))
}
