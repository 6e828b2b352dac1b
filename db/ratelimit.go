package db

import (
	"context"
	"math"
	"time"
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
// still overlaps the last Window. One round trip: the SQL function take_rate_limit.
func TakeRateLimit(ctx context.Context, q Querier, bucket string, limit Limit, now time.Time) (Decision, error) {
	cur, prev, overlap := limitArgs(limit, now)
	var allowed bool
	var prevHits, curHits int
	err := q.QueryRow(ctx, `SELECT allowed, prev_hits, cur_hits FROM take_rate_limit($1, $2, $3, $4, $5)`,
		bucket, cur, prev, overlap, limit.Max).Scan(&allowed, &prevHits, &curHits)
	if err != nil {
		return Decision{}, err
	}
	return decision(allowed, prevHits, curHits, limit, now), nil
}

// limitArgs are take_rate_limit's window arguments: the current and the previous window's
// start, and how much of the previous window still overlaps the last Window.
func limitArgs(limit Limit, now time.Time) (cur, prev time.Time, overlap float64) {
	w := limit.Window
	cur = now.Truncate(w)
	return cur, cur.Add(-w), 1 - float64(now.Sub(cur))/float64(w)
}

func decision(allowed bool, prevHits, curHits int, limit Limit, now time.Time) Decision {
	if allowed {
		return Decision{Allowed: true}
	}
	return Decision{Allowed: false, RetryAfter: retryAfter(prevHits, curHits, limit, now.Sub(now.Truncate(limit.Window)))}
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
