package backup

import (
	"context"
	"fmt"
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

// tableHash fingerprints one table; name comes from format('%I.%I'), quoted by the server.
func tableHash(ctx context.Context, tx pgx.Tx, name string) (Table, error) {
	t := Table{Name: name}
	q := `SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text FROM ` + name + ` t`
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
// database) over up to n connections at once. Each table is read in a transaction of its
// own: the tables do not change, and a transaction held across tables would hold their locks
// and stall (or deadlock) the pg_restore jobs that add primary keys beside it.
func fingerprintDB(ctx context.Context, dbURL string, n int) ([]Table, error) {
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
	var names []string
	if err := pgx.BeginFunc(ctx, first, func(tx pgx.Tx) (err error) { names, err = listTables(ctx, tx); return err }); err != nil {
		return nil, err
	}
	for len(conns) < min(n, len(names)) {
		if _, err := connect(); err != nil {
			return nil, err
		}
	}
	out := make([]Table, len(names))
	next := make(chan int)
	g, gctx := errgroup.WithContext(ctx)
	for _, c := range conns {
		g.Go(func() error {
			for i := range next {
				err := pgx.BeginTxFunc(gctx, c, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) (err error) {
					if err := fingerprintSession(gctx, tx); err != nil {
						return err
					}
					out[i], err = tableHash(gctx, tx, names[i])
					return err
				})
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	g.Go(func() error {
		defer close(next)
		for i := range names {
			select {
			case next <- i:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	return out, g.Wait()
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
