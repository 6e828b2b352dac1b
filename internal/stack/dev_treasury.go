package stack

import (
	"context"

	"github.com/creatorvault/orchestrator/internal/config"
)

// devTreasury fills in the treasury domain's dev defaults.
func devTreasury(ctx context.Context, cfg *config.Config, dataDir string, stack *cleanup) ([]string, error) {
	_, _, _, _ = ctx, cfg, dataDir, stack
	return nil, nil
}
