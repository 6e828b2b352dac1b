package db

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/creatorvault/orchestrator/contracts"
)

// ChannelsFix is what an operator does when the channel pool is exhausted.
const ChannelsFix = "add channel accounts with `orchestrator treasury channels-setup --count N`"

// ---- the channel pool ----

// RegisterChannels adds channel accounts to the pool (idempotent) and returns how many were new.
func (t *Treasury) RegisterChannels(ctx context.Context, accounts []string) (int, error) {
	n := 0
	err := t.tx(ctx, func(tx pgx.Tx) error {
		for _, a := range accounts {
			if !contracts.ValidAccount(a) {
				return invalid("invalid_channel", "channel "+a+" is not a Stellar account")
			}
			tag, err := tx.Exec(ctx, `INSERT INTO treasury.channels (account) VALUES ($1) ON CONFLICT DO NOTHING`, a)
			if err != nil {
				return err
			}
			n += int(tag.RowsAffected())
		}
		return nil
	})
	return n, err
}

// Channel is one account of the pool.
type Channel struct {
	Account     string
	BailoutID   *uuid.UUID
	AllocatedAt *time.Time
}

// Channels lists the pool.
func (t *Treasury) Channels(ctx context.Context) ([]Channel, error) {
	var out []Channel
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT account, bailout_id, allocated_at FROM treasury.channels ORDER BY account`)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Channel, error) {
			var c Channel
			err := r.Scan(&c.Account, &c.BailoutID, &c.AllocatedAt)
			return c, err
		})
		return err
	})
	return out, err
}

// FreeChannels counts the channels no bailout holds.
func (t *Treasury) FreeChannels(ctx context.Context) (int, error) {
	var n int
	err := t.tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM treasury.channels WHERE bailout_id IS NULL`).Scan(&n)
	})
	return n, err
}

// ChannelOf returns the bailout a channel is allocated to (nil when free); an account that is
// not in the pool is a not-found error.
func (t *Treasury) ChannelOf(ctx context.Context, account string) (*uuid.UUID, error) {
	var id *uuid.UUID
	err := t.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT bailout_id FROM treasury.channels WHERE account = $1`, account).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return missing("unknown_channel", "channel "+account+" is not in the treasury's pool")
		}
		return err
	})
	return id, err
}

func releaseChannel(ctx context.Context, tx pgx.Tx, id uuid.UUID) error {
	_, err := tx.Exec(ctx, `UPDATE treasury.channels SET bailout_id = NULL, allocated_at = NULL WHERE bailout_id = $1`, id)
	return err
}

// ---- requests and reservations ----

// RecordBailoutRequest is the API's record of a request, made before its workflow starts:
// the workflow reserves only what the treasury recorded. Idempotent for the same request; a
// different request under the same id is a conflict.
func (t *Treasury) RecordBailoutRequest(ctx context.Context, b Bailout) (Bailout, error) {
	var out Bailout
	err := t.tx(ctx, func(tx pgx.Tx) error {
		// unlock/expiry are set by the reservation from the worker's timelock; until then
		// they hold the request time.
		if _, err := tx.Exec(ctx, `INSERT INTO treasury.bailouts (id, workflow_id, asset, amount_stroops, destination, reason,
			requested_by, requested_at, unlock_at, expires_at, state) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$8,$8,$9) ON CONFLICT (id) DO NOTHING`,
			b.ID, b.WorkflowID, b.Asset, b.AmountStroops, b.Destination, b.Reason, b.RequestedBy, b.RequestedAt, BailoutRequested); err != nil {
			return err
		}
		var err error
		out, err = scanBailout(tx.QueryRow(ctx, `SELECT `+bailoutColumns+` FROM treasury.bailouts WHERE id = $1`, b.ID))
		if err != nil {
			return err
		}
		if !sameRequest(out, b) {
			return conflict("bailout_conflict", "a different bailout was recorded with this id")
		}
		return nil
	})
	return out, err
}

func sameRequest(rec, b Bailout) bool {
	return rec.WorkflowID == b.WorkflowID && rec.Asset == b.Asset && rec.AmountStroops == b.AmountStroops &&
		rec.Destination == b.Destination && rec.Reason == b.Reason
}

// Reservation is the outcome of ReserveRecorded.
type Reservation struct {
	Bailout Bailout
	// Refused says why nothing was reserved (the record is then rejected); empty on success.
	Refused string
	Code    string
}

// ReserveRecorded turns the recorded request b (matched field by field against the
// treasury's record) into a pending bailout: it allocates a free channel out of known (the
// channels whose keys the worker holds) under a lock, reserves the amount, sets the window and
// appends BailoutRequested. A short fund or an empty pool rejects the record (Refused). No
// record, or a record that differs, is an error and changes nothing. Idempotent.
func (t *Treasury) ReserveRecorded(ctx context.Context, b Bailout, known []string) (Reservation, error) {
	var res Reservation
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rec, err := scanBailout(tx.QueryRow(ctx, `SELECT `+bailoutColumns+` FROM treasury.bailouts WHERE id = $1 FOR UPDATE`, b.ID))
		if err != nil {
			var e *Error
			if errors.As(err, &e) {
				return invalid("no_record", "the treasury has no record of this bailout request")
			}
			return err
		}
		if !sameRequest(rec, b) {
			return invalid("record_mismatch", "the request does not match the treasury's record of this bailout")
		}
		switch rec.State {
		case BailoutRequested:
		case BailoutRejected:
			res = Reservation{Bailout: rec, Refused: "the reservation was refused", Code: "rejected"}
			return nil
		default:
			if rec.Channel == nil {
				return conflict("bailout_closed", "the bailout is already "+rec.State)
			}
			res.Bailout = rec // a retry: already reserved
			return nil
		}
		refuse := func(code, msg string) error {
			if _, err := tx.Exec(ctx, `UPDATE treasury.bailouts SET state = $2, updated_at = now() WHERE id = $1`, b.ID, BailoutRejected); err != nil {
				return err
			}
			res = Reservation{Refused: msg, Code: code}
			res.Bailout, err = scanBailout(tx.QueryRow(ctx, `SELECT `+bailoutColumns+` FROM treasury.bailouts WHERE id = $1`, b.ID))
			return err
		}
		var channel string
		err = tx.QueryRow(ctx, `SELECT account FROM treasury.channels WHERE bailout_id IS NULL AND account = ANY($1)
			ORDER BY added_at, account LIMIT 1 FOR UPDATE SKIP LOCKED`, known).Scan(&channel)
		if errors.Is(err, pgx.ErrNoRows) {
			return refuse("no_channel", "no free channel account: "+ChannelsFix)
		}
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE treasury.balances SET reserved_stroops = reserved_stroops + $2, updated_at = now()
			WHERE asset = $1 AND balance_stroops - reserved_stroops >= $2`, rec.Asset, rec.AmountStroops)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return refuse("insufficient_funds", "the amount exceeds the fund's available "+rec.Asset+" balance")
		}
		if _, err := tx.Exec(ctx, `UPDATE treasury.channels SET bailout_id = $2, allocated_at = now() WHERE account = $1`, channel, b.ID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE treasury.bailouts SET state = $2, channel = $3, unlock_at = $4, expires_at = $5,
			updated_at = now() WHERE id = $1`, b.ID, BailoutPending, channel, b.UnlockAt, b.ExpiresAt); err != nil {
			return err
		}
		if _, err := appendEvent(ctx, tx, EventBailoutRequested, &b.ID, rec.RequestedAt, map[string]any{
			"asset": rec.Asset, "amount_stroops": rec.AmountStroops, "destination": rec.Destination,
			"reason": rec.Reason, "requested_by": rec.RequestedBy, "unlock_at": b.UnlockAt.UTC(), "expires_at": b.ExpiresAt.UTC(),
			"channel": channel,
		}); err != nil {
			return err
		}
		res.Bailout, err = scanBailout(tx.QueryRow(ctx, `SELECT `+bailoutColumns+` FROM treasury.bailouts WHERE id = $1`, b.ID))
		return err
	})
	return res, err
}

// RecordEnvelope stores the pending bailout's envelope hash and channel sequence number (what
// the sweep and reconciliation need to find it on chain).
func (t *Treasury) RecordEnvelope(ctx context.Context, id uuid.UUID, hash string, seq int64) error {
	return t.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE treasury.bailouts SET tx_hash = $2, tx_seq = $3, updated_at = now()
			WHERE id = $1 AND state = $4 AND (tx_hash IS NULL OR (tx_hash = $2 AND tx_seq = $3))`, id, hash, seq, BailoutPending)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return conflict("envelope_conflict", "the bailout is not pending or has another envelope")
		}
		return nil
	})
}

