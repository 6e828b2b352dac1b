package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The HTTP load of the benchmarks (issue 15 item 9: "load generator in a separate process")
// comes from wrk (Debian's package), a process of its own in C with an event loop per thread,
// so the process under measurement holds only the servers, and the load costs the shared cores
// as little as a load generator can. Both still share the machine, as a load generator on the
// same host does. The WebSocket benchmarks' clients run in a child Go process (runChild).

// loadItem is one request the load can send: a bearer token (none when empty) and a JSON body
// (a POST; a GET when empty).
type loadItem struct {
	Token string
	Body  []byte
}

// loadSpec is a closed-loop load: Conns connections for Duration (whole seconds) against URL,
// each sending its next request when the last is answered; the requests cycle through Items
// (each wrk thread from its own offset). A request counts as an error unless it answers Want.
type loadSpec struct {
	URL      string
	Conns    int
	Duration time.Duration
	Want     int
	Items    []loadItem
}

// wrkThreads is wrk's threads: as many as the machine has cores, as wrk advises.
var wrkThreads = runtime.NumCPU()

// runLoad runs spec with wrk and returns what it measured (wrk's own latency histogram).
func runLoad(tb testing.TB, spec loadSpec) cmLoadResult {
	tb.Helper()
	wrk, err := exec.LookPath("wrk")
	require.NoError(tb, err, "the HTTP benchmarks' load generator is wrk: apt-get install wrk")
	script := filepath.Join(tb.TempDir(), "load.lua")
	require.NoError(tb, os.WriteFile(script, wrkScript(spec), 0o600))
	seconds := fmt.Sprintf("%ds", max(1, int(math.Ceil(spec.Duration.Seconds())))) // wrk counts whole seconds
	cmd := exec.Command(wrk, "--threads", strconv.Itoa(min(wrkThreads, spec.Conns)), "--connections", strconv.Itoa(spec.Conns),
		"--duration", seconds, "--timeout", "10s", "--script", script, spec.URL)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	require.NoError(tb, cmd.Run(), "wrk: %s", out.String())
	for line := range strings.SplitSeq(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "load-report "); ok {
			var r struct {
				Requests, Bad, SocketErrors int
				Seconds                     float64
				P50, P99                    float64 // µs
			}
			_, err := fmt.Sscanf(v, "%d %d %d %g %g %g", &r.Requests, &r.Bad, &r.SocketErrors, &r.Seconds, &r.P50, &r.P99)
			require.NoError(tb, err, "wrk report %q", v)
			return cmLoadResult{requests: r.Requests, errors: r.Bad + r.SocketErrors, rps: float64(r.Requests) / r.Seconds,
				p50: time.Duration(r.P50 * float64(time.Microsecond)), p99: time.Duration(r.P99 * float64(time.Microsecond))}
		}
	}
	tb.Fatalf("wrk printed no report: %q", out.String())
	return cmLoadResult{}
}

// wrkScript is the wrk script of spec: the requests in a table, counted answers that are not
// Want, and a one-line report ("load-report requests bad socket-errors seconds p50µs p99µs").
func wrkScript(spec loadSpec) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "local want = %d\nlocal items = {\n", spec.Want)
	for _, it := range spec.Items {
		fmt.Fprintf(&b, "  {%s, %s},\n", luaString(it.Token), luaString(string(it.Body)))
	}
	b.WriteString(`}
local threads = {}
local nthreads = 0
function setup(thread)
  thread:set("id", nthreads)
  nthreads = nthreads + 1
  table.insert(threads, thread)
end
function init(args)
  bad = 0
  k = id * 7919
end
function request()
  k = k + 1
  local it = items[(k % #items) + 1]
  local headers = {}
  if it[1] ~= "" then headers["Authorization"] = "Bearer " .. it[1] end
  if it[2] == "" then return wrk.format("GET", nil, headers, nil) end
  headers["Content-Type"] = "application/json"
  return wrk.format("POST", nil, headers, it[2])
end
function response(status, headers, body)
  if status ~= want then bad = bad + 1 end
end
function done(summary, latency, requests)
  local nbad = 0
  for _, t in ipairs(threads) do nbad = nbad + t:get("bad") end
  local e = summary.errors
  io.write(string.format("load-report %d %d %d %.6f %.1f %.1f\n", summary.requests, nbad,
    e.connect + e.read + e.write + e.timeout, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99)))
end
`)
	return b.Bytes()
}

// luaString is s as a Lua long-bracket string literal, with a level its text does not close.
func luaString(s string) string {
	eq := ""
	for strings.Contains(s, "]"+eq+"]") {
		eq += "="
	}
	// A long bracket drops a newline right after the opening; none of ours starts with one.
	return "[" + eq + "[" + s + "]" + eq + "]"
}

// childCommand is this test binary again with only the test named selected and
// BENCH_CHILD_SPEC naming a file holding spec (JSON), which the child reads with childSpec.
func childCommand(tb testing.TB, test string, spec any) *exec.Cmd {
	tb.Helper()
	raw, err := json.Marshal(spec)
	require.NoError(tb, err)
	file := filepath.Join(tb.TempDir(), "spec.json")
	require.NoError(tb, os.WriteFile(file, raw, 0o600))
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.count=1", "-test.v=false")
	cmd.Env = append(os.Environ(), "BENCH_CHILD_SPEC="+file)
	return cmd
}

// runChild runs childCommand to its end and reads the child's report (the JSON after
// "bench-child-report " on its standard output) into report.
func runChild(tb testing.TB, test string, spec, report any) {
	tb.Helper()
	cmd := childCommand(tb, test, spec)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = os.Stderr
	require.NoError(tb, cmd.Run(), "%s process", test)
	for line := range strings.SplitSeq(out.String(), "\n") {
		if v, ok := strings.CutPrefix(line, "bench-child-report "); ok {
			require.NoError(tb, json.Unmarshal([]byte(v), report))
			return
		}
	}
	tb.Fatalf("%s process printed no report: %q", test, out.String())
}

// childSpec reads a benchmark child's spec into spec; false when this process is not one.
func childSpec(t *testing.T, spec any) bool {
	file := os.Getenv("BENCH_CHILD_SPEC")
	if file == "" {
		return false
	}
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, spec))
	return true
}

// childReport prints a benchmark child's report for runChild.
func childReport(t *testing.T, report any) {
	out, err := json.Marshal(report)
	require.NoError(t, err)
	fmt.Printf("bench-child-report %s\n", out)
}
