package activities

import (
	"context"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creatorvault/orchestrator/db"
)

// ErasureCounts says what an erasure step changed.
type ErasureCounts = db.ErasureCounts

// Erasure holds the dependencies of the erasure steps. Each step is idempotent: a retry, or a
// second erasure of the same user, changes nothing more.
type Erasure struct {
	Pool     *pgxpool.Pool
	Register db.ErasureRegister
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// ErasureStepInput names the user a step erases.
type ErasureStepInput struct {
	UserID uuid.UUID
	// Pseudonym re-keys the access log (chosen once by the workflow).
	Pseudonym uuid.UUID
}

func (a *Erasure) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// Begin records the request (first time wins) in the database and then in the erasure
// register outside it, before any data is touched: from here on a restore re-applies it.
func (a *Erasure) Begin(ctx context.Context, in ErasureStepInput) (time.Time, error) {
	at, err := db.BeginErasure(ctx, a.Pool, in.UserID, a.now())
	if err != nil {
		if e, ok := db.AsError(err); ok && e.Kind == db.KindNotFound {
			return time.Time{}, nonRetryable("user_not_found", err)
		}
		return time.Time{}, err
	}
	return at, a.Register.Record(ctx, db.RegisteredErasure{UserID: in.UserID, RequestedAt: at.UTC()})
}

// RevokeSessions ends the user's sessions (every API instance drops their tokens at once).
func (a *Erasure) RevokeSessions(ctx context.Context, in ErasureStepInput) (ErasureCounts, error) {
	return db.EraseSessions(ctx, a.Pool, in.UserID, a.now())
}

// EraseIdentity removes credentials, key, display name, Stellar account and handle.
func (a *Erasure) EraseIdentity(ctx context.Context, in ErasureStepInput) (ErasureCounts, error) {
	return db.EraseIdentity(ctx, a.Pool, in.UserID, a.now())
}

// WipeMessages wipes the ciphertext of every message the user sent or received.
func (a *Erasure) WipeMessages(ctx context.Context, in ErasureStepInput) (ErasureCounts, error) {
	return db.WipeMessages(ctx, a.Pool, in.UserID, a.now())
}

// TombstoneComments replaces the user's comments by tombstones and removes their likes.
func (a *Erasure) TombstoneComments(ctx context.Context, in ErasureStepInput) (ErasureCounts, error) {
	return db.TombstoneComments(ctx, a.Pool, in.UserID, a.now())
}

// PseudonymiseAccessLog re-keys the user's access-log rows to the pseudonym.
func (a *Erasure) PseudonymiseAccessLog(ctx context.Context, in ErasureStepInput) (ErasureCounts, error) {
	return db.PseudonymiseAccessLog(ctx, a.Pool, in.UserID, in.Pseudonym)
}

// CompleteInput records the result.
type CompleteInput struct {
	UserID uuid.UUID
	Counts ErasureCounts
}

// Complete records the erasure's result (the first completion wins).
func (a *Erasure) Complete(ctx context.Context, in CompleteInput) error {
	return db.CompleteErasure(ctx, a.Pool, in.UserID, in.Counts, a.now())
}
