package db_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// treasuryTables lists the tables of schema treasury (read from the catalog, so a table a
// later migration adds is tried too) with one column each for the UPDATE statements.
func treasuryTables(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `
		SELECT c.relname, (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum = 1)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'treasury' AND c.relkind IN ('r', 'p', 'v', 'm')`)
	require.NoError(t, err)
	out := map[string]string{}
	for rows.Next() {
		var table, col string
		require.NoError(t, rows.Scan(&table, &col))
		out[table] = col
	}
	require.NoError(t, rows.Err())
	return out
}

// refused runs sql on pool in a transaction that is rolled back, and requires PostgreSQL to
// refuse it for lack of privilege (SQLSTATE 42501), naming the role or object.
func refused(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	ctx := t.Context()
	tx, err := pool.Begin(ctx)
	require.NoError(t, err)
	defer func() { _ = tx.Rollback(context.Background()) }()
	_, err = tx.Exec(ctx, sql)
	var pe *pgconn.PgError
	require.True(t, errors.As(err, &pe), "%s: want a refusal, got %v", sql, err)
	require.Equal(t, "42501", pe.Code, "%s: %v", sql, err)
}

// The runtime role exactly as the bootstrap makes it (the harness's Pool): every statement on
// every table of schema treasury is refused, as are the ways around the privileges (taking
// the treasury role, disabling the event log's trigger, creating objects in the schema).
func TestRuntimeRoleCannotTouchTheTreasury(t *testing.T) {
	pg := testharness.FreshPG(t)
	ctx := t.Context()
	// Something to read and change: a yield recorded by the treasury.
	_, err := db.NewTreasury(pg.TreasuryPool).RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 5000, OccurredAt: time.Now()})
	require.NoError(t, err)

	var user string
	require.NoError(t, pg.Pool.QueryRow(ctx, `SELECT current_user`).Scan(&user))
	require.Equal(t, db.AppRole, user)

	tables := treasuryTables(t, pg.Pool)
	require.Subset(t, keys(tables), []string{"balances", "yield_events", "bailouts", "events"})
	tried := 0
	for table, col := range tables {
		q := "treasury." + table
		for _, sql := range []string{
			"SELECT * FROM " + q,
			"SELECT count(*) FROM " + q,
			"INSERT INTO " + q + " DEFAULT VALUES",
			fmt.Sprintf("UPDATE %s SET %s = %s", q, col, col),
			"DELETE FROM " + q,
			"TRUNCATE " + q,
			"LOCK TABLE " + q + " IN SHARE MODE",
		} {
			refused(t, pg.Pool, sql)
			tried++
		}
	}
	for _, sql := range []string{
		`ALTER TABLE treasury.events DISABLE TRIGGER events_append_only`,
		`ALTER TABLE treasury.events DISABLE TRIGGER ALL`,
		`DROP TRIGGER events_append_only ON treasury.events`,
		`SET ROLE orchestrator_treasury`,
		`SET ROLE orchestrator_treasury_login`,
		`SET ROLE orchestrator_owner`,
		`CREATE TABLE treasury.sneaky (x int)`,
		`CREATE FUNCTION treasury.sneaky() RETURNS int LANGUAGE sql AS 'SELECT 1'`,
		`GRANT orchestrator_treasury TO orchestrator_app`,
	} {
		refused(t, pg.Pool, sql)
		tried++
	}
	t.Logf("%d statements of the runtime role refused on %d treasury tables", tried, len(tables))

	var member, usage bool
	require.NoError(t, pg.Pool.QueryRow(ctx, `SELECT pg_has_role(current_user, 'orchestrator_treasury', 'MEMBER'),
		has_schema_privilege(current_user, 'treasury', 'USAGE')`).Scan(&member, &usage))
	require.False(t, member, "the runtime role is no member of the treasury role")
	require.False(t, usage, "the runtime role may not use schema treasury")
	require.NoError(t, db.CheckRuntimeRole(ctx, pg.Pool, "DATABASE_URL", "ALLOW_PRIVILEGED_DATABASE_URL"))

	// The fund is unchanged and the chain intact.
	n, err := db.NewTreasury(pg.TreasuryPool).VerifyChain(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

// The treasury login exactly as the bootstrap makes it: on schema treasury exactly the
// privileges db.Treasury uses, nothing on the application's tables, and no way to rewrite the
// event log.
func TestTreasuryLoginHasOnlyWhatTheTreasuryNeeds(t *testing.T) {
	pg := testharness.FreshPG(t)
	ctx := t.Context()
	want := map[string][]string{
		"balances":     {"SELECT", "UPDATE"},
		"yield_events": {"SELECT", "INSERT"},
		"bailouts":     {"SELECT", "INSERT", "UPDATE"},
		"events":       {"SELECT", "INSERT"},
	}
	tables := treasuryTables(t, pg.TreasuryPool)
	require.ElementsMatch(t, keys(want), keys(tables), "every treasury table has its expected privileges listed here")
	for table := range tables {
		for _, priv := range []string{"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER"} {
			var has bool
			require.NoError(t, pg.TreasuryPool.QueryRow(ctx, `SELECT has_table_privilege(current_user, $1, $2)`, "treasury."+table, priv).Scan(&has))
			require.Equal(t, contains(want[table], priv), has, "%s on treasury.%s", priv, table)
		}
	}
	// Nothing of the application's: the treasury code reads only schema treasury.
	var publicTables, reachable int
	require.NoError(t, pg.TreasuryPool.QueryRow(ctx, `
		SELECT count(*), count(*) FILTER (WHERE has_table_privilege(current_user, c.oid, 'SELECT, INSERT, UPDATE, DELETE, TRUNCATE'))
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = 'public' AND c.relkind = 'r'`).Scan(&publicTables, &reachable))
	require.NotZero(t, publicTables)
	require.Zero(t, reachable, "the treasury login reaches no table of schema public")
	refused(t, pg.TreasuryPool, `SELECT count(*) FROM public.users`)

	_, err := db.NewTreasury(pg.TreasuryPool).RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "USDC", GrossStroops: 700, OccurredAt: time.Now()})
	require.NoError(t, err)
	for _, sql := range []string{
		`ALTER TABLE treasury.events DISABLE TRIGGER events_append_only`,
		`ALTER TABLE treasury.events DISABLE TRIGGER ALL`,
		`DROP TRIGGER events_append_only ON treasury.events`,
		`UPDATE treasury.events SET payload = '{}'`,
		`DELETE FROM treasury.events`,
		`TRUNCATE treasury.events`,
		`DELETE FROM treasury.balances`,
		`CREATE TABLE treasury.sneaky (x int)`,
		`SET ROLE orchestrator_owner`,
		`SET ROLE orchestrator_app`,
	} {
		refused(t, pg.TreasuryPool, sql)
	}
	require.ErrorContains(t, db.CheckRuntimeRole(ctx, pg.TreasuryPool, "DATABASE_URL", "ALLOW_PRIVILEGED_DATABASE_URL"), "is a member of orchestrator_treasury")
	n, err := db.NewTreasury(pg.TreasuryPool).VerifyChain(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
}

