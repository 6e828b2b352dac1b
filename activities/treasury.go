// Package activities holds the Temporal activities, one file per domain: methods on a struct
// holding their dependencies.
package activities

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/clients/horizonclient"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/txnbuild"
	"github.com/stellar/go-stellar-sdk/xdr"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
)

// SequenceHeadroom is how far above the treasury's current sequence number a bailout
// transaction's own sequence number is placed. With the CAP-21 precondition minSeqNum =
// current, the envelope stays valid while the account makes up to this many other
// transactions during the timelock.
const SequenceHeadroom = 1 << 20

// Treasury holds what the treasury's activities need.
type Treasury struct {
	Store  *db.Treasury
	Config config.Treasury
	// HTTP reaches Horizon; nil means a client with a 30 s timeout.
	HTTP *http.Client
	// Channels are the channel accounts' keys by account (TREASURY_CHANNEL_SEEDS_FILE): the
	// only channels this worker allocates.
	Channels map[string]*keypair.Full
	// Temporal lets the sweep see whether a bailout's workflow still runs.
	Temporal client.Client
}

func (a *Treasury) horizon() *horizonclient.Client {
	hc := a.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &horizonclient.Client{HorizonURL: a.Config.HorizonURL, HTTP: hc}
}

// business turns a domain error into a non-retryable activity failure; others retry.
func business(err error) error {
	if e, ok := db.AsError(err); ok && (e.Kind == db.KindInvalid || e.Kind == db.KindConflict || e.Kind == db.KindNotFound) {
		return temporal.NewNonRetryableApplicationError(e.Message, e.Code, nil)
	}
	return err
}

// YieldInput is a DeFi yield event for RecordYield.
type YieldInput struct {
	ID           uuid.UUID
	Asset        string
	GrossStroops int64
	OccurredAt   time.Time
}

// YieldResult is the split of a recorded yield.
type YieldResult struct {
	FeeStroops int64
	NetStroops int64
	Created    bool
}

// RecordYield credits 1% of a yield to the insurance fund, idempotently by the event's id:
// the activity other workflows call.
func (a *Treasury) RecordYield(ctx context.Context, in YieldInput) (YieldResult, error) {
	r, err := a.Store.RecordYield(ctx, db.YieldInput{ID: in.ID, Asset: in.Asset, GrossStroops: in.GrossStroops, OccurredAt: in.OccurredAt})
	if err != nil {
		return YieldResult{}, business(err)
	}
	return YieldResult{FeeStroops: r.FeeStroops, NetStroops: r.NetStroops, Created: r.Created}, nil
}

// ReserveInput records a bailout and reserves its amount.
type ReserveInput struct {
	ID          uuid.UUID
	WorkflowID  string
	Request     contracts.BailoutRequest
	RequestedBy *uuid.UUID
	RequestedAt time.Time
	Window      contracts.Window
}

// ReserveBailout validates the request against the configuration and reserves its amount
// (refused, not retried, when the fund's available balance is short).
func (a *Treasury) ReserveBailout(ctx context.Context, in ReserveInput) error {
	if err := in.Request.Validate(a.Config.USDCIssuer); err != nil {
		return temporal.NewNonRetryableApplicationError(err.Error(), "invalid_request", nil)
	}
	_, err := a.Store.ReserveBailout(ctx, db.Bailout{
		ID: in.ID, WorkflowID: in.WorkflowID, Asset: in.Request.Asset, AmountStroops: in.Request.AmountStroops,
		Destination: in.Request.Destination, Reason: in.Request.Reason, RequestedBy: in.RequestedBy,
		RequestedAt: in.RequestedAt, UnlockAt: in.Window.Unlock, ExpiresAt: in.Window.Expiry,
	})
	return business(err)
}

// BuildInput describes the payment to build.
type BuildInput struct {
	ID      uuid.UUID
	Request contracts.BailoutRequest
	Window  contracts.Window
}

// BuiltTx is the unsigned payment transaction and the hash the council signs.
type BuiltTx struct {
	// XDR is the unsigned envelope, base64.
	XDR string
	// Hash is the transaction hash under the network passphrase, hex.
	Hash string
	// Sequence is the transaction's sequence number; MinSequence its CAP-21 precondition.
	Sequence    int64
	MinSequence int64
	// Channel is the transaction source (empty for the first version's envelopes).
	Channel string
}

