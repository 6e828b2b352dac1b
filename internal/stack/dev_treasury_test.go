//go:build !nodev

package stack

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/internal/config"
)

func TestDevTreasuryDefaults(t *testing.T) {
	dir := t.TempDir()
	setup := func() *config.Config {
		cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
		require.NoError(t, err)
		var stack cleanup
		lines, err := devTreasury(context.Background(), cfg, dir, &stack)
		require.NoError(t, err)
		require.NotEmpty(t, lines)
		t.Cleanup(func() {
			for _, c := range stack {
				_ = c.fn()
			}
		})
		return cfg
	}
	cfg := setup()
	require.NoError(t, contracts.ValidateCouncil(cfg.Treasury.CouncilKeys))
	for i := 1; i <= 5; i++ {
		path := filepath.Join(dir, "council", strconv.Itoa(i)+".secret")
		st, err := os.Stat(path)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), st.Mode().Perm())
		b, err := os.ReadFile(path)
		require.NoError(t, err)
		kp, err := keypair.ParseFull(string(b[:len(b)-1]))
		require.NoError(t, err)
		require.Equal(t, cfg.Treasury.CouncilKeys[i-1], kp.Address())
	}
	require.True(t, contracts.ValidAccount(cfg.Treasury.Account))
	require.True(t, contracts.ValidAccount(cfg.Treasury.USDCIssuer))
	resp, err := http.Get(cfg.Treasury.HorizonURL + "/accounts/" + cfg.Treasury.Account)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)

	again := setup() // a restart keeps the same keys and account
	require.Equal(t, cfg.Treasury.CouncilKeys, again.Treasury.CouncilKeys)
	require.Equal(t, cfg.Treasury.Account, again.Treasury.Account)
}
