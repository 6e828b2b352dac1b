package api

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/appclient"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// BenchmarkRealtimeClient: the appclient WebSocket client end to end over two API instances:
// 20 Gold fans on instance A each send 15 messages through their Realtime (sealed for the
// creator, sent as SendMessage frames), 20 creators on instance B receive them through theirs
// (NewMessage, opened). It prints the time from Send to the decrypted MessageEvent and
// requires every message delivered and decrypted once. Paced at 100 messages a second in all
// (15 per fan stays under the production limit of 20 a minute).
func BenchmarkRealtimeClient(b *testing.B) {
	raiseNoFile(b)
	pool, url := testharness.FreshDB(b)
	ins := rtInstances(b, pool, url, 2, RealtimeOptions{})
	const pairs, perFan, rate = 20, 15, 100
	ctx := context.Background()
	cs, fans := seedFans(b, pool, pairs, 1)
	ctoks, ftoks := tokensFor(b, cs, RoleCreator), tokensFor(b, fans, RoleFan)
	client := func(base, tok string, id uuid.UUID) *appclient.Client {
		k, err := appclient.GenerateKey()
		require.NoError(b, err)
		c := appclient.New(base, tok, id, k)
		require.NoError(b, c.PublishKey(ctx))
		return c
	}

	for n := 0; n < b.N; n++ {
		var mu sync.Mutex
		sentAt := map[string]time.Time{}
		var lat []time.Duration
		var received sync.WaitGroup
		received.Add(pairs * perFan)
		var creators, senders []*appclient.Realtime
		for i := range pairs {
			c := client(ins[1].srv.URL, ctoks[i], cs[i])
			rt, err := c.Connect(ctx, appclient.RealtimeOptions{})
			require.NoError(b, err)
			creators = append(creators, rt)
			go func() {
				for ev := range rt.Events() {
					m, ok := ev.(appclient.MessageEvent)
					if !ok {
						continue
					}
					now := time.Now()
					if m.Err != nil {
						b.Errorf("message %s did not decrypt: %v", m.ID, m.Err)
						received.Done()
						continue
					}
					mu.Lock()
					lat = append(lat, now.Sub(sentAt[string(m.Plaintext)]))
					mu.Unlock()
					received.Done()
				}
			}()
			f := client(ins[0].srv.URL, ftoks[i], fans[i])
			frt, err := f.Connect(ctx, appclient.RealtimeOptions{})
			require.NoError(b, err)
			senders = append(senders, frt)
			go func() { // acks and anything else the fans are sent
				for range frt.Events() {
				}
			}()
		}

		start := time.Now()
		tick := time.NewTicker(time.Second / rate)
		for k := range pairs * perFan {
			<-tick.C
			i := k % pairs
			text := "bench " + strconv.Itoa(n) + "/" + strconv.Itoa(k)
			mu.Lock()
			sentAt[text] = time.Now()
			mu.Unlock()
			_, err := senders[i].Send(ctx, cs[i], []byte(text))
			require.NoError(b, err)
		}
		tick.Stop()
		done := make(chan struct{})
		go func() { received.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			b.Fatalf("only %d of %d messages arrived", len(lat), pairs*perFan)
		}
		took := time.Since(start)
		for _, rt := range append(creators, senders...) {
			_ = rt.Close()
		}
		slices.Sort(lat)
		b.Logf("\nappclient Realtime, fans on A -> creators on B (%d pairs, %d msg/s, sealed and opened)\n%-10s %-10s %-10s %-10s %-10s\n%-10d %-10s %-10s %-10s %-10s\n(time from Send to the decrypted MessageEvent; every message delivered and opened once; %s in all)",
			pairs, rate, "messages", "p50", "p95", "p99", "max", len(lat),
			quantile(lat, 0.5).Round(10*time.Microsecond), quantile(lat, 0.95).Round(10*time.Microsecond),
			quantile(lat, 0.99).Round(10*time.Microsecond), quantile(lat, 1).Round(10*time.Microsecond), took.Round(time.Millisecond))
		b.ReportMetric(float64(quantile(lat, 0.99).Microseconds())/1000, "p99-ms")
		require.Len(b, lat, pairs*perFan)
	}
}
