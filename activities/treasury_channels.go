package activities

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/clients/horizonclient"
	"github.com/stellar/go-stellar-sdk/keypair"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
)

// The activities of bailouts with channel accounts. They do I/O only: the rules and the
// Stellar side are contracts'.

// Policy is the worker's bailout policy, read from its configuration once per bailout and
// recorded in the workflow's history: the workflow's input never decides it.
type Policy struct {
	Council  []string
	Required int
	Timelock time.Duration
	Grace    time.Duration
}

// BailoutPolicy returns the configured council, the number of signatures required and the
// timelock and grace period.
func (a *Treasury) BailoutPolicy(ctx context.Context) (Policy, error) {
	if err := contracts.ValidateCouncil(a.Config.CouncilKeys); err != nil {
		return Policy{}, temporal.NewNonRetryableApplicationError(err.Error(), "config", nil)
	}
	if a.Config.Timelock <= 0 || a.Config.GracePeriod <= 0 {
		return Policy{}, temporal.NewNonRetryableApplicationError("BAILOUT_TIMELOCK and BAILOUT_GRACE_PERIOD must be positive", "config", nil)
	}
	return Policy{Council: append([]string(nil), a.Config.CouncilKeys...), Required: contracts.CouncilSize,
		Timelock: a.Config.Timelock, Grace: a.Config.GracePeriod}, nil
}

// ReserveRecordedInput asks to reserve a bailout the API recorded.
type ReserveRecordedInput struct {
	ID         uuid.UUID
	WorkflowID string
	Request    contracts.BailoutRequest
	Timelock   time.Duration
	Grace      time.Duration
}

// Reserved is a reserved bailout: its recorded request time, window and channel.
type Reserved struct {
	RequestedAt time.Time
	Window      contracts.Window
	Channel     string
}

// ReserveRecordedBailout checks the run against the treasury's record of the request (id,
// workflow id and every field must match; no record, no reservation), then allocates a
// channel account and reserves the amount. A short fund or an empty channel pool is a
// non-retryable refusal.
func (a *Treasury) ReserveRecordedBailout(ctx context.Context, in ReserveRecordedInput) (Reserved, error) {
	if err := in.Request.Validate(a.Config.USDCIssuer); err != nil {
		return Reserved{}, temporal.NewNonRetryableApplicationError(err.Error(), "invalid_request", nil)
	}
	if in.ID != contracts.BailoutID(in.Request) || in.WorkflowID != contracts.BailoutWorkflowID(in.ID) {
		return Reserved{}, temporal.NewNonRetryableApplicationError("the bailout id or workflow id does not derive from the request", "record_mismatch", nil)
	}
	rec, err := a.Store.GetBailout(ctx, in.ID)
	if e, ok := db.AsError(err); ok && e.Kind == db.KindNotFound {
		return Reserved{}, temporal.NewNonRetryableApplicationError("the treasury has no record of this bailout request", "no_record", nil)
	}
	if err != nil {
		return Reserved{}, err
	}
	w := contracts.BailoutWindow(rec.RequestedAt, in.Timelock, in.Grace)
	res, err := a.Store.ReserveRecorded(ctx, db.Bailout{ID: in.ID, WorkflowID: in.WorkflowID, Asset: in.Request.Asset,
		AmountStroops: in.Request.AmountStroops, Destination: in.Request.Destination, Reason: in.Request.Reason,
		UnlockAt: w.Unlock, ExpiresAt: w.Expiry}, a.channelAccounts())
	if err != nil {
		return Reserved{}, business(err)
	}
	if res.Refused != "" {
		return Reserved{}, temporal.NewNonRetryableApplicationError(res.Refused, res.Code, nil)
	}
	return Reserved{RequestedAt: res.Bailout.RequestedAt.UTC(), Window: contracts.Window{Unlock: res.Bailout.UnlockAt.UTC(),
		Expiry: res.Bailout.ExpiresAt.UTC()}, Channel: *res.Bailout.Channel}, nil
}

func (a *Treasury) channelAccounts() []string {
	out := make([]string, 0, len(a.Channels))
	for k := range a.Channels {
		out = append(out, k)
	}
	return out
}

