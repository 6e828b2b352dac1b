//go:build !nodev

package stack

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/demo"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/password"
)

// DemoEmail is the sign-in email of a tour persona: GOLD_TOKEN's person signs in as
// gold@demo.example.
func DemoEmail(p demo.Persona) string {
	return strings.ToLower(strings.TrimSuffix(p.Var, "_TOKEN")) + "@demo.example"
}

// appendDemoSignIns gives the tour's people (every persona but the service account)
// credentials with one password generated once into dataDir/demo-password, and appends
// DEMO_PASSWORD and each persona's email to the tour's env file, so the tour signs in with
// POST /api/v1/auth/login as a user would. The password is set again on every start, so
// it matches the file even when the database outlived .data.
func appendDemoSignIns(ctx context.Context, path string, pool *pgxpool.Pool, d *demo.Dataset, cfg *config.Config, dataDir string) error {
	secret, err := devSecret(filepath.Join(dataDir, "demo-password"))
	if err != nil {
		return err
	}
	pw := string(secret)
	h, err := password.NewHasher(cfg.SignIn.Argon2)
	if err != nil {
		return fmt.Errorf("ARGON2_MEMORY_KIB: %w", err)
	}
	block := "\n# Sign in as a tour persona: POST /api/v1/auth/login with its email and DEMO_PASSWORD\n" +
		"export DEMO_PASSWORD=" + pw + "\n"
	now := time.Now()
	for _, p := range d.Personas() {
		if p.Role == "service" {
			continue // a service account keeps an operator-minted token
		}
		hash, err := h.Hash(pw)
		if err != nil {
			return err
		}
		email := DemoEmail(p)
		if err := db.CreateCredentials(ctx, pool, p.ID, email, hash, now); err != nil {
			if e, ok := db.AsError(err); !ok || e.Kind != db.KindConflict {
				return fmt.Errorf("demo sign-in for %s: %w", email, err)
			}
			if _, err := db.SetPasswordHash(ctx, pool, p.ID, hash, "", now); err != nil {
				return fmt.Errorf("demo sign-in for %s: %w", email, err)
			}
		}
		block += "export " + strings.TrimSuffix(p.Var, "_TOKEN") + "_EMAIL=" + email + "  # " + p.Who + "\n"
	}
	return appendEnvFile(path, block)
}

// appendEnvFile appends block to the tour's env file (created 0600 by WriteDemoEnv).
func appendEnvFile(path, block string) error {
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("demo env: %w", err)
	}
	if _, err := f.WriteString(block); err != nil {
		_ = f.Close()
		return fmt.Errorf("demo env: %w", err)
	}
	return f.Close()
}
