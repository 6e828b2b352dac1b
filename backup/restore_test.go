package backup

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"

	"filippo.io/age"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

// databaseExists reports whether a database of that name is on the test server.
func databaseExists(t *testing.T, name string) bool {
	t.Helper()
	var n int
	require.NoError(t, testharness.Pool(t).QueryRow(context.Background(), `SELECT count(*) FROM pg_database WHERE datname = $1`, name).Scan(&n))
	return n > 0
}

func mustDatabase(t *testing.T, u string) string {
	t.Helper()
	name, err := urlDatabase(u)
	require.NoError(t, err)
	return name
}

// With Jobs > 1 the restore streams: nothing is written under TMPDIR (pointed at a directory
// that does not exist, so any temporary file would fail the restore), the data goes through
// one pg_restore reading the stream, indexes and constraints are built in parallel from the
// table of contents held in memory, and the staging database is gone afterwards.
func TestRestoreParallelWritesNothingToDisk(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, f.ownerURL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `
		CREATE TABLE bk_orders (id int PRIMARY KEY, person uuid NOT NULL REFERENCES bk_people (id), note text);
		INSERT INTO bk_orders SELECT g, (SELECT id FROM bk_people ORDER BY name LIMIT 1 OFFSET g % 500), 'order ' || g FROM generate_series(1, 2000) g;
		CREATE INDEX bk_orders_note ON bk_orders (note);`)
	require.NoError(t, err)
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)

	t.Setenv("TMPDIR", "/nonexistent/restore-must-not-write-here")
	target := emptyDB(t)
	res, err := Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}, Jobs: 3})
	require.NoError(t, err)
	require.Empty(t, res.Mismatches)
	require.Positive(t, res.Download)
	require.Positive(t, res.Restore)
	require.Positive(t, res.Verify)

	tp, err := pgxpool.New(ctx, target)
	require.NoError(t, err)
	defer tp.Close()
	var indexes, fks int
	require.NoError(t, tp.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE tablename = 'bk_orders'`).Scan(&indexes))
	require.Equal(t, 2, indexes, "the post-data section (primary key and index) was restored")
	require.NoError(t, tp.QueryRow(ctx, `SELECT count(*) FROM pg_constraint WHERE conrelid = 'bk_orders'::regclass AND contype = 'f'`).Scan(&fks))
	require.Equal(t, 1, fks, "the foreign key was restored")
	require.False(t, databaseExists(t, stagingName(mustDatabase(t, target), m.ID)), "the staging database was renamed into place")
}

// A fingerprint that does not match leaves the target as it was and drops the staging
// database.
func TestRestoreMismatchLeavesTargetUntouched(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)
	// The manifest promises one more row than the backup holds.
	m.Tables[0].Rows++
	body, err := json.Marshal(m)
	require.NoError(t, err)
	putObject(t, f.store, f.store.ManifestKey(m.ID), body)

	target := emptyDB(t)
	res, err := Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}, Jobs: 2})
	require.ErrorIs(t, err, ErrMismatch)
	require.ErrorContains(t, err, "nothing was restored")
	require.NotEmpty(t, res.Mismatches)
	require.Zero(t, tableCount(t, target), "the target must not be touched")
	require.False(t, databaseExists(t, stagingName(mustDatabase(t, target), m.ID)), "the staging database is dropped")
}

// A missing target is refused unless Create, which makes it.
func TestRestoreCreatesTarget(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)
	pg := testharness.Postgres(t)
	name := "test_bk_created_" + randHex(5)
	target := withDatabase(pg.AdminURL, name)
	t.Cleanup(func() { _ = pg.Server.DropDatabase(context.Background(), name) })

	_, err = Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}})
	require.ErrorContains(t, err, "does not exist; create it or pass --create")
	require.False(t, databaseExists(t, name))
	_, err = Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}, Create: true})
	require.NoError(t, err)
	require.Empty(t, Compare(m.Tables, mustFingerprint(t, target)))
}

// The fingerprint and the dump read the same snapshot: rows written while the backup runs
// are in neither, so the restored data matches the manifest.
func TestBackupFingerprintIsTheDumpsSnapshot(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, f.ownerURL)
	require.NoError(t, err)
	defer pool.Close()
	var stop atomic.Bool
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Go(func() {
		for !stop.Load() {
			if _, err := pool.Exec(ctx, `INSERT INTO bk_people (name) VALUES ('during the backup');
				UPDATE bk_other."Mixed Case" SET ok = NOT ok WHERE k = 1`); err == nil {
				writes.Add(1)
			}
		}
	})
	m, err := Run(ctx, f.store, f.opts)
	stop.Store(true)
	wg.Wait()
	require.NoError(t, err)
	require.Positive(t, writes.Load())
	target := emptyDB(t)
	_, err = Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}})
	require.NoError(t, err, "the restored dump matches the fingerprint taken beside it")
}

// readTOC returns exactly the header and table of contents: pg_restore lists the same
// entries from those bytes alone as from the whole archive.
func TestReadTOC(t *testing.T) {
	f := newFixture(t)
	pgDump, err := FindBinary("", "pg_dump", 15)
	require.NoError(t, err)
	pgRestore, err := FindBinary("", "pg_restore", 15)
	require.NoError(t, err)
	args, _, err := pgArgs(f.srcURL)
	require.NoError(t, err)
	full, err := exec.Command(pgDump, append([]string{"--format=custom", "--compress=0"}, args...)...).Output()
	require.NoError(t, err)
	toc, err := readTOC(bufio.NewReader(bytes.NewReader(full)))
	require.NoError(t, err)
	require.Less(t, len(toc), len(full))
	require.Equal(t, full[:len(toc)], toc)
	require.NotContains(t, string(toc), secretMarker, "the table of contents holds no table data")

	list := func(archive []byte) string {
		cmd := exec.Command(pgRestore, "--list")
		cmd.Stdin = bytes.NewReader(archive)
		out, err := cmd.Output()
		require.NoError(t, err)
		return string(out)
	}
	require.Equal(t, list(full), list(toc))

	_, err = readTOC(bufio.NewReader(bytes.NewReader([]byte("PGDMP\x01\x09\x00\x04\x08\x01"))))
	require.ErrorContains(t, err, "not one this reader knows")
}

// The staging database takes the target's place with the target's database-level privileges
// and settings (the role bootstrap revokes CONNECT from PUBLIC; a dump does not hold that).
func TestRestoreKeepsDatabasePrivilegesAndSettings(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	m, err := Run(ctx, f.store, f.opts)
	require.NoError(t, err)
	target := emptyDB(t)
	name := mustDatabase(t, target)
	conn, err := pgxpool.New(ctx, withDatabase(target, "postgres"))
	require.NoError(t, err)
	defer conn.Close()
	db := pgx.Identifier{name}.Sanitize()
	for _, q := range []string{
		"REVOKE ALL ON DATABASE " + db + " FROM PUBLIC",
		"GRANT CONNECT ON DATABASE " + db + " TO pg_monitor",
		"ALTER DATABASE " + db + " SET work_mem = '7MB'",
		"ALTER ROLE CURRENT_USER IN DATABASE " + db + " SET statement_timeout = '5s'",
	} {
		_, err := conn.Exec(ctx, q)
		require.NoError(t, err, q)
	}
	read := func() (acl string, settings []string) {
		require.NoError(t, conn.QueryRow(ctx, `
			SELECT coalesce((SELECT string_agg(CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END
				|| ':' || a.privilege_type, ',' ORDER BY 1) FROM aclexplode(datacl) a WHERE a.grantee <> datdba), '')
			FROM pg_database WHERE datname = $1`, name).Scan(&acl))
		rows, err := conn.Query(ctx, `
			SELECT coalesce(pg_get_userbyid(nullif(s.setrole, 0)), '*') || ' ' || c
			FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
			WHERE d.datname = $1 ORDER BY 1`, name)
		require.NoError(t, err)
		settings, err = pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		return acl, settings
	}
	wantACL, wantSettings := read()
	require.Equal(t, "pg_monitor:CONNECT", wantACL)
	require.Len(t, wantSettings, 2)

	_, err = Restore(ctx, f.store, RestoreOptions{ID: m.ID, TargetURL: target, Identities: []age.Identity{f.identity}, Jobs: 2})
	require.NoError(t, err)
	acl, settings := read()
	require.Equal(t, wantACL, acl, "PUBLIC still may not connect; pg_monitor still may")
	require.Equal(t, wantSettings, settings)
	require.Empty(t, Compare(m.Tables, mustFingerprint(t, target)))
}

// A restore fingerprints a large table in ranges of its blocks on several connections: the
// ranges add up to the fingerprint of the whole table, with no row left out or counted twice
// (holes left by deleted rows included).
func TestFingerprintInRangesAddsUp(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, f.ownerURL)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, `
		CREATE TABLE bk_ranges (id int PRIMARY KEY, note text);
		INSERT INTO bk_ranges SELECT g, repeat('range ' || g, 20) FROM generate_series(1, 3000) g;
		DELETE FROM bk_ranges WHERE id % 7 = 0`)
	require.NoError(t, err)
	whole, err := Fingerprint(ctx, f.ownerURL)
	require.NoError(t, err)

	conn, err := pgx.Connect(ctx, f.ownerURL)
	require.NoError(t, err)
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	require.NoError(t, err)
	names, err := listTables(ctx, tx)
	require.NoError(t, err)
	tasks, err := fingerprintTasks(ctx, tx, names, 3, 1)
	require.NoError(t, err)
	require.NoError(t, tx.Rollback(ctx))
	require.Greater(t, len(tasks), len(names)+5, "bk_ranges (and bk_people) are split into 6 ranges each")

	split, err := fingerprintDB(ctx, f.ownerURL, 3, 1)
	require.NoError(t, err)
	require.Equal(t, whole, split)
	require.Empty(t, Compare(whole, split))

	// The hash is the one manifests written by earlier versions hold (they summed the
	// bigints as numerics).
	tx, err = conn.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(ctx) }()
	require.NoError(t, fingerprintSession(ctx, tx))
	for _, tb := range whole {
		var rows int64
		var hash string
		require.NoError(t, tx.QueryRow(ctx, `SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text FROM `+tb.Name+` t`).Scan(&rows, &hash))
		require.Equal(t, Table{Name: tb.Name, Rows: rows, Hash: hash}, tb)
	}
}
