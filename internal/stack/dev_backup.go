package stack

import (
	"context"

	"github.com/creatorvault/orchestrator/internal/config"
)

// devBackup fills in the backup domain's dev defaults.
func devBackup(ctx context.Context, cfg *config.Config, dataDir string, stack *cleanup) ([]string, error) {
	_, _, _, _ = ctx, cfg, dataDir, stack
	return nil, nil
}
