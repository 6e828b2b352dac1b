package backup

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/s3server"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// benchS3Child makes the test binary, started by BenchmarkBackupPipeline, serve the package's
// S3 server (in memory) in a process of its own, so that the benchmark's RSS is the worker's
// alone. It prints the URL and exits when its stdin closes.
const benchS3Child = "BACKUP_BENCH_S3_CHILD"

func init() {
	if os.Getenv(benchS3Child) != "1" {
		return
	}
	srv, err := s3server.Start("127.0.0.1:0", "")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(srv.URL())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// childS3 starts the S3 server in a child process and returns a store on a fresh bucket, and
// the child's pid.
func childS3(b *testing.B) (Store, int) {
	ctx := context.Background()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchS3Child+"=1")
	stdin, err := cmd.StdinPipe()
	require.NoError(b, err)
	out, err := cmd.StdoutPipe()
	require.NoError(b, err)
	cmd.Stderr = os.Stderr
	require.NoError(b, cmd.Start())
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	require.NoError(b, err)
	cfg := config.S3{Endpoint: strings.TrimSpace(line), Bucket: "bench-" + randHex(6), Region: config.DefaultAWSRegion, PathStyle: true}
	c, err := objstore.NewClient(ctx, cfg, objstore.Options{StaticCredentials: objstore.DevCredentials()})
	require.NoError(b, err)
	require.NoError(b, objstore.EnsureBucket(ctx, c, cfg.Bucket))
	return Store{S3: c, Bucket: cfg.Bucket}, cmd.Process.Pid
}

// benchDB is the generated database, kept between runs and regenerated when its size does
// not match BACKUP_BENCH_MB.
const benchDB = "orchestrator_bench_backup"

// benchVocabulary gives the generated text the compressibility of prose: words drawn at
// random, so rows repeat words but not whole sentences.
var benchVocabulary = strings.Fields(`account active address after again against agreement amount
	annual answer april archive artist asset audio august author balance bank before billing
	blue board budget build button cancel capital card career cart catalog change channel
	charge check city claim client close cloud code collection comment company complete
	content contract country course create credit currency customer daily data date deal
	december default delivery deposit design detail device digital discount document domain
	download draft east edit email energy entry error event exchange expense export family
	february feature fee file final finance first follow format friday frame fund gallery
	general gift global green group growth guide history home hour image import income
	invoice issue item january july june key label language large last launch layer ledger
	level license light limit link list local login march market media member message method
	monday month music name network news next north notice number october offer office order
	owner package page partner payment payout pending period photo plan platform policy post
	premium price print private product profile project public purchase quarter question
	receipt record red refund region release report request reserve return review reward
	right round sale saturday schedule search season second secure september service session
	setting share shipping short signal simple single size social source south stage standard
	status storage store stream studio subscription sunday support system table target tax
	team template term thursday ticket title today token total track transfer trial tuesday
	update upload user value vendor version video view wallet wednesday week west white window
	withdrawal work world year yellow`)

// generateBenchDB fills db with one table of rows mixing text (random words), numbers, jsonb,
// uuids and timestamps until the database reaches targetBytes.
func generateBenchDB(b *testing.B, url string, targetBytes int64) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, url)
	require.NoError(b, err)
	defer pool.Close()
	quoted := make([]string, len(benchVocabulary))
	for i, w := range benchVocabulary {
		quoted[i] = "'" + w + "'"
	}
	vocab := "ARRAY[" + strings.Join(quoted, ",") + "]"
	n := len(benchVocabulary)
	_, err = pool.Exec(ctx, `
		CREATE TABLE bench_events (
			id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			ref uuid NOT NULL,
			created timestamptz NOT NULL,
			kind text NOT NULL,
			amount numeric(14,2) NOT NULL,
			quantity integer NOT NULL,
			score double precision NOT NULL,
			title text NOT NULL,
			body text NOT NULL,
			meta jsonb NOT NULL);
		CREATE TABLE bench_meta (target_bytes bigint NOT NULL, complete boolean NOT NULL)`)
	require.NoError(b, err)
	// word(k) is a random vocabulary word; the g reference makes the subqueries correlated so
	// they run per row.
	word := func() string { return fmt.Sprintf("(%s)[1 + floor(random() * %d)::int]", vocab, n) }
	words := func(min, spread int) string {
		return fmt.Sprintf("(SELECT string_agg(%s, ' ') FROM generate_series(1, %d + (g %% %d)))", word(), min, spread)
	}
	insert := `INSERT INTO bench_events (ref, created, kind, amount, quantity, score, title, body, meta)
		SELECT gen_random_uuid(),
			timestamptz '2023-01-01' + random() * interval '900 days',
			` + word() + `,
			round((random() * 5000)::numeric, 2),
			(random() * 100)::int,
			random() * 1000,
			` + words(4, 5) + `,
			` + words(25, 30) + `,
			jsonb_build_object('customer', gen_random_uuid(), 'tags', ARRAY[` + word() + `, ` + word() + `],
				'price', round((random() * 200)::numeric, 2), 'count', (random() * 50)::int,
				'note', ` + words(3, 6) + `, 'paid', random() < 0.8)
		FROM generate_series(1, $1) g`
	const batch = 40000
	for {
		var size int64
		require.NoError(b, pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size))
		if size >= targetBytes {
			break
		}
		// Two connections at once: the machine has two cores.
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = pool.Exec(ctx, insert, batch)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(b, err)
		}
	}
	_, err = pool.Exec(ctx, "VACUUM ANALYZE bench_events")
	require.NoError(b, err)
	_, err = pool.Exec(ctx, "INSERT INTO bench_meta VALUES ($1, true)", targetBytes)
	require.NoError(b, err)
}

