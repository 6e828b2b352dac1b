package backup

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
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
	for _, s := range fingerprintSettings {
		if _, err := tx.Exec(ctx, s); err != nil {
			return nil, fmt.Errorf("backup: fingerprint: %w", err)
		}
	}
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
	out := make([]Table, 0, len(names))
	for _, name := range names {
		// name comes from format('%I.%I'), quoted by the server.
		var t Table
		t.Name = name
		q := `SELECT count(*), coalesce(sum(('x' || substr(md5(t::text), 1, 16))::bit(64)::bigint::numeric), 0)::text FROM ` + name + ` t`
		if err := tx.QueryRow(ctx, q).Scan(&t.Rows, &t.Hash); err != nil {
			return nil, fmt.Errorf("backup: fingerprint %s: %w", name, err)
		}
		out = append(out, t)
	}
	return out, nil
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
