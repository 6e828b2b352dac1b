package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

// commentPage makes a creator with a tier and a fan with an active subscription to them.
func commentPage(t *testing.T, pool *pgxpool.Pool, now time.Time) (creator, fan, sub uuid.UUID) {
	t.Helper()
	ctx := t.Context()
	creator, fan = uuid.New(), uuid.New()
	handle := "c_" + creator.String()[:8]
	_, _, err := db.UpsertUser(ctx, pool, creator, db.UserInput{Role: "creator", DisplayName: "Creator", Handle: &handle}, now)
	require.NoError(t, err)
	_, _, err = db.UpsertUser(ctx, pool, fan, db.UserInput{Role: "fan", DisplayName: "Fan"}, now)
	require.NoError(t, err)
	tier := uuid.New()
	_, _, err = db.UpsertTier(ctx, pool, creator, tier, db.TierInput{Name: "Bronze", Level: 1, PriceStroops: 10_000_000, Asset: "USDC", PeriodDays: 30}, now)
	require.NoError(t, err)
	start := now.Add(-time.Hour)
	s, err := db.CreateSubscription(ctx, pool, db.SubscriptionInput{FanID: fan, CreatorID: creator, TierID: tier, StartedAt: &start}, now)
	require.NoError(t, err)
	return creator, fan, s.ID
}

// waitForCommentInsertLock blocks until some backend of the database waits for a lock.
func waitForCommentInsertLock(t *testing.T, pool *pgxpool.Pool) {
	t.Helper()
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, pool.QueryRow(context.Background(), `
			SELECT count(*) FROM pg_stat_activity
			 WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO comments%'`).Scan(&n))
		return n > 0
	}, 10*time.Second, 10*time.Millisecond, "the comment insert never waited for the cancellation")
}

// TestCommentInsertRacesACancellation: a cancellation being written while a comment is
// inserted makes the insert wait; once it commits the comment is refused, and had it rolled
// back the comment would go in. The check and the insert cannot be split by a cancellation.
func TestCommentInsertRacesACancellation(t *testing.T) {
	pool, _ := testharness.FreshDB(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)

	for _, commit := range []bool{true, false} {
		creator, fan, sub := commentPage(t, pool, now)
		tx, err := pool.Begin(ctx)
		require.NoError(t, err)
		_, err = tx.Exec(ctx, `UPDATE subscriptions SET status = 'cancelled', cancelled_at = $2, updated_at = $2 WHERE id = $1`, sub, now)
		require.NoError(t, err)

		done := make(chan error, 1)
		go func() {
			_, err := db.CreateComment(context.Background(), pool, db.CommentInput{CreatorID: creator, AuthorID: fan, Content: "racing"}, now)
			done <- err
		}()
		waitForCommentInsertLock(t, pool)
		if commit {
			require.NoError(t, tx.Commit(ctx))
		} else {
			require.NoError(t, tx.Rollback(ctx))
		}
		err = <-done
		n, cerr := countComments(ctx, pool, creator)
		require.NoError(t, cerr)
		if commit {
			e, ok := db.AsError(err)
			require.True(t, ok, "want a domain error, got %v", err)
			require.Equal(t, db.KindForbidden, e.Kind)
			require.Zero(t, n)
		} else {
			require.NoError(t, err)
			require.Equal(t, 1, n)
		}
	}
}

func countComments(ctx context.Context, pool *pgxpool.Pool, creator uuid.UUID) (int, error) {
	var n int
	err := pool.QueryRow(ctx, `SELECT count(*) FROM comments WHERE creator_id = $1`, creator).Scan(&n)
	return n, err
}

