package activities

import (
	"context"
	"errors"
	"time"

	"github.com/creatorvault/orchestrator/pitr"
)

// PITR drives pgBackRest for point-in-time recovery. Its worker runs beside the database
// (pgBackRest reads the data directory), on the pitr task queue.
type PITR struct {
	// Engine is nil when PITR_CIPHER_PASS is not set: every activity then fails, without retry,
	// with pitr.ErrNoCipherPass.
	Engine         *pitr.Engine
	HeartbeatEvery time.Duration
	// RuntimeTemplate and TreasuryTemplate are DATABASE_URL and TREASURY_DATABASE_URL: a PITR
	// drill's serving check connects with them to the restored server.
	RuntimeTemplate, TreasuryTemplate string
}

// PhysicalBackupRunResult is a physical backup as the repository lists it.
type PhysicalBackupRunResult struct {
	Label     string
	Kind      string
	Prior     string
	Started   time.Time
	Stopped   time.Time
	RepoBytes int64
	// Backups is how many backups the repository holds after it.
	Backups int
}

func (a *PITR) engine() (*pitr.Engine, error) {
	if a.Engine == nil {
		return nil, nonRetryable("pitr_config", pitr.ErrNoCipherPass)
	}
	return a.Engine, nil
}

// Setup writes pgBackRest's configuration, creates the stanza (idempotent) and checks that
// archiving reaches the repository.
func (a *PITR) Setup(ctx context.Context) error {
	e, err := a.engine()
	if err != nil {
		return err
	}
	if err := e.WriteConfig(); err != nil {
		return nonRetryable("pitr_config", err)
	}
	if err := e.StanzaCreate(ctx); err != nil {
		return err
	}
	return e.Check(ctx)
}

// Backup makes a physical backup of kind (full or diff) and reports it from the catalog.
func (a *PITR) Backup(ctx context.Context, kind string) (PhysicalBackupRunResult, error) {
	e, err := a.engine()
	if err != nil {
		return PhysicalBackupRunResult{}, err
	}
	if kind != string(pitr.Full) && kind != string(pitr.Diff) {
		return PhysicalBackupRunResult{}, nonRetryable("pitr_kind", errors.New("pitr: backup kind must be full or diff"))
	}
	stop := heartbeat(ctx, a.HeartbeatEvery, func() any { return "pgbackrest backup --type=" + kind })
	err = e.Backup(ctx, pitr.Kind(kind))
	stop()
	if err != nil {
		pitr.ObserveBackupFailure(pitr.Kind(kind))
		return PhysicalBackupRunResult{}, err
	}
	info, err := e.Info(ctx)
	if err != nil {
		return PhysicalBackupRunResult{}, err
	}
	pitr.ObserveInfo(info)
	bs := info.Sorted()
	if len(bs) == 0 {
		return PhysicalBackupRunResult{}, errors.New("pitr: the backup is not in the repository's catalog")
	}
	b := bs[len(bs)-1]
	return PhysicalBackupRunResult{Label: b.Label, Kind: string(b.Type), Prior: b.Prior, Started: b.Started(), Stopped: b.Stopped(),
		RepoBytes: b.Info.Repository.Size, Backups: len(bs)}, nil
}

// Expire applies the retention policy (PITR_RETENTION_FULL, PITR_RETENTION_DIFF).
func (a *PITR) Expire(ctx context.Context) error {
	e, err := a.engine()
	if err != nil {
		return err
	}
	return e.Expire(ctx)
}