func (a *Treasury) channelKey(account string) (*keypair.Full, error) {
	kp, ok := a.Channels[account]
	if !ok {
		return nil, temporal.NewNonRetryableApplicationError("unknown channel "+account+": this worker holds no key for it", "unknown_channel", nil)
	}
	return kp, nil
}

// BuildChannelInput describes the payment to build on a channel.
type BuildChannelInput struct {
	ID      uuid.UUID
	Request contracts.BailoutRequest
	Window  contracts.Window
	Channel string
}

// BuildChannelPayment reads the channel's sequence number from Horizon, builds the envelope
// (contracts.BuildPayment) and records its hash and sequence with the bailout. The channel is
// this bailout's alone, so a retry builds the same envelope.
func (a *Treasury) BuildChannelPayment(ctx context.Context, in BuildChannelInput) (BuiltTx, error) {
	asset, err := contracts.ParseAsset(in.Request.Asset, a.Config.USDCIssuer)
	if err != nil {
		return BuiltTx{}, temporal.NewNonRetryableApplicationError(err.Error(), "unsupported_asset", nil)
	}
	if _, err := a.channelKey(in.Channel); err != nil {
		return BuiltTx{}, err
	}
	seq, err := a.sequence(in.Channel)
	if err != nil {
		return BuiltTx{}, err
	}
	env, err := contracts.BuildPayment(contracts.PaymentParams{Passphrase: a.Config.NetworkPassphrase, Treasury: a.Config.Account,
		Channel: in.Channel, ChannelSequence: seq, BailoutID: in.ID, Asset: asset, AmountStroops: in.Request.AmountStroops,
		Destination: in.Request.Destination, Window: in.Window})
	if err != nil {
		return BuiltTx{}, temporal.NewNonRetryableApplicationError(err.Error(), "build", nil)
	}
	if err := a.Store.RecordEnvelope(ctx, in.ID, env.Hash, env.Sequence); err != nil {
		return BuiltTx{}, business(err)
	}
	return BuiltTx{XDR: env.XDR, Hash: env.Hash, Sequence: env.Sequence, Channel: env.Channel}, nil
}

func (a *Treasury) sequence(account string) (int64, error) {
	acct, err := a.horizon().AccountDetail(horizonclient.AccountRequest{AccountID: account})
	if horizonclient.IsNotFoundError(err) {
		return 0, temporal.NewNonRetryableApplicationError("account "+account+" does not exist on the network", "no_account", nil)
	}
	if err != nil {
		return 0, fmt.Errorf("load %s: %w", account, err)
	}
	return acct.Sequence, nil
}

// Outcome is what the network did with a bailout's payment.
type Outcome struct {
	// State is contracts.StateExecuted (included, successful), contracts.StateFailed
	// (included, failed: sequence and fee consumed) or "refused" (in no ledger, permanently).
	State string
	Hash  string
	// Codes are the network's result codes (transaction code first, then the operations').
	Codes []string
}

// OutcomeRefused is the Outcome state of an envelope the network refused for good without
// including it: the workflow makes it invalid on chain and then records the failure.
const OutcomeRefused = "refused"

// lookup reads a transaction by hash: found and its outcome, or not found.
func (a *Treasury) lookup(hash string) (Outcome, bool, error) {
	tx, err := a.horizon().TransactionDetail(hash)
	if horizonclient.IsNotFoundError(err) {
		return Outcome{}, false, nil
	}
	if err != nil {
		return Outcome{}, false, fmt.Errorf("look up transaction %s: %w", hash, err)
	}
	if tx.Successful {
		return Outcome{State: contracts.StateExecuted, Hash: hash}, true, nil
	}
	code, ops, err := contracts.ResultCodes(tx.ResultXdr)
	if err != nil {
		return Outcome{}, false, err
	}
	return Outcome{State: contracts.StateFailed, Hash: hash, Codes: append([]string{code}, ops...)}, true, nil
}

