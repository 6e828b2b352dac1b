package backup

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"
)

// The stored object is read by the standard tools alone: age (the reference implementation,
// filippo.io/age) decrypts it, the zstd program decompresses it (the backup compresses with the
// same program when it is on PATH, as in the image), and pg_restore lists the dump.
func TestStoredObjectReadsWithStandardTools(t *testing.T) {
	zstdCLI, err := exec.LookPath("zstd")
	require.NoError(t, err, "the zstd program (Debian package zstd)")
	require.NotEmpty(t, defaultCompression().program, "the backup compresses with the zstd program on PATH")
	f := newFixture(t)
	ctx := context.Background()
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)

	plain, err := age.Decrypt(bytes.NewReader(getObject(t, f.store, m.Object)), f.identity)
	require.NoError(t, err)
	unzstd := exec.Command(zstdCLI, "-d", "-c", "-q")
	unzstd.Stdin = plain
	dump, err := unzstd.Output()
	require.NoError(t, err)
	require.EqualValues(t, m.DumpBytes, len(dump))
	require.True(t, bytes.HasPrefix(dump, []byte("PGDMP")), "a pg_dump custom-format archive")

	pgRestore, err := FindBinary("", "pg_restore", 0)
	require.NoError(t, err)
	list := exec.Command(pgRestore, "--list")
	list.Stdin = bytes.NewReader(dump)
	toc, err := list.Output()
	require.NoError(t, err)
	require.Contains(t, string(toc), "TABLE DATA public bk_people")
}

// A zstd program that fails mid-stream fails the backup, and nothing complete-looking is left:
// no manifest, no object, no unfinished upload.
func TestFailedCompressionLeavesNothing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	dir := t.TempDir()
	script := "#!/bin/sh\nhead -c 100000 >/dev/null\nhead -c 12000000 /dev/urandom\necho 'zstd: error 70 : Write error : No space left' >&2\nexit 1\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "zstd"), []byte(script), 0o755))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	f.store.PartSize = 5 << 20
	_, err := Run(ctx, f.store, f.opts)
	require.ErrorContains(t, err, "zstd failed")
	require.True(t, strings.Contains(err.Error(), "No space left"), err.Error())

	requireNothingStored(t, f)
}
