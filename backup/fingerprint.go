package backup

import (
	"context"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"
)

// fingerprintSettings fix how values print, so the same data hashes the same on any server
// and session.
var fingerprintSettings = []string{
	"SET LOCAL TimeZone = 'UTC'",
	"SET LOCAL DateStyle = 'ISO, MDY'",
	"SET LOCAL IntervalStyle = 'postgres'",
	"SET LOCAL extra_float_digits = 1",
	"SET LOCAL bytea_output = 'hex'",
}

// fingerprintTx reads, inside tx (a REPEATABLE READ transaction), each ordinary table's row
// count and content hash: the sum, as a number, of the first 64 bits of each row's MD5. The
// sum does not depend on row order and needs constant memory on the server.
func fingerprintTx(ctx context.Context, tx pgx.Tx) ([]Table, error) {
	if err := fingerprintSession(ctx, tx); err != nil {
		return nil, err
	}
	names, err := listTables(ctx, tx)
	if err != nil {
		return nil, err
	}
	out := make([]Table, len(names))
	for i, name := range names {
		if out[i], err = tableHash(ctx, tx, name); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func fingerprintSession(ctx context.Context, tx pgx.Tx) error {
	for _, s := range fingerprintSettings {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("backup: fingerprint: %w", err)
		}
	}
	return nil
}

func listTables(ctx context.Context, tx pgx.Tx) ([]string, error) {
	rows, err := tx.Query(ctx, `
		SELECT format('%I.%I', n.nspname, c.relname)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND c.relpersistence = 'p'
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
		ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("backup: fingerprint: list tables: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("backup: fingerprint: list tables: %w", err)
	}
	return names, nil
}

// rowHashSum is the content hash of the rows of t: the sum, as a number, of the first 64
// bits of each row's MD5 (a signed bigint), as text. sum(bigint) is exact (a numeric, summed
// in 128-bit integers): the same value as summing the bigints cast to numeric, which
// manifests written before used, without a numeric addition per row.
const rowHashSum = `coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint), 0)::text`

// tableHash fingerprints one table; name comes from format('%I.%I'), quoted by the server.
func tableHash(ctx context.Context, tx pgx.Tx, name string) (Table, error) {
	t := Table{Name: name}
	q := `SELECT count(*), ` + rowHashSum + ` FROM ` + name + ` t`
	if err := tx.QueryRow(ctx, q).Scan(&t.Rows, &t.Hash); err != nil {
		return t, fmt.Errorf("backup: fingerprint %s: %w", name, err)
	}
	return t, nil
}

// Fingerprint reads the fingerprint of the database at dbURL in one consistent snapshot.
func Fingerprint(ctx context.Context, dbURL string) ([]Table, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("backup: connect: %w", err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	return fingerprintTx(ctx, tx)
}

// fingerprintDB fingerprints a database nobody else writes to (a restore's staging
// database) over up to n connections at once. Each task is read in a transaction of its own:
// the tables do not change, and a transaction held across tables would hold their locks and
// stall (or deadlock) the pg_restore jobs that add primary keys beside it. A large table is
// split into ranges of its blocks read on several connections (see fingerprintTasks), so one
// big table does not leave the others idle: a table above splitAbove blocks (splitBlocks).
func fingerprintDB(ctx context.Context, dbURL string, n int, splitAbove int64) ([]Table, error) {
	var conns []*pgx.Conn
	defer func() {
		for _, c := range conns {
			_ = c.Close(context.Background())
		}
	}()
	connect := func() (*pgx.Conn, error) {
		c, err := pgx.Connect(ctx, dbURL)
		if err != nil {
			return nil, fmt.Errorf("backup: fingerprint: connect: %w", err)
		}
		conns = append(conns, c)
		return c, nil
	}
	first, err := connect()
	if err != nil {
		return nil, err
	}
	var tasks []fingerprintTask
	var names []string
	if err := pgx.BeginFunc(ctx, first, func(tx pgx.Tx) (err error) {
		if names, err = listTables(ctx, tx); err != nil {
			return err
		}
		tasks, err = fingerprintTasks(ctx, tx, names, n, splitAbove)
		return err
	}); err != nil {
		return nil, err
	}
	for len(conns) < min(n, len(tasks)) {
		if _, err := connect(); err != nil {
			return nil, err
		}
	}
	sessions := make([]session, len(conns))
	for i, c := range conns {
		sessions[i] = func(ctx context.Context, fn func(pgx.Tx) error) error {
			return pgx.BeginTxFunc(ctx, c, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
				if err := fingerprintSession(ctx, tx); err != nil {
					return err
				}
				return fn(tx)
			})
		}
	}
	return runTasks(ctx, sessions, names, tasks)
}

// session runs fn in a transaction that reads what is to be fingerprinted, with the
// fingerprint's settings.
type session func(ctx context.Context, fn func(pgx.Tx) error) error

// runTasks runs the tasks over the sessions, each session one task at a time, and adds up
// the tables' counts and hashes.
func runTasks(ctx context.Context, sessions []session, names []string, tasks []fingerprintTask) ([]Table, error) {
	parts := make([]Table, len(tasks))
	next := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	for _, run := range sessions {
		g.Go(func() error {
			for i := range next {
				if err := run(gctx, func(tx pgx.Tx) (err error) {
					parts[i], err = tasks[i].hash(gctx, tx, names)
					return err
				}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(next)
		for i := range tasks {
			select {
			case next <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return sumParts(names, tasks, parts)
}

// splitBlocks is the size, in blocks (8 kB each by default), above which a table's
// fingerprint is read in several ranges of blocks at once: 64 MB.
const splitBlocks = 8192

// fingerprintTask is one table's rows, or those in a range of its blocks.
type fingerprintTask struct {
	table int
	// from and to are the task's first block and the block after its last; to < 0 means
	// the whole table from from on (the last range is open, so no row is ever left out).
	from, to int64
	split    bool
}

// fingerprintTasks lists the work of fingerprinting the named tables on n connections: a
// table larger than splitAbove blocks, on a server that scans ctid ranges (PostgreSQL 14 and
// later), becomes 2n ranges of its blocks (largest first, so the big ones start early). The
// sum of the ranges' counts and hashes is the table's: the hash is a sum over rows.
func fingerprintTasks(ctx context.Context, tx pgx.Tx, names []string, n int, splitAbove int64) ([]fingerprintTask, error) {
	major, err := serverMajor(ctx, tx)
	if err != nil {
		return nil, err
	}
	var tasks []fingerprintTask
	for i, name := range names {
		var blocks int64
		if err := tx.QueryRow(ctx, `SELECT pg_relation_size($1::regclass) / current_setting('block_size')::bigint`, name).Scan(&blocks); err != nil {
			return nil, fmt.Errorf("backup: fingerprint: size of %s: %w", name, err)
		}
		ranges := int64(1)
		if n > 1 && major >= 14 && blocks > splitAbove {
			ranges = int64(2 * n)
		}
		if ranges == 1 {
			tasks = append(tasks, fingerprintTask{table: i, to: -1})
			continue
		}
		step := (blocks + ranges - 1) / ranges
		for from := int64(0); from < blocks; from += step {
			t := fingerprintTask{table: i, from: from, to: from + step, split: true}
			if t.to >= blocks {
				t.to = -1
			}
			tasks = append(tasks, t)
		}
	}
	return tasks, nil
}

// hash reads the task's count and hash.
func (t fingerprintTask) hash(ctx context.Context, tx pgx.Tx, names []string) (Table, error) {
	if !t.split {
		return tableHash(ctx, tx, names[t.table])
	}
	out := Table{Name: names[t.table]}
	q := `SELECT count(*), ` + rowHashSum + ` FROM ` + out.Name + ` t WHERE t.ctid >= $1::tid`
	args := []any{fmt.Sprintf("(%d,0)", t.from)}
	if t.to >= 0 {
		q += ` AND t.ctid < $2::tid`
		args = append(args, fmt.Sprintf("(%d,0)", t.to))
	}
	if err := tx.QueryRow(ctx, q, args...).Scan(&out.Rows, &out.Hash); err != nil {
		return out, fmt.Errorf("backup: fingerprint %s: %w", out.Name, err)
	}
	return out, nil
}

// sumParts adds up the tasks' counts and hashes per table.
func sumParts(names []string, tasks []fingerprintTask, parts []Table) ([]Table, error) {
	out := make([]Table, len(names))
	sums := make([]*big.Int, len(names))
	for i, name := range names {
		out[i].Name = name
		sums[i] = new(big.Int)
	}
	for i, t := range tasks {
		h, ok := new(big.Int).SetString(parts[i].Hash, 10)
		if !ok {
			return nil, fmt.Errorf("backup: fingerprint %s: hash %q is not an integer", names[t.table], parts[i].Hash)
		}
		out[t.table].Rows += parts[i].Rows
		sums[t.table].Add(sums[t.table], h)
	}
	for i := range out {
		out[i].Hash = sums[i].String()
	}
	return out, nil
}

// Compare lists the differences between the manifest's fingerprint and a restored one; empty
// means they match.
func Compare(want, got []Table) []string {
	have := map[string]Table{}
	for _, t := range got {
		have[t.Name] = t
	}
	var diffs []string
	for _, w := range want {
		g, ok := have[w.Name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing", w.Name))
		case g.Rows != w.Rows:
			diffs = append(diffs, fmt.Sprintf("%s: %d rows, want %d", w.Name, g.Rows, w.Rows))
		case g.Hash != w.Hash:
			diffs = append(diffs, fmt.Sprintf("%s: content differs", w.Name))
		}
	}
	sort.Strings(diffs)
	return diffs
}

// Summary is a one-line description of a comparison.
func Summary(diffs []string, tables int) string {
	if len(diffs) == 0 {
		return fmt.Sprintf("fingerprint matches: %d tables, row counts and content hashes equal", tables)
	}
	return "fingerprint differs: " + strings.Join(diffs, "; ")
}
