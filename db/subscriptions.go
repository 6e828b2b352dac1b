package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Subscription statuses. Whether a subscription opens anything also depends on its period:
// see Subscription.ActiveAt.
const (
	StatusActive    = "active"
	StatusCancelled = "cancelled"
)

// Subscription is a fan's subscription to a creator at a tier.
type Subscription struct {
	ID               uuid.UUID
	FanID            uuid.UUID
	CreatorID        uuid.UUID
	TierID           uuid.UUID
	TierLevel        int
	Status           string
	StartedAt        time.Time
	CurrentPeriodEnd time.Time
	CancelledAt      *time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
}

// ActiveAt reports whether the subscription opens comments (and, at level 3, DMs) at t: the
// same rule as the database's active_subscription_level.
func (s Subscription) ActiveAt(t time.Time) bool {
	return s.Status == StatusActive && s.CurrentPeriodEnd.After(t)
}

// SubscriptionInput is what POST /subscriptions takes.
type SubscriptionInput struct {
	FanID     uuid.UUID
	CreatorID uuid.UUID
	TierID    uuid.UUID
	// StartedAt defaults to now; imports set it to the real start.
	StartedAt *time.Time
}

const subscriptionColumns = `s.id, s.fan_id, s.creator_id, s.tier_id, t.level, s.status, s.started_at,
	s.current_period_end, s.cancelled_at, s.created_at, s.updated_at`

const subscriptionFrom = ` FROM subscriptions s JOIN subscription_tiers t ON t.id = s.tier_id `

func scanSubscription(row pgx.Row) (Subscription, error) {
	var s Subscription
	err := row.Scan(&s.ID, &s.FanID, &s.CreatorID, &s.TierID, &s.TierLevel, &s.Status, &s.StartedAt,
		&s.CurrentPeriodEnd, &s.CancelledAt, &s.CreatedAt, &s.UpdatedAt)
	return s, err
}

// CreateSubscription subscribes a fan to a creator at a tier for one period from its start.
func CreateSubscription(ctx context.Context, pool *pgxpool.Pool, in SubscriptionInput, now time.Time) (Subscription, error) {
	start := now
	if in.StartedAt != nil {
		start = *in.StartedAt
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Subscription{}, err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var role string
		err := tx.QueryRow(ctx, `SELECT role FROM users WHERE id = $1`, in.FanID).Scan(&role)
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid("fan_not_found", "there is no user with this fan_id")
		} else if err != nil {
			return err
		}
		if role != "fan" {
			return invalid("not_a_fan", "only users with the fan role subscribe")
		}
		if err := requireCreator(ctx, tx, in.CreatorID, invalid); err != nil {
			return err
		}
		var tierCreator uuid.UUID
		var periodDays int
		err = tx.QueryRow(ctx, `SELECT creator_id, period_days FROM subscription_tiers WHERE id = $1`, in.TierID).Scan(&tierCreator, &periodDays)
		if errors.Is(err, pgx.ErrNoRows) {
			return invalid("tier_not_found", "there is no tier with this tier_id")
		} else if err != nil {
			return err
		}
		if tierCreator != in.CreatorID {
			return invalid("tier_of_another_creator", "the tier belongs to another creator")
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO subscriptions (id, fan_id, creator_id, tier_id, status, started_at, current_period_end, created_at, updated_at)
			VALUES ($1, $2, $3, $4, 'active', $5::timestamptz, $5::timestamptz + make_interval(days => $6), $7, $7)`,
			id, in.FanID, in.CreatorID, in.TierID, start, periodDays, now)
		if pgCode(err) == codeUniqueViolation {
			return conflict("subscription_exists", "the fan already has a subscription to this creator: renew or cancel it")
		}
		return err
	})
	if err != nil {
		return Subscription{}, err
	}
	return GetSubscription(ctx, pool, id)
}

// RenewSubscription extends a subscription by one period of its tier, from the end of the
// current period or, if that has passed, from now. A cancelled subscription cannot be renewed.
func RenewSubscription(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, now time.Time) (Subscription, error) {
	tag, err := pool.Exec(ctx, `
		UPDATE subscriptions s
		   SET current_period_end = greatest(s.current_period_end, $2) + make_interval(days => t.period_days),
		       updated_at = $2
		  FROM subscription_tiers t
		 WHERE t.id = s.tier_id AND s.id = $1 AND s.status = 'active'`, id, now)
	if err != nil {
		return Subscription{}, err
	}
	if tag.RowsAffected() == 0 {
		sub, err := GetSubscription(ctx, pool, id)
		if err != nil {
			return Subscription{}, err
		}
		if sub.Status == StatusCancelled {
			return Subscription{}, conflict("subscription_cancelled", "a cancelled subscription cannot be renewed; create a new one")
		}
		return Subscription{}, errors.New("renewal updated nothing")
	}
	return GetSubscription(ctx, pool, id)
}

// CancelSubscription ends a subscription now: it opens nothing from this instant. Cancelling
// a cancelled subscription changes nothing.
func CancelSubscription(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, now time.Time) (Subscription, error) {
	_, err := pool.Exec(ctx, `
		UPDATE subscriptions SET status = 'cancelled', cancelled_at = $2, updated_at = $2
		 WHERE id = $1 AND status = 'active'`, id, now)
	if err != nil {
		return Subscription{}, err
	}
	return GetSubscription(ctx, pool, id)
}

// GetSubscription returns subscription id.
func GetSubscription(ctx context.Context, q Querier, id uuid.UUID) (Subscription, error) {
	s, err := scanSubscription(q.QueryRow(ctx, `SELECT `+subscriptionColumns+subscriptionFrom+`WHERE s.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Subscription{}, missing("subscription_not_found", "subscription not found")
	}
	return s, err
}

// SubscriptionFilter narrows a subscription listing; zero fields do not filter.
type SubscriptionFilter struct {
	FanID     uuid.UUID
	CreatorID uuid.UUID
}

// ListSubscriptions pages through subscriptions, newest first.
func ListSubscriptions(ctx context.Context, q Querier, f SubscriptionFilter, p Page) ([]Subscription, *Cursor, error) {
	at, id := cursorArgs(p.After)
	rows, err := q.Query(ctx, `SELECT `+subscriptionColumns+subscriptionFrom+`
		 WHERE ($1::uuid = '00000000-0000-0000-0000-000000000000' OR s.fan_id = $1)
		   AND ($2::uuid = '00000000-0000-0000-0000-000000000000' OR s.creator_id = $2)
		   AND ($3::timestamptz IS NULL OR (s.created_at, s.id) < ($3, $4))
		 ORDER BY s.created_at DESC, s.id DESC
		 LIMIT $5`, f.FanID, f.CreatorID, at, id, p.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	subs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Subscription, error) { return scanSubscription(r) })
	if err != nil {
		return nil, nil, err
	}
	items, next := pageOf(subs, p.Limit, func(s Subscription) Cursor { return Cursor{At: s.CreatedAt, ID: s.ID} })
	return items, next, nil
}

// ActiveLevel returns the tier level of the fan's subscription to the creator that is active
// at t, and false when there is none.
func ActiveLevel(ctx context.Context, q Querier, fan, creator uuid.UUID, at time.Time) (int, bool, error) {
	var level *int
	if err := q.QueryRow(ctx, `SELECT active_subscription_level($1, $2, $3)`, fan, creator, at).Scan(&level); err != nil {
		return 0, false, err
	}
	if level == nil {
		return 0, false, nil
	}
	return *level, true, nil
}
