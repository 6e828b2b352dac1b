//go:build !nodev

package stack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"filippo.io/age"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/internal/config"
)

// devBackup fills in the backup domain's dev defaults: a demo age identity under
// <dataDir>/backup/identity.txt (0600, generated once). The backup worker gets only its
// public recipient; the identity file is for the drill worker and `orchestrator restore`.
//
// Dev has one PostgreSQL server, so drills may restore beside the application there; and
// when the embedded Temporal server runs, its SQLite state goes into every backup.
func devBackup(ctx context.Context, cfg *config.Config, dataDir string, stack *cleanup) ([]string, error) {
	_, _ = ctx, stack
	b := &cfg.Backup
	b.DrillAllowProductionServer = true
	if _, set := os.LookupEnv("TEMPORAL_ADDRESS"); !set && len(b.TemporalDatabaseURLs) == 0 {
		b.TemporalSQLiteFile = filepath.Join(dataDir, "temporal.db")
	}
	if len(b.Recipients) > 0 || b.RecipientsFile != "" || b.PassphraseFile != "" {
		return []string{"Backups      recipients from the environment"}, nil
	}
	path := filepath.Join(dataDir, "backup", "identity.txt")
	id, err := devIdentity(path)
	if err != nil {
		return nil, err
	}
	b.Recipients = []string{id.Recipient().String()}
	if b.IdentityFile == "" {
		b.IdentityFile = path
	}
	return []string{fmt.Sprintf("Backups      demo age identity %s (recipient %s)", path, id.Recipient())}, nil
}

// devIdentity reads the demo identity at path, generating it on first use.
func devIdentity(path string) (*age.X25519Identity, error) {
	ids, err := backup.ReadIdentities(path)
	if err == nil {
		if len(ids) == 1 {
			if x, ok := ids[0].(*age.X25519Identity); ok {
				return x, nil
			}
		}
		return nil, fmt.Errorf("demo backup identity %s: want one X25519 identity", path)
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("demo backup identity: %w", err)
	}
	id, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	body := "# demo backup identity of `orchestrator dev`; public key: " + id.Recipient().String() + "\n" + id.String() + "\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return nil, fmt.Errorf("demo backup identity: %w", err)
	}
	return id, nil
}