// BuildBailoutTx builds the payment from the treasury account with txnbuild. Time bounds are
// the bailout window (min = request + timelock, max = min + grace). The sequence number is
// SequenceHeadroom above the account's current one with minSeqNum = current, so the envelope
// stays valid while the treasury makes other transactions during the 14 days.
func (a *Treasury) BuildBailoutTx(ctx context.Context, in BuildInput) (BuiltTx, error) {
	asset, err := contracts.ParseAsset(in.Request.Asset, a.Config.USDCIssuer)
	if err != nil {
		return BuiltTx{}, temporal.NewNonRetryableApplicationError(err.Error(), "unsupported_asset", nil)
	}
	if !contracts.ValidAccount(a.Config.Account) {
		return BuiltTx{}, temporal.NewNonRetryableApplicationError("TREASURY_ACCOUNT is not a Stellar account", "config", nil)
	}
	acct, err := a.horizon().AccountDetail(horizonclient.AccountRequest{AccountID: a.Config.Account})
	if err != nil {
		if horizonclient.IsNotFoundError(err) {
			return BuiltTx{}, temporal.NewNonRetryableApplicationError("the treasury account does not exist on the network", "no_account", nil)
		}
		return BuiltTx{}, fmt.Errorf("load treasury account: %w", err)
	}
	var op txnbuild.Asset = txnbuild.NativeAsset{}
	if !asset.Native() {
		op = txnbuild.CreditAsset{Code: asset.Code, Issuer: asset.Issuer}
	}
	minSeq := acct.Sequence
	memo := sha256.Sum256([]byte("creatorvault-bailout:" + in.ID.String()))
	tx, err := txnbuild.NewTransaction(txnbuild.TransactionParams{
		SourceAccount:        &txnbuild.SimpleAccount{AccountID: a.Config.Account, Sequence: minSeq + SequenceHeadroom - 1},
		IncrementSequenceNum: true,
		Operations: []txnbuild.Operation{&txnbuild.Payment{
			Destination: in.Request.Destination, Amount: amount.StringFromInt64(in.Request.AmountStroops), Asset: op,
		}},
		BaseFee: txnbuild.MinBaseFee,
		Memo:    txnbuild.MemoHash(memo),
		Preconditions: txnbuild.Preconditions{
			TimeBounds:        txnbuild.NewTimebounds(in.Window.Unlock.Unix(), in.Window.Expiry.Unix()),
			MinSequenceNumber: &minSeq,
		},
	})
	if err != nil {
		return BuiltTx{}, temporal.NewNonRetryableApplicationError("build payment: "+err.Error(), "build", nil)
	}
	env, err := tx.Base64()
	if err != nil {
		return BuiltTx{}, err
	}
	hash, err := tx.HashHex(a.Config.NetworkPassphrase)
	if err != nil {
		return BuiltTx{}, err
	}
	return BuiltTx{XDR: env, Hash: hash, Sequence: tx.SequenceNumber(), MinSequence: minSeq}, nil
}

// ApprovalInput records one council approval.
type ApprovalInput struct {
	ID     uuid.UUID
	Signer string
	At     time.Time
}

// RecordApproval appends BailoutApproved (once per member).
func (a *Treasury) RecordApproval(ctx context.Context, in ApprovalInput) error {
	return business(a.Store.RecordApproval(ctx, in.ID, in.Signer, in.At))
}

// CloseInput ends a bailout without paying.
type CloseInput struct {
	ID    uuid.UUID
	State string // contracts.BailoutCancelled or contracts.BailoutExpired
	By    string
	At    time.Time
}

// CloseBailout releases the reservation and appends BailoutCancelled or BailoutExpired.
func (a *Treasury) CloseBailout(ctx context.Context, in CloseInput) error {
	return business(a.Store.CloseBailout(ctx, in.ID, in.State, in.By, in.At))
}

// Signature is a council member's ed25519 signature over the transaction hash.
type Signature = contracts.Signature

// ExecuteInput is a fully approved bailout.
type ExecuteInput struct {
	ID         uuid.UUID
	XDR        string
	Hash       string
	Signatures []Signature
	At         time.Time
}

// ExecuteBailout executes a bailout of the first workflow version (the treasury as the
// transaction source, before channel accounts): it adds the council's signatures and brings
// the envelope to the network once (looked up by hash first), then books what the network
// did: successful → debited and executed; failed on chain → BailoutFailed, reservation
// released, and a non-retryable error; refused for good → a non-retryable error.
func (a *Treasury) ExecuteBailout(ctx context.Context, in ExecuteInput) (string, error) {
	tx, err := contracts.DecodeEnvelope(in.XDR)
	if err != nil {
		return "", temporal.NewNonRetryableApplicationError("stored envelope does not decode", "bad_envelope", err)
	}
	hash, err := tx.HashHex(a.Config.NetworkPassphrase)
	if err != nil {
		return "", err
	}
	if hash != in.Hash {
		return "", temporal.NewNonRetryableApplicationError("envelope hash differs from the approved hash", "hash_mismatch", nil)
	}
	raw, _ := tx.Hash(a.Config.NetworkPassphrase)
	for _, s := range in.Signatures {
		kp, err := keypair.ParseAddress(s.Signer)
		if err != nil || kp.Verify(raw[:], s.Signature) != nil {
			return "", temporal.NewNonRetryableApplicationError("a council signature does not verify", "bad_signature", nil)
		}
		tx, err = tx.AddSignatureDecorated(xdr.DecoratedSignature{Hint: xdr.SignatureHint(kp.Hint()), Signature: s.Signature})
		if err != nil {
			return "", err
		}
	}
	oc, found, err := a.lookup(hash)
	if err != nil {
		return "", err
	}
	if !found {
		env, err := tx.Base64()
		if err != nil {
			return "", err
		}
		if oc, err = a.submit(env, hash); err != nil {
			return "", err
		}
	}
	if err := a.book(ctx, in.ID, oc, in.At); err != nil {
		return "", err
	}
	if oc.State != contracts.StateExecuted {
		return "", temporal.NewNonRetryableApplicationError("the payment did not execute: "+strings.Join(oc.Codes, ", "), "payment_failed", nil)
	}
	return hash, nil
}

// SignatureBase64 renders a signature for the API and CLI (contracts.SignatureBase64).
func SignatureBase64(sig []byte) string { return contracts.SignatureBase64(sig) }

// ParseSignature reads a base64 signature (contracts.ParseSignature).
func ParseSignature(s string) ([]byte, error) { return contracts.ParseSignature(s) }
