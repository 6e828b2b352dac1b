//go:build !nodev

package stack

import (
	"context"
	"path/filepath"

	"github.com/creatorvault/orchestrator/internal/config"
)

// devTreasuryIntegrity fills in the dev defaults of the treasury's integrity checks: the
// timelock floor is switched off (dev tours use minutes), and when dev runs its own local
// Horizon, a demo anchor account (<dataDir>/treasury/anchor.secret) publishes the chain head.
// It runs before devTreasury, which creates the anchor account on the local Horizon.
func devTreasuryIntegrity(_ context.Context, cfg *config.Config, dataDir string, _ *cleanup) ([]string, error) {
	in := &cfg.Treasury.Integrity
	in.AllowShortTimelock = true
	lines := []string{"BAILOUT_TIMELOCK_UNSAFE is set (dev): BAILOUT_TIMELOCK=" + cfg.Treasury.Timelock.String() +
		" is accepted even under the 14-day floor that `orchestrator worker` and `api` enforce"}
	if cfg.Treasury.HorizonURL == "" && in.AnchorAccount == "" {
		path := filepath.Join(dataDir, "treasury", "anchor.secret")
		kp, err := loadOrCreateKey(path)
		if err != nil {
			return nil, err
		}
		in.AnchorAccount, in.AnchorSeedFile = kp.Address(), path
		lines = append(lines, "treasury chain anchored by (demo): "+in.AnchorAccount+" ("+path+")")
	}
	return lines, nil
}
