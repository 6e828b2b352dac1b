package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/api"
)

func (a *app) tokenCmd() *cobra.Command {
	var userID, role, dataDir string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token --user ID --role ROLE",
		Short: "Mint an API token for a service account or development (JWT_SECRET or JWT_SECRET_FILE), at most OPERATOR_TOKEN_MAX_TTL",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := uuid.Parse(userID)
			if err != nil {
				return errors.New("--user must be a user id (UUID)")
			}
			if limit := a.cfg.SignIn.OperatorTokenMaxTTL; ttl <= 0 || (limit > 0 && ttl > limit) {
				return fmt.Errorf("--ttl must be positive and at most OPERATOR_TOKEN_MAX_TTL (%s); people sign in with POST /api/v1/auth/login instead", limit)
			}
			secret, err := a.jwtSecret(dataDir)
			if err != nil {
				return err
			}
			tok, err := api.IssueToken(secret, id, api.Role(role), ttl, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&userID, "user", "", "the user id the token speaks for (required)")
	cmd.Flags().StringVar(&role, "role", "fan", "fan, creator, council, admin or service")
	cmd.Flags().StringVar(&dataDir, "data-dir", ".data", "where `orchestrator dev` keeps its generated secret")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long the token is valid")
	_ = cmd.MarkFlagRequired("user")
	return cmd
}

// jwtSecret is JWT_SECRET (or JWT_SECRET_FILE), else the secret `orchestrator dev` generated
// under dataDir, so dev tokens work against `make run` with no set-up.
func (a *app) jwtSecret(dataDir string) ([]byte, error) {
	if len(a.cfg.Auth.JWTSecret) > 0 {
		return a.cfg.Auth.JWTSecret, nil
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "jwt-secret"))
	if err != nil {
		return nil, a.cfg.RequireJWTSecret()
	}
	return []byte(strings.TrimSpace(string(b))), nil
}