// submit posts a signed envelope and classifies Horizon's answer. Whenever the answer could
// mean the transaction is in a ledger (tx_failed, tx_bad_seq), the outcome is read back by
// hash, never assumed. Transient answers are errors (retried with backoff).
func (a *Treasury) submit(env, hash string) (Outcome, error) {
	tx, err := a.horizon().SubmitTransactionXDR(env)
	if err == nil {
		if tx.Successful {
			return Outcome{State: contracts.StateExecuted, Hash: hash}, nil
		}
		if oc, found, err := a.lookup(hash); err != nil || found {
			return oc, err
		}
		return Outcome{}, errors.New("horizon answered without success and the transaction is in no ledger")
	}
	herr := horizonclient.GetError(err)
	if herr == nil {
		return Outcome{}, fmt.Errorf("submit: %w", err)
	}
	rc, rerr := herr.ResultCodes()
	if rerr != nil {
		return Outcome{}, fmt.Errorf("submit: Horizon answered %d %s", herr.Problem.Status, herr.Problem.Type)
	}
	if rc.TransactionCode == "tx_failed" || rc.TransactionCode == "tx_bad_seq" {
		if oc, found, err := a.lookup(hash); err != nil || found {
			return oc, err
		}
	}
	if contracts.PermanentRefusal(rc.TransactionCode) {
		return Outcome{State: OutcomeRefused, Hash: hash, Codes: append([]string{rc.TransactionCode}, rc.OperationCodes...)}, nil
	}
	return Outcome{}, fmt.Errorf("submit: Horizon answered %s (retrying)", rc.TransactionCode)
}

// SubmitInput is a fully approved bailout's envelope and signatures.
type SubmitInput struct {
	ID         uuid.UUID
	XDR        string
	Hash       string
	Channel    string
	Council    []string
	Signatures []contracts.Signature
	At         time.Time
}

// SubmitBailout signs the envelope with the council's signatures and the channel's key and
// brings it to the network exactly once: it first looks the hash up and submits only when no
// ledger has it, so a worker dying between the submission and the answer finds its
// transaction on the retry. An included transaction is booked by what it did: successful →
// debited and executed; failed → reservation released, BailoutFailed with the result codes.
// A permanent refusal is returned as OutcomeRefused for the workflow to close.
func (a *Treasury) SubmitBailout(ctx context.Context, in SubmitInput) (Outcome, error) {
	kp, err := a.channelKey(in.Channel)
	if err != nil {
		return Outcome{}, err
	}
	env, err := contracts.AttachSignatures(in.XDR, a.Config.NetworkPassphrase, in.Hash, in.Council, in.Signatures, kp)
	if err != nil {
		return Outcome{}, temporal.NewNonRetryableApplicationError(err.Error(), "bad_envelope", nil)
	}
	oc, found, err := a.lookup(in.Hash)
	if err != nil {
		return Outcome{}, err
	}
	if !found {
		if oc, err = a.submit(env, in.Hash); err != nil {
			return Outcome{}, err
		}
	}
	return oc, a.book(ctx, in.ID, oc, in.At)
}

// book records an included payment's outcome in the treasury (idempotent).
func (a *Treasury) book(ctx context.Context, id uuid.UUID, oc Outcome, at time.Time) error {
	switch oc.State {
	case contracts.StateExecuted:
		return business(a.Store.ExecuteBailout(ctx, id, oc.Hash, at))
	case contracts.StateFailed:
		return business(a.Store.FailBailout(ctx, id, oc.Hash, oc.Codes, at))
	}
	return nil
}

// InvalidateInput names a bailout's envelope to make permanently invalid.
type InvalidateInput struct {
	ID       uuid.UUID
	Hash     string
	Channel  string
	Sequence int64
	At       time.Time
}

