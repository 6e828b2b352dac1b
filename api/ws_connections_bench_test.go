package api

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

// BenchmarkWSConnections is in a file of its own, named to sort last, so that `make bench`
// runs it after every other benchmark of the package: the Go runtime keeps the descriptor of
// every goroutine a process ever ran (runtime.malg: 480 bytes each, 11.5 MB after the 24,000
// of this benchmark) and marks them at every collection, which doubled the collections' mark
// time of the benchmarks that ran after it in the same process (delivery p99 41–48 ms right
// after it, 12–22 ms without; README, issue 15).

// serverMem is the process's memory as the server side sees it.
type serverMem struct {
	rss      uint64 // VmRSS
	heapSt   uint64 // HeapInuse + StackInuse, after a GC
	routines int
}

func readServerMem(b *testing.B) serverMem {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	data, err := os.ReadFile("/proc/self/status")
	require.NoError(b, err)
	var rss uint64
	for line := range strings.SplitSeq(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			require.NoError(b, err)
			rss = kb << 10
		}
	}
	return serverMem{rss: rss, heapSt: ms.HeapInuse + ms.StackInuse, routines: runtime.NumGoroutine()}
}

// wsClientsSpec is what TestWSBenchClientProcess dials: Conns connections, spread round-robin
// over URLs with Tokens.
type wsClientsSpec struct {
	URLs, Tokens []string
	Conns        int
}

// TestWSBenchClientProcess is not a test: BenchmarkWSConnections runs the test binary again
// with this test selected (childCommand), so the client sockets live in another process and
// the benchmark's process holds only the servers. It dials the spec's connections, keeps each
// one read (so pings are answered), prints "ready <ok> <failed>", and closes them all when its
// standard input closes.
func TestWSBenchClientProcess(t *testing.T) {
	var spec wsClientsSpec
	if !childSpec(t, &spec) {
		return // only the benchmark's child process does anything here
	}
	raiseNoFile(t)
	urls, tokens, n := spec.URLs, spec.Tokens, spec.Conns

	conns := make([]*websocket.Conn, n)
	var failed atomic.Int64
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				c, err := rtDial(urls[i%len(urls)], tokens[i%len(tokens)])
				if err != nil {
					failed.Add(1)
					continue
				}
				conns[i] = c
				go func() {
					for {
						if _, _, err := c.ReadMessage(); err != nil {
							return
						}
					}
				}()
			}
		})
	}
	wg.Wait()
	fmt.Printf("ready %d %d\n", int64(n)-failed.Load(), failed.Load())
	_, _ = io.Copy(io.Discard, os.Stdin)
	for _, c := range conns {
		if c != nil {
			_ = c.Close()
		}
	}
}

