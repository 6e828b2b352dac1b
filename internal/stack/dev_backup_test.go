//go:build !nodev

package stack

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/config"
)

func TestDevBackupIdentity(t *testing.T) {
	dir := t.TempDir()
	cfg := &config.Config{}
	lines, err := devBackup(context.Background(), cfg, dir, nil)
	require.NoError(t, err)
	require.Len(t, lines, 1)
	path := filepath.Join(dir, "backup", "identity.txt")
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
	require.Len(t, cfg.Backup.Recipients, 1)
	require.Contains(t, cfg.Backup.Recipients[0], "age1")
	require.Equal(t, path, cfg.Backup.IdentityFile)
	require.NotContains(t, lines[0], "AGE-SECRET-KEY", "the banner shows only the public key")

	// A second start keeps the same identity.
	cfg2 := &config.Config{}
	_, err = devBackup(context.Background(), cfg2, dir, nil)
	require.NoError(t, err)
	require.Equal(t, cfg.Backup.Recipients, cfg2.Backup.Recipients)
}
