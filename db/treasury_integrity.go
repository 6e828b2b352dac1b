package db

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/creatorvault/orchestrator/contracts"
)

// EventReconcileDrift records that the daily reconciliation found the books and the chain
// disagreeing; its payload is the report.
const EventReconcileDrift = "ReconcileDrift"

// HeadChannel is the PostgreSQL notification channel every bailout event notifies (payload:
// its sequence number), so a worker can anchor the new head at once.
const HeadChannel = "treasury_head"

// Head returns the newest event of the chain; Seq is 0 when the chain is empty.
func (t *Treasury) Head(ctx context.Context) (contracts.ChainHead, error) {
	var h contracts.ChainHead
	err := t.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT seq, hash FROM treasury.events ORDER BY seq DESC LIMIT 1`).Scan(&h.Seq, &h.Hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return h, err
}

// EventHashes returns the stored hash of each of the given events that exists.
func (t *Treasury) EventHashes(ctx context.Context, seqs []int64) (map[int64]string, error) {
	out := map[int64]string{}
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT seq, hash FROM treasury.events WHERE seq = ANY($1)`, seqs)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var seq int64
			var hash string
			if err := rows.Scan(&seq, &hash); err != nil {
				return err
			}
			out[seq] = hash
		}
		return rows.Err()
	})
	return out, err
}

// RecordAnchor notes a published anchor (idempotent by its transaction).
func (t *Treasury) RecordAnchor(ctx context.Context, a contracts.Anchor) error {
	return t.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO treasury.anchors (tx_hash, seq, head_hash, anchored_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (tx_hash) DO NOTHING`, a.TxHash, a.Seq, a.Hash, a.At.UTC())
		return err
	})
}

// AnchoredAt returns the recorded anchor of event seq with hash, if there is one.
func (t *Treasury) AnchoredAt(ctx context.Context, head contracts.ChainHead) (contracts.Anchor, bool, error) {
	a := contracts.Anchor{ChainHead: head}
	found := true
	err := t.tx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT tx_hash, anchored_at FROM treasury.anchors WHERE seq = $1 AND head_hash = $2
			ORDER BY anchored_at LIMIT 1`, head.Seq, head.Hash).Scan(&a.TxHash, &a.At)
		if errors.Is(err, pgx.ErrNoRows) {
			found = false
			return nil
		}
		return err
	})
	a.At = a.At.UTC()
	return a, found, err
}

// ExecutedBailouts lists every bailout booked as executed, oldest first.
func (t *Treasury) ExecutedBailouts(ctx context.Context) ([]contracts.BookedBailout, error) {
	var out []contracts.BookedBailout
	err := t.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, asset, amount_stroops, destination, tx_hash FROM treasury.bailouts
			WHERE state = $1 ORDER BY updated_at, id`, BailoutExecuted)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var b contracts.BookedBailout
			var id uuid.UUID
			if err := rows.Scan(&id, &b.Asset, &b.AmountStroops, &b.Destination, &b.TxHash); err != nil {
				return err
			}
			b.ID = id.String()
			out = append(out, b)
		}
		return rows.Err()
	})
	return out, err
}

// RecordReconcileDrift appends ReconcileDrift with the report, once per run (a retried
// activity of the same run appends nothing more).
func (t *Treasury) RecordReconcileDrift(ctx context.Context, runID string, at time.Time, r contracts.ReconcileReport) error {
	return t.tx(ctx, func(tx pgx.Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM treasury.events WHERE type = $1 AND (payload::jsonb)->>'run_id' = $2`,
			EventReconcileDrift, runID).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		_, err := appendEvent(ctx, tx, EventReconcileDrift, nil, at, map[string]any{
			"run_id": runID, "differences": r.Differences, "assets": r.Assets, "bailouts_checked": r.Bailouts,
		})
		return err
	})
}

// Fund returns the fund per asset, as reconciliation compares it with the chain.
func (t *Treasury) Fund(ctx context.Context) ([]contracts.FundAsset, error) {
	bs, err := t.Balances(ctx)
	out := make([]contracts.FundAsset, 0, len(bs))
	for _, b := range bs {
		out = append(out, contracts.FundAsset{Asset: b.Asset, Balance: b.Balance, Reserved: b.Reserved})
	}
	return out, err
}