// BenchmarkWSConnections holds N WebSockets (WS_BENCH_CONNS, default 10,000) open across two
// API instances on one database and reports the server side's memory per connection. The
// clients run in a child process (this test binary again, TestWSBenchClientProcess), so the
// process measured holds only the two servers: its VmRSS and Go HeapInuse+StackInuse (after a
// GC) before the clients connect and while all are open. The connections belong to 1,000 fans
// with up to 10 devices each (creating 10,000 users adds nothing but seeding time; every
// socket still has its own session row, goroutines and buffers). Target (issue 15): under
// 40 KiB per connection.
func BenchmarkWSConnections(b *testing.B) {
	n := 10_000
	if v := os.Getenv("WS_BENCH_CONNS"); v != "" {
		var err error
		n, err = strconv.Atoi(v)
		require.NoError(b, err)
	}
	limit := raiseNoFile(b)
	if uint64(n)+500 > limit {
		b.Logf("RLIMIT_NOFILE is %d; %d connections may not all fit", limit, n)
	}
	pool, url := testharness.FreshDB(b)
	ins := rtInstances(b, pool, url, 2, RealtimeOptions{})
	users := min(1000, n)
	_, fans := seedFans(b, pool, 10, (users+9)/10)
	spec := wsClientsSpec{URLs: []string{ins[0].wsURL(), ins[1].wsURL()}, Tokens: tokensFor(b, fans, RoleFan), Conns: n}

	// Start both hubs (their LISTEN connections) and warm the code paths, so the baseline
	// includes everything that does not grow with the number of connections.
	for _, in := range ins {
		c, err := rtDial(in.wsURL(), spec.Tokens[0])
		require.NoError(b, err)
		time.Sleep(100 * time.Millisecond)
		_ = c.Close()
	}
	time.Sleep(300 * time.Millisecond)

	for i := 0; i < b.N; i++ {
		loadStart := testharness.LoadAvg()
		before := readServerMem(b)
		cmd := childCommand(b, "TestWSBenchClientProcess", spec)
		stdin, err := cmd.StdinPipe()
		require.NoError(b, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(b, err)
		cmd.Stderr = os.Stderr
		start := time.Now()
		require.NoError(b, cmd.Start())
		var ok, failed int
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if _, err := fmt.Sscanf(sc.Text(), "ready %d %d", &ok, &failed); err == nil {
				break
			}
		}
		connectTime := time.Since(start)
		// Let the last handshakes finish their session rows and presence queries.
		var sessions int
		for range 50 {
			require.NoError(b, pool.QueryRow(context.Background(), `SELECT count(*) FROM ws_sessions`).Scan(&sessions))
			if sessions >= ok {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // held open; at least one heartbeat round
		after := readServerMem(b)
		_ = stdin.Close()
		go func() { _, _ = io.Copy(io.Discard, stdout) }()
		require.NoError(b, cmd.Wait())
		// The next benchmark must not measure this one's teardown: wait until both servers
		// have ended the 10,000 sessions (their rows deleted, presence sent) and give the
		// freed heap back, instead of leaving it to the background scavenger.
		for range 300 {
			var left int
			require.NoError(b, pool.QueryRow(context.Background(), `SELECT count(*) FROM ws_sessions`).Scan(&left))
			if left == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		debug.FreeOSMemory()

		per := func(a, z uint64) float64 { return (float64(z) - float64(a)) / float64(max(ok, 1)) }
		b.Logf("\n%-36s %s\n%-36s %d (failed %d) over 2 instances, %d fan users, connected in %s; %d session rows\n%-36s %.1f MiB -> %.1f MiB (+%.1f MiB)\n%-36s %.1f MiB -> %.1f MiB (+%.1f MiB)\n%-36s %d -> %d\n%-36s RSS %.1f KiB, heap+stack %.1f KiB (target < 40 KiB)\n%s%sload average %s at start, %s at end",
			"WebSocket connections held open", "(clients in a child process; the server process is measured)",
			"connections", ok, failed, len(fans), connectTime.Round(time.Millisecond), sessions,
			"server VmRSS", float64(before.rss)/(1<<20), float64(after.rss)/(1<<20), (float64(after.rss)-float64(before.rss))/(1<<20),
			"Go HeapInuse+StackInuse (after GC)", float64(before.heapSt)/(1<<20), float64(after.heapSt)/(1<<20), (float64(after.heapSt)-float64(before.heapSt))/(1<<20),
			"goroutines", before.routines, after.routines,
			"per connection", per(before.rss, after.rss)/1024, per(before.heapSt, after.heapSt)/1024,
			targetLine("RSS per idle socket", fmt.Sprintf("%.1f KiB", per(before.rss, after.rss)/1024), "< 40 KiB", per(before.rss, after.rss) < 40*1024),
			targetLine("heap+stack per idle socket", fmt.Sprintf("%.1f KiB", per(before.heapSt, after.heapSt)/1024), "< 40 KiB", per(before.heapSt, after.heapSt) < 40*1024),
			loadStart, testharness.LoadAvg())
		b.ReportMetric(per(before.rss, after.rss), "rss-B/conn")
		b.ReportMetric(per(before.heapSt, after.heapSt), "heap+stack-B/conn")
		b.ReportMetric(float64(ok), "conns")
		require.Zero(b, failed)
	}
}
