package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// docs/DR.md's way back for a backup from before the role bootstrap (its objects belong to the
// old application user): on a new server, create that role and the database, restore without
// --create (the serving check fails and the database stays), then `db bootstrap
// --reassign-from` and `migrate up`: the data is there and the application's roles serve it.
func TestRestoreABackupFromBeforeTheRoles(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	adminURL, oldUser, oldURL := oldInstall(t)
	old, err := db.Open(ctx, oldURL)
	require.NoError(t, err)
	fan := uuid.New()
	_, err = old.Exec(ctx, `INSERT INTO users (id, role, display_name) VALUES ($1, 'fan', 'Old Fan')`, fan)
	require.NoError(t, err)
	_, err = db.NewTreasury(old).RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 50_000, OccurredAt: time.Now()})
	require.NoError(t, err)
	old.Close()
	s := testharness.NewS3(t)
	st := backup.Store{S3: s.Client, Bucket: s.Bucket}
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	idFile := filepath.Join(t.TempDir(), "identity.txt")
	require.NoError(t, os.WriteFile(idFile, []byte(id.String()+"\n"), 0o600))
	_, err = backup.Run(ctx, st, backup.Options{ID: "pre-roles", DatabaseURL: adminURL, Recipients: []string{id.Recipient().String()}})
	require.NoError(t, err)

	// The new server, with the old user and an empty database made by hand.
	c, err := pgcluster.StartCluster(ctx, filepath.Join(t.TempDir(), "pg"), pgcluster.ClusterOptions{Ephemeral: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })
	super, err := db.Open(ctx, c.URL("postgres"))
	require.NoError(t, err)
	for _, stmt := range []string{`CREATE ROLE ` + oldUser, `CREATE DATABASE orchestrator`} {
		_, err = super.Exec(ctx, stmt)
		require.NoError(t, err)
	}
	super.Close()
	target := c.URL("orchestrator")
	as := func(role string) string { return asUser(t, target, role, "pw-"+role) }
	env := []string{"S3_ENDPOINT=" + s.Config.Endpoint, "S3_BUCKET=" + s.Bucket,
		"DATABASE_URL=" + as(db.AppRole), "TREASURY_DATABASE_URL=" + as(db.TreasuryLoginRole),
		"MIGRATE_DATABASE_URL=" + as(db.OwnerRole), "BACKUP_DATABASE_URL=" + as(db.BackupRole)}

	code, out, errOut := run(t, env, "restore", "--backup", "pre-roles", "--target", target, "--identity", idFile)
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "fingerprint matches")
	require.Contains(t, errOut, "does not serve the application")
	code, out, errOut = run(t, env, "db", "bootstrap", "--admin-url", target, "--reassign-from", oldUser)
	require.Zero(t, code, out+errOut)
	code, out, errOut = run(t, env, "migrate", "up")
	require.Zero(t, code, out+errOut)

	rep, err := db.ServingCheck(ctx, as(db.AppRole), as(db.TreasuryLoginRole))
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Failed())
	app, err := db.Open(ctx, as(db.AppRole))
	require.NoError(t, err)
	defer app.Close()
	var name string
	require.NoError(t, app.QueryRow(ctx, `SELECT display_name FROM users WHERE id = $1`, fan).Scan(&name))
	require.Equal(t, "Old Fan", name)
	tr, err := db.Open(ctx, as(db.TreasuryLoginRole))
	require.NoError(t, err)
	defer tr.Close()
	bal, err := db.NewTreasury(tr).Balances(ctx)
	require.NoError(t, err)
	require.NotEmpty(t, bal)
}
