package recovery

import (
	"context"
	"sort"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
)

// ReconcileCatalog reads every manifest in the object store (the truth) and makes the backup
// catalog agree with it, returning the drift it found. Drills, `backup list` and retention
// call it before they pick backups, so a lost or stale catalog never decides.
func ReconcileCatalog(ctx context.Context, pool *pgxpool.Pool, st backup.Store) (db.CatalogDrift, error) {
	l, err := backup.Scan(ctx, st)
	if err != nil {
		return db.CatalogDrift{}, err
	}
	unreadable := make([]string, 0, len(l.Unreadable))
	for id := range l.Unreadable {
		unreadable = append(unreadable, id)
	}
	sort.Strings(unreadable)
	return db.ReconcileBackups(ctx, pool, Stored(l.Manifests), unreadable)
}

// Stored converts manifests into what the catalog records of them.
func Stored(ms []*backup.Manifest) []db.StoredBackup {
	out := make([]db.StoredBackup, 0, len(ms))
	for _, m := range ms {
		out = append(out, db.StoredBackup{ID: m.ID, Kind: m.Kind, Database: m.Database, ServerVersion: m.ServerVersion,
			ObjectKey: m.Object, StartedAt: m.StartedAt, FinishedAt: m.FinishedAt, DumpBytes: m.DumpBytes,
			StoredBytes: m.StoredBytes, SHA256: m.SHA256, Tables: len(m.Tables)})
	}
	return out
}
