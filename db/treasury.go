package db

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creatorvault/orchestrator/contracts"
)

// TreasuryRole is the database role that owns and alone writes schema treasury.
const TreasuryRole = "orchestrator_treasury"

// Treasury event types, the tamper-evident chain's vocabulary.
const (
	EventFundCapitalized  = "InsuranceFundCapitalized"
	EventBailoutRequested = "BailoutRequested"
	EventBailoutApproved  = "BailoutApproved"
	EventBailoutCancelled = "BailoutCancelled"
	EventBailoutExpired   = "BailoutExpired"
	EventBailoutExecuted  = "BailoutExecuted"
)

// Bailout states in the database.
const (
	BailoutPending   = "pending"
	BailoutCancelled = "cancelled"
	BailoutExpired   = "expired"
	BailoutExecuted  = "executed"
)

// GenesisHash is the prev_hash of the first event.
var GenesisHash = strings.Repeat("0", 64)

// Treasury is the only writer of schema treasury: every transaction it opens runs as
// TreasuryRole (SET LOCAL ROLE) on a pool logged in as the treasury login
// orchestrator_treasury_login (TREASURY_DATABASE_URL), a member of that role. The runtime role
// of the API and workers is no member: on its pool every transaction here fails.
type Treasury struct {
	pool *pgxpool.Pool
}

// NewTreasury wraps a pool.
func NewTreasury(pool *pgxpool.Pool) *Treasury { return &Treasury{pool: pool} }

func (t *Treasury) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, t.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL ROLE "+TreasuryRole); err != nil {
			return fmt.Errorf("set treasury role: %w", err)
		}
		return fn(tx)
	})
}

// ---- events and the hash chain ----

// TreasuryEvent is one entry of the append-only log.
type TreasuryEvent struct {
	Seq        int64
	Type       string
	BailoutID  *uuid.UUID
	Payload    json.RawMessage
	OccurredAt time.Time
	PrevHash   string
	Hash       string
}

// EventHash is SHA-256 over prev_hash, a newline and the canonical JSON of the event's
// content (seq, type, bailout id, time in RFC 3339 UTC to the microsecond, payload).
func EventHash(prevHash string, seq int64, typ string, bailoutID *uuid.UUID, at time.Time, payload json.RawMessage) string {
	canon := struct {
		Seq        int64           `json:"seq"`
		Type       string          `json:"type"`
		BailoutID  *uuid.UUID      `json:"bailout_id"`
		OccurredAt string          `json:"occurred_at"`
		Payload    json.RawMessage `json:"payload"`
	}{seq, typ, bailoutID, at.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano), payload}
	b, err := json.Marshal(canon)
	if err != nil {
		panic(fmt.Sprintf("treasury event is not JSON: %v", err))
	}
	h := sha256.New()
	h.Write([]byte(prevHash))
	h.Write([]byte("\n"))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// appendEvent adds an event at the chain's head. An advisory lock serializes appenders.
func appendEvent(ctx context.Context, tx pgx.Tx, typ string, bailoutID *uuid.UUID, at time.Time, payload any) (TreasuryEvent, error) {
	raw, err := json.Marshal(payload)
	if err != nil {
		return TreasuryEvent{}, err
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('treasury.events'))`); err != nil {
		return TreasuryEvent{}, err
	}
	ev := TreasuryEvent{Seq: 1, Type: typ, BailoutID: bailoutID, Payload: raw,
		OccurredAt: at.UTC().Truncate(time.Microsecond), PrevHash: GenesisHash}
	err = tx.QueryRow(ctx, `SELECT seq + 1, hash FROM treasury.events ORDER BY seq DESC LIMIT 1`).Scan(&ev.Seq, &ev.PrevHash)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return TreasuryEvent{}, err
	}
	ev.Hash = EventHash(ev.PrevHash, ev.Seq, typ, bailoutID, ev.OccurredAt, raw)
	_, err = tx.Exec(ctx, `INSERT INTO treasury.events (seq, type, bailout_id, payload, occurred_at, prev_hash, hash)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, ev.Seq, typ, bailoutID, string(raw), ev.OccurredAt, ev.PrevHash, ev.Hash)
	return ev, err
}

