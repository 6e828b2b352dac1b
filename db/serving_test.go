package db_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// The serving check passes as the application's own roles, changes nothing (its treasury
// write is rolled back), and fails, naming the probes, when a role cannot do its part: the
// treasury login has no DML on the application's tables, the runtime role nothing on the
// treasury.
func TestServingCheck(t *testing.T) {
	ctx := context.Background()
	pg := testharness.FreshPG(t)
	events := func() int {
		var n int
		require.NoError(t, pg.TreasuryPool.QueryRow(ctx, `SELECT count(*) FROM treasury.events`).Scan(&n))
		return n
	}
	before := events()

	rep, err := db.ServingCheck(ctx, pg.URL, pg.TreasuryURL)
	require.NoError(t, err)
	require.True(t, rep.OK, rep.Failed())
	require.GreaterOrEqual(t, len(rep.Checks), 10)
	for _, c := range rep.Checks {
		want := db.AppRole
		if strings.HasPrefix(c.Name, "treasury") {
			want = db.TreasuryLoginRole
		}
		require.Equal(t, want, c.Role, c.Name)
	}
	require.Equal(t, before, events(), "the treasury write was rolled back")

	// The roles swapped: every path fails on privileges, and the error names them.
	rep, err = db.ServingCheck(ctx, pg.TreasuryURL, pg.URL)
	require.ErrorIs(t, err, db.ErrNotServing)
	require.False(t, rep.OK)
	require.Len(t, rep.Failed(), len(rep.Checks), "no path serves with the roles swapped")
	require.Contains(t, err.Error(), "permission denied")
	require.Contains(t, err.Error(), "treasury: write (rolled back) ("+db.AppRole+")")
	require.Equal(t, before, events())
}
