package activities

import (
	"context"
	"errors"
	"testing"

	"filippo.io/age"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
)

func TestSameServer(t *testing.T) {
	cases := []struct {
		a, b string
		same bool
	}{
		{"postgres://u@localhost:5432/app", "postgres://v:pw@127.0.0.1:5432/postgres", true},
		{"postgres://u@db.prod:5432/app", "postgres://u@DB.prod/other", true},
		{"postgres://u@db.prod:5432/app", "postgres://u@db.drill:5432/app", false},
		{"postgres://u@127.0.0.1:5432/app", "postgres://u@127.0.0.1:5433/app", false},
		{"postgres://u@db.prod/app", "", false},
	}
	for _, c := range cases {
		require.Equal(t, c.same, SameServer(c.a, c.b), "%s vs %s", c.a, c.b)
	}
}

// Outside dev a drill refuses, before anything is touched, to restore onto the production
// server, and says how to name a drill server.
func TestDrillRefusesTheProductionServer(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	a := &Drill{Identities: []age.Identity{id}, ServerURL: "postgres://admin@db.prod:5432/postgres",
		ProductionURL: "postgres://orchestrator_app@db.prod:5432/orchestrator"}
	_, err = a.Restore(context.Background(), DrillRestoreInput{DrillID: "d1", BackupID: "b1"})
	require.ErrorIs(t, err, ErrProductionServer)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr))
	require.True(t, appErr.NonRetryable())
	require.Contains(t, err.Error(), "DRILL_DATABASE_URL")
}