// TestCommentEditAndLikeFollowTheSubscription: edits and likes use the same gate.
func TestCommentEditAndLikeFollowTheSubscription(t *testing.T) {
	pool := testharness.Pool(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	creator, fan, sub := commentPage(t, pool, now)
	c, err := db.CreateComment(ctx, pool, db.CommentInput{CreatorID: creator, AuthorID: fan, Content: "hello"}, now)
	require.NoError(t, err)
	require.Equal(t, c.ID, c.RootID)
	me := db.CommentViewer{UserID: fan}

	l, err := db.LikeComment(ctx, pool, c.ID, me, now)
	require.NoError(t, err)
	require.Equal(t, db.CommentLikes{CommentID: c.ID, Count: 1, LikedByMe: true}, l)

	_, err = db.CancelSubscription(ctx, pool, sub, now.Add(time.Minute))
	require.NoError(t, err)
	later := now.Add(2 * time.Minute)
	_, err = db.EditComment(ctx, pool, c.ID, me, "edited", later)
	e, ok := db.AsError(err)
	require.True(t, ok, "%v", err)
	require.Equal(t, db.KindForbidden, e.Kind)
	// Not readable any more: the like cannot be taken back through the API either.
	_, err = db.UnlikeComment(ctx, pool, c.ID, me, later)
	require.ErrorIs(t, err, db.ErrNotFound)

	// The creator may always; the author may always delete their own.
	r, err := db.CreateComment(ctx, pool, db.CommentInput{CreatorID: creator, AuthorID: creator, ParentID: &c.ID, Content: "reply"}, later)
	require.NoError(t, err)
	require.Equal(t, c.ID, r.RootID)
	require.Equal(t, 1, r.Depth)
	require.NoError(t, db.DeleteComment(ctx, pool, c.ID, me, later))
	got, err := db.GetComment(ctx, pool, c.ID, fan)
	require.NoError(t, err)
	require.NotNil(t, got.DeletedAt)
	require.Empty(t, got.Content)
	require.Equal(t, 1, got.LikeCount)
}

// TestProbeCommentGatesDecidesAsProbeCommentPage: the batched check (one statement for many
// readers, the gate decided afterwards at each request's moment) lets exactly the readers
// through that ProbeCommentPage's statement does, with its errors and versions, at the end of a
// period to the microsecond, after a cancellation, for admins, the creator, outsiders and
// an unknown creator.
func TestProbeCommentGatesDecidesAsProbeCommentPage(t *testing.T) {
	pool := testharness.Pool(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	creator, fan, _ := commentPage(t, pool, now)
	_, fan2, sub2 := commentPage(t, pool, now) // fan2's subscription is to another creator: moved below
	outsider := uuid.New()
	_, _, err := db.UpsertUser(ctx, pool, outsider, db.UserInput{Role: "fan", DisplayName: "Outsider"}, now)
	require.NoError(t, err)
	end := now.Add(time.Hour)
	_, err = pool.Exec(ctx, `UPDATE subscriptions SET current_period_end = $2 WHERE fan_id = $1`, fan, end)
	require.NoError(t, err)
	// fan2 had a subscription to this creator, cancelled.
	_, err = pool.Exec(ctx, `UPDATE subscriptions SET creator_id = $2, tier_id = (SELECT id FROM subscription_tiers WHERE creator_id = $2),
		status = 'cancelled', cancelled_at = $3 WHERE id = $1`, sub2, creator, now)
	require.NoError(t, err)

	type probe struct {
		v       db.CommentViewer
		creator uuid.UUID
		at      time.Time
	}
	var probes []probe
	for _, at := range []time.Time{now, end.Add(-time.Microsecond), end.Add(-time.Nanosecond), end, end.Add(time.Nanosecond), end.Add(time.Hour)} {
		for _, v := range []db.CommentViewer{{UserID: fan}, {UserID: fan2}, {UserID: outsider}, {UserID: outsider, Admin: true}, {UserID: creator}} {
			probes = append(probes, probe{v, creator, at}, probe{v, uuid.New(), at})
		}
	}
	keys := make([]db.CommentGateKey, len(probes))
	for i, p := range probes {
		keys[i] = db.CommentGateKey{Creator: p.creator, Reader: p.v.UserID}
	}
	states, err := db.ProbeCommentGates(ctx, pool, keys)
	require.NoError(t, err)
	require.Len(t, states, len(probes))
	allowed := 0
	for i, p := range probes {
		ver, _, want := db.ProbeCommentPage(ctx, pool, p.v, p.creator, p.at, nil)
		got := states[i].Check(p.v, p.creator, p.at)
		require.Equal(t, want, got, "%+v", p)
		if want == nil {
			allowed++
			require.Equal(t, ver, states[i].Version, "%+v", p)
		}
	}
	// The fan until the end (three moments), the admin and the creator at every moment.
	require.Equal(t, 3+2*6, allowed)
}