// benchDatabase returns the URL of the generated database, (re)generating it when needed.
func benchDatabase(b *testing.B, targetBytes int64) (url, generated string) {
	ctx := context.Background()
	pg := testharness.Postgres(b)
	url, err := pg.Server.EnsureDatabase(ctx, benchDB)
	require.NoError(b, err)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(b, err)
	var stored int64
	err = pool.QueryRow(ctx, "SELECT target_bytes FROM bench_meta WHERE complete").Scan(&stored)
	var size int64
	require.NoError(b, pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&size))
	pool.Close()
	// The generator overshoots by at most two batches (about 40 MB).
	if err == nil && stored == targetBytes && size >= targetBytes && size < targetBytes+targetBytes/5+(64<<20) {
		return url, ""
	}
	require.NoError(b, pg.Server.DropDatabase(ctx, benchDB))
	url, err = pg.Server.CreateDatabase(ctx, benchDB, "")
	require.NoError(b, err)
	start := time.Now()
	generateBenchDB(b, url, targetBytes)
	return url, fmt.Sprintf(" (generated in %s)", time.Since(start).Round(time.Second))
}

// rssKB reads a field (VmRSS, VmHWM) of /proc/self/status in kB.
func rssKB(field string) int64 { return procKB("self", field) }

// procKB reads a field of /proc/<pid>/status in kB.
func procKB(pid, field string) int64 {
	f, err := os.Open("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			v, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v
		}
	}
	return 0
}

// sampleRSS samples VmRSS every 10 ms until stop is called, which returns the peak in bytes.
func sampleRSS() (stop func() int64) {
	var peak atomic.Int64
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			if v := rssKB("VmRSS") << 10; v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() int64 {
		close(done)
		<-finished
		return peak.Load()
	}
}

