package activities

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
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

// The issue's `rm -rf .data`: the catalog lists a complete backup whose objects went with the
// dev object store. A drill resolves backups from the manifests in the store, not the
// catalog: with none there it fails at once with one clear non-retryable error (not "no
// manifest" after a restore began), the catalog marks the lost backup missing, and a backup
// the catalog never knew is found.
func TestDrillResolvesBackupsFromTheStore(t *testing.T) {
	ctx := context.Background()
	pg := testharness.FreshPG(t)
	s := testharness.NewS3(t)
	st := backup.Store{S3: s.Client, Bucket: s.Bucket}
	require.NoError(t, db.StartBackup(ctx, pg.Pool, "wiped", "nightly", st.ObjectKey("wiped"), time.Now().Add(-time.Hour)))
	fin := time.Now()
	require.NoError(t, db.CompleteBackup(ctx, pg.Pool, db.Backup{ID: "wiped", FinishedAt: &fin}))

	a := &Drill{Pool: pg.Pool, Store: st}
	resolve := func(id string) (string, error) {
		var ts testsuite.WorkflowTestSuite
		env := ts.NewTestActivityEnvironment()
		env.RegisterActivity(a)
		v, err := env.ExecuteActivity(a.ResolveBackup, id)
		if err != nil {
			return "", err
		}
		var got string
		require.NoError(t, v.Get(&got))
		return got, nil
	}
	nonRetryable := func(err error) {
		t.Helper()
		var appErr *temporal.ApplicationError
		require.True(t, errors.As(err, &appErr), err)
		require.True(t, appErr.NonRetryable(), err)
	}

	_, err := resolve("")
	require.ErrorContains(t, err, "no complete backup in s3://"+s.Bucket)
	nonRetryable(err)
	row, err := db.GetBackup(ctx, pg.Pool, "wiped")
	require.NoError(t, err)
	require.Equal(t, "missing", row.Status)
	_, err = resolve("wiped")
	require.ErrorContains(t, err, "no manifest")
	nonRetryable(err)

	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	_, err = backup.Run(ctx, st, backup.Options{ID: "only-in-store", DatabaseURL: pg.BackupURL, Recipients: []string{id.Recipient().String()}})
	require.NoError(t, err)
	got, err := resolve("")
	require.NoError(t, err)
	require.Equal(t, "only-in-store", got)
	row, err = db.GetBackup(ctx, pg.Pool, "only-in-store")
	require.NoError(t, err)
	require.Equal(t, "complete", row.Status)
}

// Two drills with the same id (two Temporal deployments sharing a drill server started a
// manual drill in the same second) restore into different scratch databases: before the run id
// was in the name, one dropped the other's WITH (FORCE) mid-restore (seen with two test
// processes on one PostgreSQL). The name stays a valid identifier however long the id.
func TestScratchNamePerRun(t *testing.T) {
	id := "drill-manual-20261207T150405Z"
	a := ScratchName(id, "0b7c2a44-1f8e-4c1e-9a57-1c6e2f3d4b5a")
	b := ScratchName(id, "9f1d0c33-2a7e-4b1f-8c46-0d5e1f2a3b4c")
	require.NotEqual(t, a, b)
	require.Equal(t, "drill_drill_manual_20261207t150405z_0b7c2a44", a)
	long := strings.Repeat("x", 200)
	n := ScratchName(long, "0b7c2a44-1f8e")
	require.LessOrEqual(t, len(n), 63)
	require.True(t, strings.HasSuffix(n, "_0b7c2a44"), n)
	require.NotEqual(t, legacyScratchName(id), a)
	require.Equal(t, "drill_drill_manual_20261207t150405z", ScratchName(id, ""))
}
