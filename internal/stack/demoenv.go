package stack

import (
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/api"
	"github.com/creatorvault/orchestrator/demo"
)

// WriteDemoEnv writes the tour's tokens as shell exports to path (0600: they are
// credentials).
func WriteDemoEnv(path string, d *demo.Dataset, secret []byte) error {
	env, err := d.Env(func(id uuid.UUID, role string) (string, error) {
		return api.IssueToken(secret, id, api.Role(role), 30*24*time.Hour, time.Now())
	})
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(env), 0o600); err != nil {
		return fmt.Errorf("demo tokens: %w", err)
	}
	return nil
}
