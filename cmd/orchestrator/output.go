package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/stack"
)

// printJSON writes v as indented JSON, the commands' machine-readable output.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// openPool connects to DATABASE_URL for the operator commands.
func (a *app) openPool(ctx context.Context) (*pgxpool.Pool, error) {
	if err := a.cfg.RequireDatabase(); err != nil {
		return nil, err
	}
	pool, err := db.Open(ctx, a.cfg.DatabaseURL)
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	return pool, nil
}

// temporalClient dials TEMPORAL_ADDRESS for the operator commands (SDK logs discarded).
func (a *app) temporalClient(ctx context.Context) (client.Client, error) {
	return stack.DialTemporal(ctx, a.cfg, slog.New(slog.DiscardHandler))
}