// InvalidateEnvelope makes a bailout's envelope unusable before its reservation is released:
// the channel's sequence is bumped to the envelope's (a BumpSequence signed with the channel's
// key), so whoever holds the signed envelope gets tx_bad_seq. If the envelope itself is
// already in a ledger, that is booked instead and returned (the bailout ends by what it did
// on chain, never as cancelled). Idempotent: a channel already past the sequence is done.
func (a *Treasury) InvalidateEnvelope(ctx context.Context, in InvalidateInput) (Outcome, error) {
	kp, err := a.channelKey(in.Channel)
	if err != nil {
		return Outcome{}, err
	}
	if oc, found, err := a.lookup(in.Hash); err != nil || found {
		if err != nil {
			return Outcome{}, err
		}
		return oc, a.book(ctx, in.ID, oc, in.At)
	}
	seq, err := a.sequence(in.Channel)
	if err != nil {
		return Outcome{}, err
	}
	if seq >= in.Sequence {
		return Outcome{}, nil
	}
	env, hash, err := contracts.BuildInvalidation(a.Config.NetworkPassphrase, kp, seq, in.Sequence, time.Now().Add(5*time.Minute))
	if err != nil {
		return Outcome{}, temporal.NewNonRetryableApplicationError(err.Error(), "build", nil)
	}
	oc, err := a.submit(env, hash)
	if err != nil {
		return Outcome{}, err
	}
	if oc.State != contracts.StateExecuted {
		// Refused or failed (e.g. the channel moved meanwhile): try again from the top.
		return Outcome{}, fmt.Errorf("invalidating the envelope on %s: %v", in.Channel, oc.Codes)
	}
	return Outcome{}, nil
}

// FailInput ends a bailout whose payment the network refused.
type FailInput struct {
	ID    uuid.UUID
	Hash  string
	Codes []string
	At    time.Time
}

// FailBailout releases the reservation and the channel and appends BailoutFailed.
func (a *Treasury) FailBailout(ctx context.Context, in FailInput) error {
	return business(a.Store.FailBailout(ctx, in.ID, in.Hash, in.Codes, in.At))
}

// SweepResult counts what a sweep closed.
type SweepResult struct {
	Released int
	Rejected int
}

// sweepGrace is how old a request must be before the sweep looks at it (the API records a
// request just before it starts the workflow).
const sweepGrace = 10 * time.Minute

// SweepBailouts releases what runs that will never finish still hold: for every open
// bailout whose workflow is not running (terminated, timed out, failed, or never started),
// the envelope is made invalid on chain (when it has approvals), then the reservation and the
// channel are released with BailoutCancelled (by "system: sweep"). A never-reserved record
// is rejected.
func (a *Treasury) SweepBailouts(ctx context.Context) (SweepResult, error) {
	var res SweepResult
	if a.Temporal == nil {
		return res, temporal.NewNonRetryableApplicationError("the sweep needs a Temporal client", "config", nil)
	}
	open, err := a.Store.OpenBailouts(ctx)
	if err != nil {
		return res, err
	}
	now := time.Now().UTC()
	for _, b := range open {
		if now.Sub(b.RequestedAt) < sweepGrace {
			continue
		}
		status := "never started"
		desc, err := a.Temporal.DescribeWorkflowExecution(ctx, b.WorkflowID, "")
		var nf *serviceerror.NotFound
		switch {
		case errors.As(err, &nf):
		case err != nil:
			return res, err
		default:
			st := desc.GetWorkflowExecutionInfo().GetStatus()
			if st == enumspb.WORKFLOW_EXECUTION_STATUS_RUNNING {
				continue
			}
			status = st.String()
		}
		if b.State == db.BailoutRequested {
			if err := a.Store.RejectRequest(ctx, b.ID); err != nil {
				return res, err
			}
			res.Rejected++
			continue
		}
		if b.Channel != nil && b.TxSeq != nil && b.TxHash != nil {
			n, err := a.Store.ApprovalCount(ctx, b.ID)
			if err != nil {
				return res, err
			}
			if n > 0 {
				oc, err := a.InvalidateEnvelope(ctx, InvalidateInput{ID: b.ID, Hash: *b.TxHash, Channel: *b.Channel, Sequence: *b.TxSeq, At: now})
				if err != nil {
					return res, err
				}
				if oc.State != "" {
					continue // it was on chain: booked by what it did
				}
			}
		}
		if err := a.Store.CloseBailout(ctx, b.ID, db.BailoutCancelled, "system: sweep (workflow "+status+")", now); err != nil {
			return res, business(err)
		}
		res.Released++
	}
	return res, nil
}
