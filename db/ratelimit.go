package db

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Limit is a rate: at most Max hits per Window.
type Limit struct {
	Max    int
	Window time.Duration
}

// Decision is the answer of a rate limiter.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until one more hit would be allowed (when not Allowed).
	RetryAfter time.Duration
}

// TakeRateLimit counts one hit of bucket at now against limit, in PostgreSQL so that every API
// instance shares the count. A denied hit is not counted. The estimate is the sliding-window
// approximation: this window's hits plus the previous window's, weighted by how much of it
// still overlaps the last Window.
func TakeRateLimit(ctx context.Context, q Querier, bucket string, limit Limit, now time.Time) (Decision, error) {
	w := limit.Window
	cur := now.Truncate(w)
	prev := cur.Add(-w)
	overlap := 1 - float64(now.Sub(cur))/float64(w)
	var prevHits int
	err := q.QueryRow(ctx, `SELECT coalesce((SELECT hits FROM rate_limits WHERE bucket = $1 AND window_start = $2), 0)`, bucket, prev).Scan(&prevHits)
	if err != nil {
		return Decision{}, err
	}
	weighted := float64(prevHits) * overlap
	var hits int
	err = q.QueryRow(ctx, `
		INSERT INTO rate_limits AS r (bucket, window_start, hits)
		SELECT $1, $2, 1 WHERE $3::float8 + 1 <= $4
		ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1
		 WHERE r.hits + 1 + $3::float8 <= $4
		RETURNING r.hits`, bucket, cur, weighted, limit.Max).Scan(&hits)
	if err == nil {
		if rand.IntN(256) == 0 {
			// Now and then, forget windows nobody can look at any more.
			_, _ = q.Exec(ctx, `DELETE FROM rate_limits WHERE window_start < $1`, now.Add(-24*time.Hour))
		}
		return Decision{Allowed: true}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return Decision{}, err
	}
	var curHits int
	if err := q.QueryRow(ctx, `SELECT coalesce((SELECT hits FROM rate_limits WHERE bucket = $1 AND window_start = $2), 0)`, bucket, cur).Scan(&curHits); err != nil {
		return Decision{}, err
	}
	return Decision{Allowed: false, RetryAfter: retryAfter(prevHits, curHits, limit, now.Sub(cur))}, nil
}

// retryAfter solves prev*(1-t/w) + cur + 1 <= max for the elapsed time t: when the previous
// window has faded enough; at the latest when this window ends and it becomes the previous.
func retryAfter(prevHits, curHits int, limit Limit, elapsed time.Duration) time.Duration {
	w := limit.Window
	untilEnd := w - elapsed
	if prevHits == 0 || curHits+1 > limit.Max {
		// Only the next window helps (and even then cur carries over as prev): wait until its
		// weight has shrunk enough.
		next := float64(curHits)
		need := 1 - float64(limit.Max-1)/next
		if next == 0 || need <= 0 {
			return untilEnd
		}
		return untilEnd + time.Duration(math.Ceil(need*float64(w)))
	}
	frac := 1 - float64(limit.Max-curHits-1)/float64(prevHits)
	t := time.Duration(math.Ceil(frac * float64(w)))
	if t <= elapsed {
		return time.Second
	}
	return t - elapsed
}