func scanEvents(rows pgx.Rows) ([]TreasuryEvent, error) {
	defer rows.Close()
	var out []TreasuryEvent
	for rows.Next() {
		var e TreasuryEvent
		var payload string
		if err := rows.Scan(&e.Seq, &e.Type, &e.BailoutID, &payload, &e.OccurredAt, &e.PrevHash, &e.Hash); err != nil {
			return nil, err
		}
		e.Payload = json.RawMessage(payload)
		out = append(out, e)
	}
	return out, rows.Err()
}

const eventColumns = `seq, type, bailout_id, payload, occurred_at, prev_hash, hash`

// RecentEvents returns the newest events, newest first.
func (t *Treasury) RecentEvents(ctx context.Context, limit int) ([]TreasuryEvent, error) {
	var out []TreasuryEvent
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM treasury.events ORDER BY seq DESC LIMIT $1`, limit)
		if err != nil {
			return err
		}
		out, err = scanEvents(rows)
		return err
	})
	return out, err
}

// BailoutEvents returns a bailout's events, oldest first.
func (t *Treasury) BailoutEvents(ctx context.Context, id uuid.UUID) ([]TreasuryEvent, error) {
	var out []TreasuryEvent
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM treasury.events WHERE bailout_id = $1 ORDER BY seq`, id)
		if err != nil {
			return err
		}
		out, err = scanEvents(rows)
		return err
	})
	return out, err
}

// ChainError says where the hash chain breaks.
type ChainError struct {
	Seq    int64
	Reason string
}

func (e *ChainError) Error() string { return fmt.Sprintf("event %d: %s", e.Seq, e.Reason) }

// VerifyChain walks the whole event log in order and recomputes every hash. It returns how
// many events it checked, or a *ChainError at the first break.
func (t *Treasury) VerifyChain(ctx context.Context) (int64, error) {
	var n int64
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT `+eventColumns+` FROM treasury.events ORDER BY seq`)
		if err != nil {
			return err
		}
		defer rows.Close()
		prev := GenesisHash
		for rows.Next() {
			var e TreasuryEvent
			var payload string
			if err := rows.Scan(&e.Seq, &e.Type, &e.BailoutID, &payload, &e.OccurredAt, &e.PrevHash, &e.Hash); err != nil {
				return err
			}
			if e.Seq != n+1 {
				return &ChainError{Seq: e.Seq, Reason: fmt.Sprintf("sequence gap: expected %d", n+1)}
			}
			if e.PrevHash != prev {
				return &ChainError{Seq: e.Seq, Reason: "prev_hash does not match the previous event's hash"}
			}
			if got := EventHash(e.PrevHash, e.Seq, e.Type, e.BailoutID, e.OccurredAt, json.RawMessage(payload)); got != e.Hash {
				return &ChainError{Seq: e.Seq, Reason: "hash does not match the event's content"}
			}
			prev = e.Hash
			n++
		}
		return rows.Err()
	})
	return n, err
}

// ---- balances and yield ----

// FundBalance is one asset of the insurance fund.
type FundBalance struct {
	Asset    string
	Balance  int64
	Reserved int64
}

// Available is what a new bailout may still reserve.
func (b FundBalance) Available() int64 { return b.Balance - b.Reserved }

// Balances returns the fund per asset.
func (t *Treasury) Balances(ctx context.Context) ([]FundBalance, error) {
	var out []FundBalance
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT asset, balance_stroops, reserved_stroops FROM treasury.balances ORDER BY asset`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b FundBalance
			if err := rows.Scan(&b.Asset, &b.Balance, &b.Reserved); err != nil {
				return err
			}
			out = append(out, b)
		}
		return rows.Err()
	})
	return out, err
}

// YieldInput is a DeFi yield event to route.
type YieldInput struct {
	ID           uuid.UUID
	Asset        string
	GrossStroops int64
	OccurredAt   time.Time
}

// YieldResult is how a yield was split.
type YieldResult struct {
	ID           uuid.UUID
	Asset        string
	GrossStroops int64
	FeeStroops   int64
	NetStroops   int64
	OccurredAt   time.Time
	// Created is false when the event had been recorded before (nothing changed).
	Created bool
}

