package demo

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestMain(m *testing.M) { testharness.Main(m) }

// fingerprint summarises every seeded table in a way that changes with any row.
func fingerprint(t *testing.T, pool *pgxpool.Pool) map[string]string {
	t.Helper()
	out := map[string]string{}
	for table, cols := range map[string]string{
		"users":              "id, role, display_name",
		"creators":           "id, handle",
		"subscription_tiers": "id, creator_id, name, level, price_stroops, asset, permissions",
		"subscriptions":      "id, fan_id, creator_id, tier_id, status, started_at, current_period_end, cancelled_at",
		"revenue_events":     "id, external_id, creator_id, fan_id, subscription_id, kind, amount_stroops, asset, occurred_at",
		"comments":           "id, creator_id, author_id, parent_id, root_id, depth, content, created_at",
		"comment_likes":      "comment_id, user_id, created_at",
	} {
		var sum string
		err := pool.QueryRow(context.Background(),
			`SELECT count(*) || ':' || coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '') FROM (SELECT `+cols+` FROM `+table+`) r`).Scan(&sum)
		require.NoError(t, err)
		out[table] = sum
	}
	return out
}

func TestSeedIsDeterministicAndIdempotent(t *testing.T) {
	ctx := context.Background()
	anchor := time.Date(2026, 11, 25, 15, 4, 5, 0, time.UTC)
	a, _ := testharness.FreshDB(t)
	b, _ := testharness.FreshDB(t)

	d, err := Seed(ctx, a, anchor)
	require.NoError(t, err)
	first := fingerprint(t, a)
	_, err = Seed(ctx, a, anchor)
	require.NoError(t, err)
	require.Equal(t, first, fingerprint(t, a), "seeding twice changes nothing")
	_, err = Seed(ctx, b, anchor.Add(3*time.Hour))
	require.NoError(t, err)
	require.Equal(t, first, fingerprint(t, b), "the same anchor day gives the same data on another database")

	seeded, err := Seeded(ctx, a)
	require.NoError(t, err)
	require.True(t, seeded)
	got, err := Anchor(ctx, a)
	require.NoError(t, err)
	require.Equal(t, d.Anchor, got)

	var fans, creators, tiers, cancelled, tips int
	require.NoError(t, a.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM fans), (SELECT count(*) FROM creators), (SELECT count(*) FROM subscription_tiers),
		(SELECT count(*) FROM subscriptions WHERE status = 'cancelled'), (SELECT count(*) FROM revenue_events WHERE kind = 'tip')`).
		Scan(&fans, &creators, &tiers, &cancelled, &tips))
	require.GreaterOrEqual(t, fans, 50)
	require.Equal(t, 3, creators)
	require.Equal(t, 9, tiers)
	require.Positive(t, cancelled, "history has cancellations")
	require.Positive(t, tips)

	// The tour's people are who they say they are, as of the anchor.
	var goldLevel, noSubs int
	require.NoError(t, a.QueryRow(ctx, `SELECT active_subscription_level($1, $2, $3)`, d.GoldFan, d.Creators[0].ID, d.Anchor).Scan(&goldLevel))
	require.Equal(t, 3, goldLevel)
	require.NoError(t, a.QueryRow(ctx, `SELECT count(*) FROM subscriptions WHERE fan_id = $1`, d.FanWithoutSubscription).Scan(&noSubs))
	require.Zero(t, noSubs)

	// 180 days of revenue, growing for the first creator.
	var firstMonth, lastMonth int64
	require.NoError(t, a.QueryRow(ctx, `SELECT
		coalesce(sum(amount_stroops) FILTER (WHERE occurred_at <  $2::timestamptz - interval '150 days'), 0),
		coalesce(sum(amount_stroops) FILTER (WHERE occurred_at >= $2::timestamptz - interval '30 days'), 0)
		FROM revenue_events WHERE creator_id = $1`, d.Creators[0].ID, d.Anchor).Scan(&firstMonth, &lastMonth))
	require.Greater(t, lastMonth, firstMonth)
}

func TestSeedCommentsAreThreadedAndWrittenBySubscribers(t *testing.T) {
	ctx := context.Background()
	anchor := time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)
	pool, _ := testharness.FreshDB(t)
	d, err := Seed(ctx, pool, anchor)
	require.NoError(t, err)
	creator := d.Creators[0].ID

	var comments, replies, likes, outsiders int
	require.NoError(t, pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM comments WHERE creator_id = $1),
		(SELECT count(*) FROM comments WHERE creator_id = $1 AND parent_id IS NOT NULL),
		(SELECT count(*) FROM comment_likes),
		(SELECT count(*) FROM comments c WHERE c.author_id <> c.creator_id
		    AND active_subscription_level(c.author_id, c.creator_id, $2) IS NULL)`, creator, d.Anchor).
		Scan(&comments, &replies, &likes, &outsiders))
	require.Equal(t, len(demoComments), comments)
	require.Positive(t, replies)
	require.Equal(t, len(demoLikes), likes)
	require.Zero(t, outsiders, "every demo comment is by the creator or an active subscriber")

	var author uuid.UUID
	require.NoError(t, pool.QueryRow(ctx, `SELECT author_id FROM comments WHERE id = $1`, CommentID(0)).Scan(&author))
	require.Equal(t, d.GoldFan, author)
}
