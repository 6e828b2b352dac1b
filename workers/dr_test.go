package workers

import (
	"context"
	"encoding/hex"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/devserver"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/recovery"
	"github.com/creatorvault/orchestrator/workflows"
)

// In-flight work survives the loss of everything but the object store, following
// docs/DR.md: a bailout waits with three of five approvals; the nightly backup takes the
// application's data and Temporal's state under one manifest; the server and its state file
// are lost; the restore brings both back into a new database and a new file; a fresh
// Temporal server and worker on them find the bailout still pending with its three
// approvals and its original unlock time, and it completes with the last two.
func TestDisasterRecoveryKeepsAPendingBailout(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// The old system: the embedded server on a state file, the application database, S3.
	oldDir, newDir := t.TempDir(), t.TempDir()
	oldState := filepath.Join(oldDir, "temporal.db")
	oldServer, err := devserver.Start(ctx, devserver.Options{DatabaseFile: oldState})
	require.NoError(t, err)
	t.Cleanup(func() { _ = oldServer.Stop() })
	oldClient, err := client.DialContext(ctx, client.Options{HostPort: oldServer.FrontendAddr()})
	require.NoError(t, err)
	require.NoError(t, EnsureSearchAttributes(ctx, oldClient, "default"))
	pg := testharness.FreshPG(t)
	pool := pg.Pool
	s := testharness.NewS3(t)
	st := backup.Store{S3: s.Client, Bucket: s.Bucket}
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)

	var council []*keypair.Full
	var keys []string
	for range 5 {
		kp := keypair.MustRandom()
		council, keys = append(council, kp), append(keys, kp.Address())
	}
	treasuryAcct := keypair.MustRandom().Address()
	hz := localhorizon.New(config.TestnetPassphrase)
	hz.AddAccount(treasuryAcct, 4_000_000, keys)
	horizon := httptest.NewServer(hz)
	defer horizon.Close()
	cfg, err := config.LoadFrom(func(string) (string, bool) { return "", false })
	require.NoError(t, err)
	cfg.DatabaseURL, cfg.Treasury.DatabaseURL, cfg.Backup.DatabaseURL, cfg.S3 = pg.URL, pg.TreasuryURL, pg.BackupURL, s.Config
	cfg.Treasury.HorizonURL, cfg.Treasury.Account, cfg.Treasury.CouncilKeys = horizon.URL, treasuryAcct, keys
	cfg.Treasury.NetworkPassphrase = config.TestnetPassphrase
	cfg.Backup.Recipients = []string{id.Recipient().String()}
	cfg.Backup.TemporalSQLiteFile = oldState
	_, err = db.NewTreasury(pg.TreasuryPool).RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 100_000_000_000, OccurredAt: time.Now()})
	require.NoError(t, err)

	oldCtx, stopOld := context.WithCancel(ctx)
	oldDone := make(chan error, 1)
	go func() {
		oldDone <- Run(oldCtx, Deps{Client: oldClient, Pool: pool, TreasuryPool: pg.TreasuryPool, S3: s.Client, Config: cfg, Logger: testharness.Logger(t)},
			[]string{workflows.TreasuryQueue, workflows.BackupTaskQueue})
	}()

	req := contracts.BailoutRequest{Asset: "XLM", AmountStroops: 250_000_000, Destination: keypair.MustRandom().Address(), Reason: "dr " + uuid.NewString()}
	bid := contracts.BailoutID(req)
	in := workflows.BailoutInput{ID: bid, Request: req, RequestedAt: time.Now().UTC(), Timelock: 20 * time.Second, Grace: time.Hour, Council: keys}
	wid := workflows.BailoutWorkflowID(bid)
	_, err = oldClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: wid, TaskQueue: workflows.TreasuryQueue,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE}, workflows.BailoutWorkflowName, in)
	require.NoError(t, err)
	before := bailoutStatus(t, ctx, oldClient, wid, func(st workflows.BailoutStatus) bool { return st.State == workflows.StatePending })
	hash, err := hex.DecodeString(before.TxHash)
	require.NoError(t, err)
	for _, kp := range council[:3] {
		approveBailout(t, ctx, oldClient, wid, kp, hash)
	}
	before = bailoutStatus(t, ctx, oldClient, wid, func(st workflows.BailoutStatus) bool { return len(st.Approvals) == 3 })

	// The nightly backup: application data and Temporal's state under one manifest.
	brun, err := oldClient.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "dr-backup", TaskQueue: workflows.BackupTaskQueue},
		workflows.BackupWorkflow, workflows.BackupInput{Kind: "nightly"})
	require.NoError(t, err)
	var bres workflows.BackupResult
	require.NoError(t, brun.Get(ctx, &bres))
	m, err := backup.ReadManifest(ctx, st, bres.BackupID)
	require.NoError(t, err)
	require.Len(t, m.Parts, 1)
	require.Equal(t, backup.PartSQLite, m.Parts[0].Kind)

	// Disaster: the worker, the Temporal server and its state file are gone.
	stopOld()
	<-oldDone
	oldClient.Close()
	require.NoError(t, oldServer.Stop())
	require.NoError(t, os.Remove(oldState))

	// docs/DR.md step 4: restore the application and Temporal's state.
	name := "test_dr_" + hex.EncodeToString([]byte(bid.String()[:6]))
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })
	target := pg.Server.DatabaseURL(name)
	newState := filepath.Join(newDir, "temporal.db")
	ropts := recovery.Options{Store: st, Manifest: m, TargetURL: target, Create: true,
		Identities: []age.Identity{id}, WithTemporal: true, TemporalFile: newState,
		RuntimeTemplate: cfg.DatabaseURL, TreasuryTemplate: cfg.Treasury.DatabaseURL}
	res, err := recovery.Restore(ctx, ropts)
	require.NoError(t, err)
	require.True(t, res.Serving.OK, res.Serving.Failed())
	require.Equal(t, []string{"temporal-sqlite"}, res.Temporal)

	// Step 5: a fresh Temporal server and worker on the restored state.
	newServer, err := devserver.Start(ctx, devserver.Options{DatabaseFile: newState})
	require.NoError(t, err)
	t.Cleanup(func() { _ = newServer.Stop() })
	newClient, err := client.DialContext(ctx, client.Options{HostPort: newServer.FrontendAddr()})
	require.NoError(t, err)
	defer newClient.Close()
	// The new worker connects as the roles the restore bootstrapped (as production would).
	cfg.DatabaseURL, cfg.Treasury.DatabaseURL = recovery.ServingURLs(ropts)
	restoredPool, err := db.Open(ctx, cfg.DatabaseURL)
	require.NoError(t, err)
	defer restoredPool.Close()
	restoredTreasury, err := db.Open(ctx, cfg.Treasury.DatabaseURL)
	require.NoError(t, err)
	defer restoredTreasury.Close()
	newCtx, stopNew := context.WithCancel(ctx)
	newDone := make(chan error, 1)
	go func() {
		newDone <- Run(newCtx, Deps{Client: newClient, Pool: restoredPool, TreasuryPool: restoredTreasury, S3: s.Client, Config: cfg, Logger: testharness.Logger(t)},
			[]string{workflows.TreasuryQueue})
	}()
	defer func() { stopNew(); <-newDone }()

	after := bailoutStatus(t, ctx, newClient, wid, func(workflows.BailoutStatus) bool { return true })
	require.Equal(t, workflows.StatePending, after.State)
	require.Len(t, after.Approvals, 3)
	require.True(t, before.UnlockAt.Equal(after.UnlockAt), "original unlock time %s, now %s", before.UnlockAt, after.UnlockAt)
	for _, kp := range council[3:] {
		approveBailout(t, ctx, newClient, wid, kp, hash)
	}
	var final workflows.BailoutStatus
	require.NoError(t, newClient.GetWorkflow(ctx, wid, "").Get(ctx, &final))
	require.Equal(t, workflows.StateExecuted, final.State, final.Error)
	bo, err := db.NewTreasury(restoredTreasury).GetBailout(ctx, bid)
	require.NoError(t, err)
	require.Equal(t, db.BailoutExecuted, bo.State)
	require.Equal(t, 1, hz.Submitted())
}

func bailoutStatus(t *testing.T, ctx context.Context, c client.Client, wid string, ok func(workflows.BailoutStatus) bool) workflows.BailoutStatus {
	t.Helper()
	var st workflows.BailoutStatus
	require.Eventually(t, func() bool {
		v, err := c.QueryWorkflow(ctx, wid, "", workflows.BailoutStatusQuery)
		return err == nil && v.Get(&st) == nil && ok(st)
	}, time.Minute, 100*time.Millisecond)
	return st
}

func approveBailout(t *testing.T, ctx context.Context, c client.Client, wid string, kp *keypair.Full, hash []byte) {
	t.Helper()
	sig, err := kp.Sign(hash)
	require.NoError(t, err)
	u, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{WorkflowID: wid, UpdateName: workflows.BailoutApprove,
		Args:         []any{workflows.Approval{Signer: kp.Address(), Signature: activities.SignatureBase64(sig)}},
		WaitForStage: client.WorkflowUpdateStageCompleted})
	require.NoError(t, err)
	require.NoError(t, u.Get(ctx, nil))
}