// RecordYield credits 1% of a yield (contracts.SplitYield) to the fund and appends
// InsuranceFundCapitalized. It is idempotent by the event's id: the same event again changes
// nothing; the same id with different content is a conflict.
func (t *Treasury) RecordYield(ctx context.Context, in YieldInput) (YieldResult, error) {
	if in.Asset != contracts.AssetUSDC && in.Asset != contracts.AssetXLM {
		return YieldResult{}, invalid("unsupported_asset", "asset must be USDC or XLM")
	}
	fee, net, err := contracts.SplitYield(in.GrossStroops)
	if err != nil {
		return YieldResult{}, invalid("invalid_amount", err.Error())
	}
	at := in.OccurredAt.UTC().Truncate(time.Microsecond)
	res := YieldResult{ID: in.ID, Asset: in.Asset, GrossStroops: in.GrossStroops, FeeStroops: fee, NetStroops: net, OccurredAt: at}
	err = t.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO treasury.yield_events (id, asset, gross_stroops, fee_stroops, net_stroops, occurred_at)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`, in.ID, in.Asset, in.GrossStroops, fee, net, at)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var old YieldResult
			if err := tx.QueryRow(ctx, `SELECT asset, gross_stroops, fee_stroops, net_stroops, occurred_at
				FROM treasury.yield_events WHERE id = $1`, in.ID).Scan(&old.Asset, &old.GrossStroops, &old.FeeStroops, &old.NetStroops, &old.OccurredAt); err != nil {
				return err
			}
			if old.Asset != in.Asset || old.GrossStroops != in.GrossStroops || !old.OccurredAt.Equal(at) {
				return conflict("yield_conflict", "a different yield event was recorded with this id")
			}
			old.ID, old.OccurredAt = in.ID, old.OccurredAt.UTC()
			res = old
			return nil
		}
		res.Created = true
		if _, err := tx.Exec(ctx, `UPDATE treasury.balances SET balance_stroops = balance_stroops + $2, updated_at = now()
			WHERE asset = $1`, in.Asset, fee); err != nil {
			return err
		}
		_, err = appendEvent(ctx, tx, EventFundCapitalized, nil, at, map[string]any{
			"yield_id": in.ID, "asset": in.Asset, "gross_stroops": in.GrossStroops,
			"fee_stroops": fee, "net_stroops": net,
		})
		return err
	})
	return res, err
}

// ---- bailouts ----

// Bailout is a request to pay out of the fund.
type Bailout struct {
	ID            uuid.UUID
	WorkflowID    string
	Asset         string
	AmountStroops int64
	Destination   string
	Reason        string
	RequestedBy   *uuid.UUID
	RequestedAt   time.Time
	UnlockAt      time.Time
	ExpiresAt     time.Time
	State         string
	TxHash        *string
	UpdatedAt     time.Time
}

const bailoutColumns = `id, workflow_id, asset, amount_stroops, destination, reason, requested_by, requested_at,
	unlock_at, expires_at, state, tx_hash, updated_at`

func scanBailout(row pgx.Row) (Bailout, error) {
	var b Bailout
	err := row.Scan(&b.ID, &b.WorkflowID, &b.Asset, &b.AmountStroops, &b.Destination, &b.Reason, &b.RequestedBy,
		&b.RequestedAt, &b.UnlockAt, &b.ExpiresAt, &b.State, &b.TxHash, &b.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return b, missing("not_found", "bailout not found")
	}
	return b, err
}

// GetBailout reads one bailout.
func (t *Treasury) GetBailout(ctx context.Context, id uuid.UUID) (Bailout, error) {
	var b Bailout
	err := t.tx(ctx, func(tx pgx.Tx) error {
		var err error
		b, err = scanBailout(tx.QueryRow(ctx, `SELECT `+bailoutColumns+` FROM treasury.bailouts WHERE id = $1`, id))
		return err
	})
	return b, err
}

// ReserveBailout records a requested bailout, reserves its amount out of the available
// balance (refused when it does not fit) and appends BailoutRequested. Idempotent by id.
func (t *Treasury) ReserveBailout(ctx context.Context, b Bailout) (Bailout, error) {
	if b.Asset != contracts.AssetUSDC && b.Asset != contracts.AssetXLM {
		return Bailout{}, invalid("unsupported_asset", "asset must be USDC or XLM")
	}
	if b.AmountStroops <= 0 {
		return Bailout{}, invalid("invalid_amount", "amount must be positive")
	}
	var out Bailout
	err := t.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO treasury.bailouts (id, workflow_id, asset, amount_stroops, destination, reason,
			requested_by, requested_at, unlock_at, expires_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10) ON CONFLICT (id) DO NOTHING`,
			b.ID, b.WorkflowID, b.Asset, b.AmountStroops, b.Destination, b.Reason, b.RequestedBy, b.RequestedAt, b.UnlockAt, b.ExpiresAt)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			tag, err = tx.Exec(ctx, `UPDATE treasury.balances SET reserved_stroops = reserved_stroops + $2, updated_at = now()
				WHERE asset = $1 AND balance_stroops - reserved_stroops >= $2`, b.Asset, b.AmountStroops)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return invalid("insufficient_funds", "the amount exceeds the fund's available "+b.Asset+" balance")
			}
			if _, err := appendEvent(ctx, tx, EventBailoutRequested, &b.ID, b.RequestedAt, map[string]any{
				"asset": b.Asset, "amount_stroops": b.AmountStroops, "destination": b.Destination,
				"reason": b.Reason, "requested_by": b.RequestedBy, "unlock_at": b.UnlockAt.UTC(), "expires_at": b.ExpiresAt.UTC(),
			}); err != nil {
				return err
			}
		}
		out, err = scanBailout(tx.QueryRow(ctx, `SELECT `+bailoutColumns+` FROM treasury.bailouts WHERE id = $1`, b.ID))
		return err
	})
	return out, err
}