// The case the old segregation test could not see: a role that IS a member of the treasury
// role (as the old migration 00005 made the application's user) can change the fund without
// any SET ROLE. The start-time check refuses such a role as DATABASE_URL, and the bootstrap
// ends the membership when the role is the runtime role.
func TestTreasuryMemberIsNotSegregated(t *testing.T) {
	pg := testharness.FreshPG(t)
	admin := openAs(t, pg.AdminURL)
	ctx := t.Context()
	member := "treasury_member_test_" + uuid.NewString()[:8]
	_, err := admin.Exec(ctx, `CREATE ROLE `+member+` NOLOGIN IN ROLE orchestrator_treasury`)
	require.NoError(t, err)
	t.Cleanup(func() { _, _ = admin.Exec(context.Background(), `DROP ROLE IF EXISTS `+member) })

	err = pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+member); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE treasury.balances SET balance_stroops = balance_stroops + 1 WHERE asset = 'XLM'`)
		if err != nil {
			return err
		}
		require.Equal(t, int64(1), tag.RowsAffected(), "a member writes the fund directly")
		err = db.CheckRuntimeRole(ctx, tx, "DATABASE_URL", "ALLOW_PRIVILEGED_DATABASE_URL")
		require.ErrorContains(t, err, "DATABASE_URL: role "+member+" is a member of orchestrator_treasury")
		require.ErrorContains(t, err, "ALLOW_PRIVILEGED_DATABASE_URL=true")
		return errors.New("roll back")
	})
	require.EqualError(t, err, "roll back")

	// The superuser is refused too.
	err = db.CheckRuntimeRole(ctx, admin, "DATABASE_URL", "ALLOW_PRIVILEGED_DATABASE_URL")
	require.ErrorContains(t, err, "is a superuser")
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
