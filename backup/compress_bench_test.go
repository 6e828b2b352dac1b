package backup

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

// BenchmarkBackupCompression compares ways to compress the dump within one run, on the
// generated database of BackupPipeline (BACKUP_BENCH_MB, default 1024): pg_dump -Fc -Z0 →
// compression → age → SHA-256, discarded (no upload). For each: wall time over the raw dump,
// the CPU of this process and of its children, and the encrypted size over the default
// pg_dump's (which must stay ≤ 1). The machine's load makes absolute times meaningless;
// compare the rows of one run.
func BenchmarkBackupCompression(b *testing.B) {
	mb := benchMB(b)
	ctx := context.Background()
	url, _ := benchDatabase(b, mb<<20)
	pool, err := pgxpool.New(ctx, url)
	require.NoError(b, err)
	major, err := serverMajor(ctx, pool)
	require.NoError(b, err)
	pool.Close()
	pgDump, err := FindBinary("", "pg_dump", major)
	require.NoError(b, err)
	zstdCLI, err := exec.LookPath("zstd")
	require.NoError(b, err, "the zstd program (Debian package zstd)")
	id, err := age.GenerateX25519Identity()
	require.NoError(b, err)

	type variant struct {
		name string
		c    compression
	}
	inProcess := func(opts ...zstd.EOption) compression { return compression{opts: opts} }
	cli := func(args ...string) compression { return compression{program: zstdCLI, args: args} }
	// At most 7 rows: go test keeps 10 lines of a benchmark's log.
	variants := []variant{
		{"in process, SpeedDefault, GOMAXPROCS (before)", inProcess(zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0)))},
		{"in process, SpeedFastest", inProcess(zstd.WithEncoderLevel(zstd.SpeedFastest))},
		{"zstd " + strings.Join(zstdArgs, " ") + " (the backup's)", cli(zstdArgs...)},
		{"zstd -3", cli("-3")},
		{"zstd -2", cli("-2")},
		{"zstd -1 -B2MiB", cli("-1", "-B2MiB")},
		{"zstd --fast=3 -B2MiB", cli("--fast=3", "-B2MiB")},
	}
	loadStart := testharness.LoadAvg()
	for b.Loop() {
		devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
		require.NoError(b, err)
		raw := runPG(b, pgDump, url, devNull, "--format=custom", "--compress=0")
		def := filepath.Join(b.TempDir(), "default.dump")
		f, err := os.Create(def)
		require.NoError(b, err)
		runPG(b, pgDump, url, f, "--format=custom")
		f.Close()
		defSize := fileSize(b, def)
		os.Remove(def)
		devNull.Close()

		var t strings.Builder
		fmt.Fprintf(&t, "raw dump %s, default dump %.1f MB; load average %s at the start", raw.Round(time.Millisecond), float64(defSize)/(1<<20), loadStart)
		fmt.Fprintf(&t, "\n%-48s %-8s %-8s %-10s %-10s %-9s %s", "variant", "wall", "/raw", "own CPU", "child CPU", "MB", "/default")
		for _, v := range variants {
			args, env, err := pgArgs(url)
			require.NoError(b, err)
			dump := exec.Command(pgDump, append([]string{"--format=custom", "--compress=0"}, args...)...)
			dump.Env = append(os.Environ(), env...)
			out, err := dump.StdoutPipe()
			require.NoError(b, err)
			self, children := rusage(unix.RUSAGE_SELF), rusage(unix.RUSAGE_CHILDREN)
			start := time.Now()
			require.NoError(b, dump.Start())
			sizes, err := encryptStream(io.Discard, out, []age.Recipient{id.Recipient()}, nil, v.c)
			require.NoError(b, err)
			require.NoError(b, dump.Wait())
			wall := time.Since(start)
			own, kids := rusage(unix.RUSAGE_SELF)-self, rusage(unix.RUSAGE_CHILDREN)-children
			size := sizes.stored
			fmt.Fprintf(&t, "\n%-48s %-8s %-8.2f %-10s %-10s %-9.1f %.3f", v.name, wall.Round(time.Millisecond), wall.Seconds()/raw.Seconds(),
				own.Round(time.Millisecond), kids.Round(time.Millisecond), float64(size)/(1<<20), float64(size)/float64(defSize))
		}
		fmt.Fprintf(&t, "\nload average %s at the end (child CPU includes pg_dump)", testharness.LoadAvg())
		b.Log(t.String())
	}
}

// rusage is the user and system CPU time of this process (unix.RUSAGE_SELF) or of its reaped
// children (unix.RUSAGE_CHILDREN).
func rusage(who int) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(who, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