// loadAvg is the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// runPG runs a PostgreSQL client program against url with extra arguments, stdout to out.
func runPG(b *testing.B, bin, url string, out *os.File, extra ...string) time.Duration {
	args, env, err := pgArgs(url)
	require.NoError(b, err)
	cmd := exec.Command(bin, append(extra, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout = out
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	require.NoError(b, cmd.Run(), "%s: %s", filepath.Base(bin), stderr.String())
	return time.Since(start)
}

func fileSize(b *testing.B, path string) int64 {
	st, err := os.Stat(path)
	require.NoError(b, err)
	return st.Size()
}

// BenchmarkBackupPipeline measures the targets on a generated database of
// BACKUP_BENCH_MB megabytes (default 1024): backup time over a raw pg_dump, stored size over
// the default pg_dump, peak RSS during the backup, and restore time over plain pg_restore.
//
// The package's S3 server (gofakes3, objects in memory) runs in a child process (this test
// binary, see benchS3Child), so the peak RSS sampled here (VmRSS every 10 ms during Run) is
// the worker's. The target is checked on its growth during Run (the pipeline's own memory);
// the absolute peak, which includes the test process's baseline, is shown too, and the
// child's peak for information.
func BenchmarkBackupPipeline(b *testing.B) {
	mb := int64(1024)
	if v := os.Getenv("BACKUP_BENCH_MB"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		require.NoError(b, err)
		mb = n
	}
	ctx := context.Background()
	url, generated := benchDatabase(b, mb<<20)
	pg := testharness.Postgres(b)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(b, err)
	var dbSize int64
	require.NoError(b, pool.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&dbSize))
	major, err := serverMajor(ctx, pool)
	require.NoError(b, err)
	pool.Close()
	pgDump, err := FindBinary("", "pg_dump", major)
	require.NoError(b, err)
	pgRestore, err := FindBinary("", "pg_restore", major)
	require.NoError(b, err)
	dir := b.TempDir()

	freshDB := func() string {
		name := benchDB + "_target_" + randHex(4)
		u, err := pg.Server.CreateDatabase(ctx, name, "")
		require.NoError(b, err)
		b.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })
		return u
	}
	dropDB := func(u string) {
		name := u[strings.LastIndex(u, "/")+1:]
		if i := strings.IndexByte(name, '?'); i >= 0 {
			name = name[:i]
		}
		require.NoError(b, pg.Server.DropDatabase(ctx, name))
	}

	for b.Loop() {
		// (1) The raw dump: the limit.
		devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		require.NoError(b, err)
		raw := runPG(b, pgDump, url, devNull, "--format=custom", "--compress=0")
		devNull.Close()

		// (2) and (4) The package's backup into the in-process S3, sampling RSS.
		store, s3Pid := childS3(b)
		id, err := age.GenerateX25519Identity()
		require.NoError(b, err)
		debug.FreeOSMemory()
		opts := Options{ID: "bench-" + randHex(4), DatabaseURL: url, Recipients: []string{id.Recipient().String()}}
		before := rssKB("VmRSS") << 10
		stop := sampleRSS()
		start := time.Now()
		m, err := Run(ctx, store, opts)
		pipeline := time.Since(start)
		peak := stop()
		require.NoError(b, err)
		s3Peak := procKB(strconv.Itoa(s3Pid), "VmHWM") << 10

		start = time.Now()
		_, err = Fingerprint(ctx, url)
		require.NoError(b, err)
		fpTime := time.Since(start)

		// (3) The default pg_dump's size; (5) the same uncompressed dump the pipeline stores,
		// as a local file for plain pg_restore.
		defPath := filepath.Join(dir, "default.dump")
		f, err := os.Create(defPath)
		require.NoError(b, err)
		defTime := runPG(b, pgDump, url, f, "--format=custom")
		f.Close()
		defSize := fileSize(b, defPath)
		os.Remove(defPath)
		rawPath := filepath.Join(dir, "raw.dump")
		f, err = os.Create(rawPath)
		require.NoError(b, err)
		runPG(b, pgDump, url, f, "--format=custom", "--compress=0")
		f.Close()

		restoreArgs := []string{"--format=custom", "--no-owner", "--exit-on-error"}
		type restoreRow struct {
			jobs          int
			plain, ours   time.Duration
			phase, verify time.Duration
			download      time.Duration
		}
		var rows []restoreRow
		for _, jobs := range []int{1, 2} {
			t := freshDB()
			args := append([]string{}, restoreArgs...)
			if jobs > 1 {
				args = append(args, "--jobs="+strconv.Itoa(jobs))
			}
			plain := runPG(b, pgRestore, t, nil, append(args, rawPath)...)
			dropDB(t)
			t = freshDB()
			start = time.Now()
			res, err := Restore(ctx, store, RestoreOptions{ID: m.ID, TargetURL: t, Identities: []age.Identity{id}, Jobs: jobs, TempDir: dir})
			ours := time.Since(start)
			require.NoError(b, err)
			dropDB(t)
			rows = append(rows, restoreRow{jobs, plain, ours, res.Restore, res.Verify, res.Download})
		}
		os.Remove(rawPath)

		ratio := pipeline.Seconds() / raw.Seconds()
		sizeRatio := float64(m.StoredBytes) / float64(defSize)
		growth := peak - before
		var t strings.Builder
		row := func(metric, value, target string, ok bool) {
			m := ""
			if target != "" {
				m = "yes"
				if !ok {
					m = "NO"
				}
			}
			fmt.Fprintf(&t, "\n%-30s %-70s %-9s %s", metric, value, target, m)
		}
		fmt.Fprintf(&t, "%s: %d MB on disk%s, dump -Z0 %d MB; uptime load %s", benchDB, dbSize>>20, generated, m.DumpBytes>>20, loadAvg())
		fmt.Fprintf(&t, "\n%-30s %-70s %-9s %s", "metric", "value", "target", "met")
		row("backup time / raw dump", fmt.Sprintf("%s / %s = %.2f (fingerprint alone %s)", pipeline.Round(time.Millisecond),
			raw.Round(time.Millisecond), ratio, fpTime.Round(time.Millisecond)), "<= 1.3", ratio <= 1.3)
		row("stored / default pg_dump size", fmt.Sprintf("%.1f MB / %.1f MB = %.3f (gzip dump took %s)", float64(m.StoredBytes)/(1<<20),
			float64(defSize)/(1<<20), sizeRatio, defTime.Round(time.Millisecond)), "<= 1.0", sizeRatio <= 1.0)
		row("worker RSS growth in backup", fmt.Sprintf("+%d MB (peak %d MB, %d MB before; S3 is a child, peak %d MB)", growth>>20, peak>>20, before>>20, s3Peak>>20), "< 150 MB", growth < 150<<20)
		for _, r := range rows {
			rr := r.ours.Seconds() / r.plain.Seconds()
			row(fmt.Sprintf("restore / pg_restore, jobs %d", r.jobs), fmt.Sprintf("%s / %s = %.2f (download %s, pg_restore %s, verify %s)",
				r.ours.Round(time.Millisecond), r.plain.Round(time.Millisecond), rr, r.download.Round(time.Millisecond),
				r.phase.Round(time.Millisecond), r.verify.Round(time.Millisecond)), "<= 1.15", rr <= 1.15)
		}
		b.Log(t.String())
		b.ReportMetric(ratio, "backup/raw")
		b.ReportMetric(sizeRatio, "stored/default")
		b.ReportMetric(float64(growth)/(1<<20), "workerMB")
		b.ReportMetric(rows[0].ours.Seconds()/rows[0].plain.Seconds(), "restore/plain")
	}
}
