package pgcluster

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestStopEndsAServerStuckInACommand: when a fast shutdown does not finish — here the archiver
// waits on an archive_command that hangs, as pgBackRest's archive-push does when its object
// store has gone — Stop kills the server's whole process group, so no child (the archiver, its
// command) outlives the postmaster. (Seen after CI runs: archivers and archive-push processes
// of the compose test's cluster left running with PPID 1.)
func TestStopEndsAServerStuckInACommand(t *testing.T) {
	defer func(d time.Duration) { stopWait = d }(stopWait)
	stopWait = 2 * time.Second
	ctx := context.Background()
	c, err := StartCluster(ctx, filepath.Join(shallowTempDir(t), "pg"), ClusterOptions{Ephemeral: true,
		Settings: []string{"archive_mode=on", "archive_command=sleep 600"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	conn, err := pgx.Connect(ctx, c.URL("postgres"))
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `CREATE TABLE w AS SELECT g FROM generate_series(1, 1000) g`)
	require.NoError(t, err)
	_, err = conn.Exec(ctx, `SELECT pg_switch_wal()`)
	require.NoError(t, err)
	require.NoError(t, conn.Close(ctx))

	leader := c.cmd.Process.Pid
	var stuck, all []int
	require.Eventually(t, func() bool {
		all = descendants(t, leader)
		stuck = stuck[:0]
		for _, pid := range all {
			if comm, _, _, ok := procStat(pid); ok && comm == "sleep" {
				stuck = append(stuck, pid)
			}
		}
		return len(stuck) > 0
	}, 30*time.Second, 100*time.Millisecond, "the archiver runs its command")
	require.ErrorContains(t, c.Stop(), "was killed with its children")
	for _, pid := range append(all, leader) {
		require.Eventually(t, func() bool { return !alive(pid) }, 10*time.Second, 50*time.Millisecond, "process %d outlived Stop", pid)
	}
}

// descendants lists the processes below pid (children, their children, ...).
func descendants(t *testing.T, pid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	parent := map[int]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if _, _, ppid, ok := procStat(p); ok {
			parent[p] = ppid
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// alive reports whether pid is a running process (a zombie waiting to be reaped is not).
func alive(pid int) bool {
	_, state, _, ok := procStat(pid)
	return ok && state != "Z"
}