// FailBailout ends a pending bailout whose payment was refused or failed on chain: nothing is
// debited, the reservation and the channel are released, and BailoutFailed records the
// network's result codes. Idempotent.
func (t *Treasury) FailBailout(ctx context.Context, id uuid.UUID, txHash string, codes []string, at time.Time) error {
	return t.tx(ctx, func(tx pgx.Tx) error {
		b, done, err := lockPending(ctx, tx, id, BailoutFailed)
		if err != nil || done {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE treasury.balances SET reserved_stroops = reserved_stroops - $2, updated_at = now()
			WHERE asset = $1`, b.Asset, b.AmountStroops); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE treasury.bailouts SET state = $2, result_codes = $3, updated_at = now() WHERE id = $1`,
			id, BailoutFailed, strings.Join(codes, ",")); err != nil {
			return err
		}
		if err := releaseChannel(ctx, tx, id); err != nil {
			return err
		}
		_, err = appendEvent(ctx, tx, EventBailoutFailed, &id, at, map[string]any{
			"asset": b.Asset, "released_stroops": b.AmountStroops, "tx_hash": txHash, "result_codes": codes,
		})
		return err
	})
}

// OpenBailouts lists the bailouts that hold a reservation or a record without an outcome
// (requested or pending), oldest first: what the sweep looks at.
func (t *Treasury) OpenBailouts(ctx context.Context) ([]Bailout, error) {
	var out []Bailout
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+bailoutColumns+` FROM treasury.bailouts WHERE state IN ($1, $2) ORDER BY requested_at`,
			BailoutRequested, BailoutPending)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			b, err := scanBailout(rows)
			if err != nil {
				return err
			}
			out = append(out, b)
		}
		return rows.Err()
	})
	return out, err
}

// RejectRequest closes a request that was recorded but never reserved (its workflow never
// ran or ended before reserving).
func (t *Treasury) RejectRequest(ctx context.Context, id uuid.UUID) error {
	return t.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE treasury.bailouts SET state = $2, updated_at = now() WHERE id = $1 AND state = $3`,
			id, BailoutRejected, BailoutRequested)
		return err
	})
}

// ApprovalCount counts a bailout's BailoutApproved events.
func (t *Treasury) ApprovalCount(ctx context.Context, id uuid.UUID) (int, error) {
	var n int
	err := t.tx(ctx, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT count(*) FROM treasury.events WHERE bailout_id = $1 AND type = $2`, id, EventBailoutApproved).Scan(&n)
	})
	return n, err
}
