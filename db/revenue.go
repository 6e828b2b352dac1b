package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Revenue event kinds.
const (
	KindSubscriptionPayment = "subscription_payment"
	KindTip                 = "tip"
)

// RevenueEvent is a payment that reached a creator.
type RevenueEvent struct {
	ID             uuid.UUID
	ExternalID     string
	CreatorID      uuid.UUID
	FanID          *uuid.UUID
	SubscriptionID *uuid.UUID
	Kind           string
	AmountStroops  int64
	Asset          string
	OccurredAt     time.Time
	CreatedAt      time.Time
}

// RevenueEventInput is one event to record.
type RevenueEventInput struct {
	ExternalID     string
	CreatorID      uuid.UUID
	FanID          *uuid.UUID
	SubscriptionID *uuid.UUID
	Kind           string
	AmountStroops  int64
	Asset          string
	OccurredAt     time.Time
}

// RecordResult says what recording one event did.
type RecordResult struct {
	Event RevenueEvent
	// Created is false when an identical event with the same external id was already there.
	Created bool
}

const revenueColumns = `id, external_id, creator_id, fan_id, subscription_id, kind, amount_stroops, asset, occurred_at, created_at`

func scanRevenue(row pgx.Row) (RevenueEvent, error) {
	var e RevenueEvent
	err := row.Scan(&e.ID, &e.ExternalID, &e.CreatorID, &e.FanID, &e.SubscriptionID, &e.Kind, &e.AmountStroops, &e.Asset, &e.OccurredAt, &e.CreatedAt)
	return e, err
}

// RecordRevenueEvents records events all or nothing, idempotently by external id: an event
// whose external id is known with the same content is reported as existing; with different
// content it is a conflict and nothing of the batch is written. Errors name the event's index.
func RecordRevenueEvents(ctx context.Context, pool *pgxpool.Pool, in []RevenueEventInput) ([]RecordResult, error) {
	out := make([]RecordResult, 0, len(in))
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		out = out[:0]
		for i, ev := range in {
			res, err := recordRevenueEvent(ctx, tx, ev)
			if err != nil {
				if de, ok := AsError(err); ok && len(in) > 1 {
					return &Error{Kind: de.Kind, Code: de.Code, Message: fmt.Sprintf("event %d: %s", i, de.Message)}
				}
				return err
			}
			out = append(out, res)
		}
		return nil
	})
	return out, err
}

func recordRevenueEvent(ctx context.Context, tx pgx.Tx, ev RevenueEventInput) (RecordResult, error) {
	if err := requireCreator(ctx, tx, ev.CreatorID, invalid); err != nil {
		return RecordResult{}, err
	}
	if ev.SubscriptionID != nil {
		sub, err := GetSubscription(ctx, tx, *ev.SubscriptionID)
		if errors.Is(err, ErrNotFound) {
			return RecordResult{}, invalid("subscription_not_found", "there is no subscription with this subscription_id")
		} else if err != nil {
			return RecordResult{}, err
		}
		if sub.CreatorID != ev.CreatorID {
			return RecordResult{}, invalid("subscription_of_another_creator", "the subscription is to another creator")
		}
		if ev.FanID == nil {
			ev.FanID = &sub.FanID
		} else if *ev.FanID != sub.FanID {
			return RecordResult{}, invalid("fan_mismatch", "fan_id is not the subscription's fan")
		}
	} else if ev.FanID != nil {
		var ok bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, *ev.FanID).Scan(&ok); err != nil {
			return RecordResult{}, err
		}
		if !ok {
			return RecordResult{}, invalid("fan_not_found", "there is no user with this fan_id")
		}
	}
	id, err := uuid.NewV7()
	if err != nil {
		return RecordResult{}, err
	}
	e, err := scanRevenue(tx.QueryRow(ctx, `
		INSERT INTO revenue_events (id, external_id, creator_id, fan_id, subscription_id, kind, amount_stroops, asset, occurred_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (external_id) DO NOTHING
		RETURNING `+revenueColumns,
		id, ev.ExternalID, ev.CreatorID, ev.FanID, ev.SubscriptionID, ev.Kind, ev.AmountStroops, ev.Asset, ev.OccurredAt))
	if err == nil {
		return RecordResult{Event: e, Created: true}, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return RecordResult{}, err
	}
	existing, err := scanRevenue(tx.QueryRow(ctx, `SELECT `+revenueColumns+` FROM revenue_events WHERE external_id = $1`, ev.ExternalID))
	if err != nil {
		return RecordResult{}, err
	}
	if !sameRevenue(existing, ev) {
		return RecordResult{}, conflict("external_id_reused", "an event with this external_id is already recorded with different details")
	}
	return RecordResult{Event: existing, Created: false}, nil
}

func sameRevenue(e RevenueEvent, in RevenueEventInput) bool {
	eq := func(a, b *uuid.UUID) bool { return (a == nil && b == nil) || (a != nil && b != nil && *a == *b) }
	return e.CreatorID == in.CreatorID && eq(e.FanID, in.FanID) && eq(e.SubscriptionID, in.SubscriptionID) &&
		e.Kind == in.Kind && e.AmountStroops == in.AmountStroops && e.Asset == in.Asset &&
		e.OccurredAt.Equal(in.OccurredAt.Truncate(time.Microsecond))
}

// GetRevenueEvent returns event id.
func GetRevenueEvent(ctx context.Context, q Querier, id uuid.UUID) (RevenueEvent, error) {
	e, err := scanRevenue(q.QueryRow(ctx, `SELECT `+revenueColumns+` FROM revenue_events WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return RevenueEvent{}, missing("revenue_event_not_found", "revenue event not found")
	}
	return e, err
}

// ListRevenueEvents pages through a creator's events (or everyone's), newest first.
func ListRevenueEvents(ctx context.Context, q Querier, creatorID uuid.UUID, p Page) ([]RevenueEvent, *Cursor, error) {
	at, id := cursorArgs(p.After)
	rows, err := q.Query(ctx, `SELECT `+revenueColumns+` FROM revenue_events
		 WHERE ($1::uuid = '00000000-0000-0000-0000-000000000000' OR creator_id = $1)
		   AND ($2::timestamptz IS NULL OR (occurred_at, id) < ($2, $3))
		 ORDER BY occurred_at DESC, id DESC
		 LIMIT $4`, creatorID, at, id, p.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	evs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (RevenueEvent, error) { return scanRevenue(r) })
	if err != nil {
		return nil, nil, err
	}
	items, next := pageOf(evs, p.Limit, func(e RevenueEvent) Cursor { return Cursor{At: e.OccurredAt, ID: e.ID} })
	return items, next, nil
}