// RecordApproval appends BailoutApproved for a council member, once per member.
func (t *Treasury) RecordApproval(ctx context.Context, id uuid.UUID, signer string, at time.Time) error {
	return t.tx(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM treasury.events WHERE bailout_id = $1 AND type = $2
			AND (payload::jsonb)->>'signer' = $3`, id, EventBailoutApproved, signer).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := appendEvent(ctx, tx, EventBailoutApproved, &id, at, map[string]any{"signer": signer})
		return err
	})
}

// lockPending locks a bailout; done is true when it is already in state want (a retry).
func lockPending(ctx context.Context, tx pgx.Tx, id uuid.UUID, want string) (b Bailout, done bool, err error) {
	b, err = scanBailout(tx.QueryRow(ctx, `SELECT `+bailoutColumns+` FROM treasury.bailouts WHERE id = $1 FOR UPDATE`, id))
	if err != nil {
		return b, false, err
	}
	if b.State == want {
		return b, true, nil
	}
	if b.State != BailoutPending {
		return b, false, conflict("bailout_closed", "the bailout is already "+b.State)
	}
	return b, false, nil
}

// CloseBailout ends a pending bailout without paying (state cancelled or expired): the
// reservation is released and BailoutCancelled / BailoutExpired appended. Idempotent.
func (t *Treasury) CloseBailout(ctx context.Context, id uuid.UUID, state, by string, at time.Time) error {
	typ := map[string]string{BailoutCancelled: EventBailoutCancelled, BailoutExpired: EventBailoutExpired}[state]
	if typ == "" {
		return invalid("invalid_state", "a bailout closes as cancelled or expired")
	}
	return t.tx(ctx, func(tx pgx.Tx) error {
		b, done, err := lockPending(ctx, tx, id, state)
		if err != nil || done {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE treasury.balances SET reserved_stroops = reserved_stroops - $2, updated_at = now()
			WHERE asset = $1`, b.Asset, b.AmountStroops); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE treasury.bailouts SET state = $2, updated_at = now() WHERE id = $1`, id, state); err != nil {
			return err
		}
		payload := map[string]any{"released_stroops": b.AmountStroops, "asset": b.Asset}
		if by != "" {
			payload["by"] = by
		}
		_, err = appendEvent(ctx, tx, typ, &id, at, payload)
		return err
	})
}

// ExecuteBailout debits a paid bailout from the fund (balance and reservation), marks it
// executed with its transaction hash and appends BailoutExecuted. Idempotent.
func (t *Treasury) ExecuteBailout(ctx context.Context, id uuid.UUID, txHash string, at time.Time) error {
	return t.tx(ctx, func(tx pgx.Tx) error {
		b, done, err := lockPending(ctx, tx, id, BailoutExecuted)
		if err != nil || done {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE treasury.balances SET balance_stroops = balance_stroops - $2,
			reserved_stroops = reserved_stroops - $2, updated_at = now() WHERE asset = $1`, b.Asset, b.AmountStroops); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE treasury.bailouts SET state = $2, tx_hash = $3, updated_at = now() WHERE id = $1`,
			id, BailoutExecuted, txHash); err != nil {
			return err
		}
		_, err = appendEvent(ctx, tx, EventBailoutExecuted, &id, at, map[string]any{
			"asset": b.Asset, "amount_stroops": b.AmountStroops, "destination": b.Destination, "tx_hash": txHash,
		})
		return err
	})
}
