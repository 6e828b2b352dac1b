package workflows

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
)

// TreasuryQueue is the task queue of the treasury's workflows and activities.
const TreasuryQueue = "treasury"

// Names of the bailout workflow and its handlers (for the API, the CLI, `temporal workflow
// signal|update|query` and the Web UI).
const (
	BailoutWorkflowName = "Bailout"
	// BailoutApprove is both the update (validated, refused at once) and the signal (verified
	// the same way, recorded as rejected when invalid) carrying an Approval.
	BailoutApprove = "approve"
	// BailoutCancel is both the update and the signal carrying a CancelRequest.
	BailoutCancel = "cancel"
	// BailoutStatusQuery answers a BailoutStatus.
	BailoutStatusQuery = "status"
)

// Search attributes of the bailout workflow.
var (
	BailoutStateKey     = temporal.NewSearchAttributeKeyKeyword("BailoutState")
	BailoutApprovalsKey = temporal.NewSearchAttributeKeyInt64("BailoutApprovals")
)

// bailoutSearchAttributes are the custom search attributes the bailout workflow sets.
var bailoutSearchAttributes = map[string]enumspb.IndexedValueType{
	"BailoutState":     enumspb.INDEXED_VALUE_TYPE_KEYWORD,
	"BailoutApprovals": enumspb.INDEXED_VALUE_TYPE_INT,
}

// Bailout states, as the status query and BailoutState show them (contracts' vocabulary).
const (
	StateReserving = contracts.StateReserving
	StatePending   = contracts.StatePending
	StateExecuting = contracts.StateExecuting
	StateExecuted  = contracts.StateExecuted
	StateCancelled = contracts.StateCancelled
	StateExpired   = contracts.StateExpired
	StateRejected  = contracts.StateRejected
	StateFailed    = contracts.StateFailed
)

// BailoutInput starts a bailout workflow. It is not authority: the council, the timelock and
// the grace period come from the worker's configuration (activity BailoutPolicy, recorded in
// history), the request time from the treasury's record, and a request the treasury did not
// record reserves nothing. Timelock, Grace and Council are read only by runs started before
// channel accounts (replay of the first version).
type BailoutInput struct {
	ID          uuid.UUID
	Request     contracts.BailoutRequest
	RequestedBy *uuid.UUID
	RequestedAt time.Time
	Timelock    time.Duration
	Grace       time.Duration
	Council     []string
}

// Approval is a council member's signature (base64 ed25519) over the transaction hash.
type Approval struct {
	Signer    string `json:"signer"`
	Signature string `json:"signature"`
}

// CancelRequest is a council member's signature (base64) over contracts.CancelMessage(hash).
type CancelRequest struct {
	Signer    string `json:"signer"`
	Signature string `json:"signature"`
}

// ApprovalRecord is an accepted approval.
type ApprovalRecord struct {
	Signer string    `json:"signer"`
	At     time.Time `json:"at"`
}

// RejectedAttempt is an approval or cancellation that was refused.
type RejectedAttempt struct {
	Kind   string    `json:"kind"`
	Signer string    `json:"signer"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// BailoutStatus is the status query's answer and the workflow's result.
type BailoutStatus struct {
	ID            uuid.UUID         `json:"id"`
	State         string            `json:"state"`
	Asset         string            `json:"asset"`
	AmountStroops int64             `json:"amount_stroops"`
	Destination   string            `json:"destination"`
	Reason        string            `json:"reason"`
	RequestedAt   time.Time         `json:"requested_at"`
	UnlockAt      time.Time         `json:"unlock_at"`
	ExpiresAt     time.Time         `json:"expires_at"`
	Channel       string            `json:"channel,omitempty"`
	TxHash        string            `json:"tx_hash,omitempty"`
	TxXDR         string            `json:"tx_xdr,omitempty"`
	Approvals     []ApprovalRecord  `json:"approvals"`
	Rejected      []RejectedAttempt `json:"rejected_attempts"`
	CancelledBy   string            `json:"cancelled_by,omitempty"`
	ResultCodes   []string          `json:"result_codes,omitempty"`
	Error         string            `json:"error,omitempty"`
}

// BailoutWorkflowID is the workflow id of a bailout: it derives from the request's hash.
func BailoutWorkflowID(id uuid.UUID) string { return contracts.BailoutWorkflowID(id) }

// channelsVersion is the change that gave every bailout its own channel account, its policy
// from the worker's configuration, on-chain cancels and read results.
const channelsVersion = "channel-accounts"

// Bailout is the bailout workflow. Runs started before channel accounts replay as they were
// (bailoutV1); new runs read top to bottom in (*bailout).run.
func Bailout(ctx workflow.Context, in BailoutInput) (BailoutStatus, error) {
	if workflow.GetVersion(ctx, channelsVersion, workflow.DefaultVersion, 1) == workflow.DefaultVersion {
		return bailoutV1(ctx, in)
	}
	b := newBailout(in)
	if err := b.setup(ctx); err != nil {
		return b.st, err
	}
	return b.run(ctx)
}

// bailout is the workflow's state.
type bailout struct {
	in      BailoutInput
	st      BailoutStatus
	council []string
	window  contracts.Window
	built   activities.BuiltTx
	hash    []byte
	sigs    map[string][]byte
	// recorded counts the approvals the treasury's event log holds: the payment waits for
	// them, so no BailoutApproved ever follows the outcome in the hash chain.
	recorded  int
	cancelled bool
	expired   bool
	unlocked  bool
}

func newBailout(in BailoutInput) *bailout {
	return &bailout{in: in, sigs: map[string][]byte{}, st: BailoutStatus{
		ID: in.ID, State: StateReserving, Asset: in.Request.Asset, AmountStroops: in.Request.AmountStroops,
		Destination: in.Request.Destination, Reason: in.Request.Reason,
		Approvals: []ApprovalRecord{}, Rejected: []RejectedAttempt{},
	}}
}

// run is the bailout: reserve → build → await the timer and five signatures (or a cancel, or
// the expiry) → execute, or close.
func (b *bailout) run(ctx workflow.Context) (BailoutStatus, error) {
	if !b.reserve(ctx) || !b.build(ctx) {
		return b.finish(ctx)
	}
	b.await(ctx)
	if !b.cancelled && contracts.ReadyToExecute(b.recorded, workflow.Now(ctx), b.window) {
		b.execute(ctx)
	} else {
		b.close(ctx)
	}
	return b.finish(ctx)
}

// reserve reads the policy from the worker's configuration, then reserves the recorded
// request: a channel and the amount.
func (b *bailout) reserve(ctx workflow.Context) bool {
	var act *activities.Treasury
	actx := withShortActivity(ctx)
	var p activities.Policy
	if err := workflow.ExecuteActivity(actx, act.BailoutPolicy).Get(ctx, &p); err != nil {
		b.st.State, b.st.Error = StateRejected, errorMessage(err)
		return false
	}
	b.council = p.Council
	var r activities.Reserved
	if err := workflow.ExecuteActivity(actx, act.ReserveRecordedBailout, activities.ReserveRecordedInput{
		ID: b.in.ID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Request: b.in.Request,
		Timelock: p.Timelock, Grace: p.Grace,
	}).Get(ctx, &r); err != nil {
		b.st.State, b.st.Error = StateRejected, errorMessage(err)
		return false
	}
	b.window = r.Window
	b.st.RequestedAt, b.st.UnlockAt, b.st.ExpiresAt, b.st.Channel = r.RequestedAt, r.Window.Unlock, r.Window.Expiry, r.Channel
	return true
}

// build makes the payment envelope on the bailout's channel.
func (b *bailout) build(ctx workflow.Context) bool {
	var act *activities.Treasury
	actx := withShortActivity(ctx)
	err := workflow.ExecuteActivity(actx, act.BuildChannelPayment, activities.BuildChannelInput{
		ID: b.in.ID, Request: b.in.Request, Window: b.window, Channel: b.st.Channel}).Get(ctx, &b.built)
	if err != nil {
		b.st.State, b.st.Error = StateFailed, "building the payment failed: "+errorMessage(err)
		_ = workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{ID: b.in.ID, State: contracts.BailoutCancelled,
			By: "system: build failed", At: workflow.Now(ctx)}).Get(ctx, nil)
		return false
	}
	b.hash, _ = contracts.TxHashBytes(b.built.Hash)
	b.st.TxHash, b.st.TxXDR, b.st.State = b.built.Hash, b.built.XDR, StatePending
	b.upsert(ctx)
	return true
}

// await waits for the durable unlock timer and five signatures, a cancel, or the expiry.
func (b *bailout) await(ctx workflow.Context) {
	tctx, stopTimers := workflow.WithCancel(ctx)
	defer stopTimers()
	b.startTimer(ctx, tctx, b.window.Unlock, &b.unlocked)
	b.startTimer(ctx, tctx, b.window.Expiry, &b.expired)
	_ = workflow.Await(ctx, func() bool {
		return b.cancelled || b.expired || contracts.ReadyToExecute(b.recorded, workflow.Now(ctx), b.window)
	})
}

func (b *bailout) startTimer(ctx, tctx workflow.Context, at time.Time, done *bool) {
	d := at.Sub(workflow.Now(ctx))
	if d <= 0 {
		*done = true
		return
	}
	f := workflow.NewTimer(tctx, d)
	workflow.Go(tctx, func(c workflow.Context) {
		if f.Get(c, nil) == nil {
			*done = true
		}
	})
}

func withLongRetry(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
		},
	})
}

// execute submits the signed payment once and ends by what the network did with it.
func (b *bailout) execute(ctx workflow.Context) {
	b.st.State = StateExecuting
	b.upsert(ctx)
	sigs := make([]contracts.Signature, 0, len(b.council))
	for _, k := range b.council { // council order: deterministic
		if s, ok := b.sigs[k]; ok {
			sigs = append(sigs, contracts.Signature{Signer: k, Signature: s})
		}
	}
	var act *activities.Treasury
	var oc activities.Outcome
	err := workflow.ExecuteActivity(withLongRetry(ctx), act.SubmitBailout, activities.SubmitInput{
		ID: b.in.ID, XDR: b.built.XDR, Hash: b.built.Hash, Channel: b.built.Channel, Council: b.council,
		Signatures: sigs, At: workflow.Now(ctx)}).Get(ctx, &oc)
	if err != nil {
		oc = activities.Outcome{State: activities.OutcomeRefused, Hash: b.built.Hash, Codes: []string{errorMessage(err)}}
	}
	if oc.State == activities.OutcomeRefused {
		// Never included: make the envelope unusable, then release.
		if onChain := b.invalidate(ctx); onChain.State != "" {
			oc = onChain
		} else {
			_ = workflow.ExecuteActivity(withShortActivity(ctx), act.FailBailout, activities.FailInput{
				ID: b.in.ID, Hash: b.built.Hash, Codes: oc.Codes, At: workflow.Now(ctx)}).Get(ctx, nil)
			b.st.State, b.st.ResultCodes = StateFailed, oc.Codes
			b.st.Error = "the network refused the payment: " + strings.Join(oc.Codes, ", ")
			return
		}
	}
	b.settle(oc)
}

// settle records an outcome the network decided.
func (b *bailout) settle(oc activities.Outcome) {
	b.st.State, b.st.ResultCodes = oc.State, oc.Codes
	if oc.State == StateFailed {
		b.st.Error = "the payment failed on chain: " + strings.Join(oc.Codes, ", ")
	}
}

// invalidate bumps the channel past the envelope's sequence (after any approval the envelope
// may be complete somewhere). It returns the envelope's own outcome if it was already on
// chain (booked by the activity), else an empty Outcome.
func (b *bailout) invalidate(ctx workflow.Context) activities.Outcome {
	var act *activities.Treasury
	var oc activities.Outcome
	if err := workflow.ExecuteActivity(withLongRetry(ctx), act.InvalidateEnvelope, activities.InvalidateInput{
		ID: b.in.ID, Hash: b.built.Hash, Channel: b.built.Channel, Sequence: b.built.Sequence, At: workflow.Now(ctx),
	}).Get(ctx, &oc); err != nil {
		b.st.Error = "invalidating the envelope failed: " + errorMessage(err)
	}
	return oc
}

// close ends a cancelled or expired bailout: the envelope is made invalid on chain when any
// member approved it, then the reservation and the channel are released.
func (b *bailout) close(ctx workflow.Context) {
	state, dbState := StateExpired, contracts.BailoutExpired
	if b.cancelled {
		state, dbState = StateCancelled, contracts.BailoutCancelled
	}
	b.st.State = state
	b.upsert(ctx)
	if len(b.sigs) > 0 {
		if oc := b.invalidate(ctx); oc.State != "" {
			b.settle(oc) // someone submitted the envelope first: it ends by what it did
			return
		}
		if b.st.Error != "" {
			return // the reservation stays until the envelope is surely dead (the sweep retries)
		}
	}
	var act *activities.Treasury
	if err := workflow.ExecuteActivity(withShortActivity(ctx), act.CloseBailout, activities.CloseInput{
		ID: b.in.ID, State: dbState, By: b.st.CancelledBy, At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
		b.st.Error = errorMessage(err)
	}
}

func (b *bailout) finish(ctx workflow.Context) (BailoutStatus, error) {
	b.upsert(ctx)
	_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
	return b.st, nil
}

// setup registers the status query, the approve and cancel updates (validated) and signals
// (verified the same way, recorded as rejected when invalid).
func (b *bailout) setup(ctx workflow.Context) error {
	if err := workflow.SetQueryHandler(ctx, BailoutStatusQuery, func() (BailoutStatus, error) { return b.st, nil }); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, BailoutApprove,
		func(ctx workflow.Context, a Approval) (BailoutStatus, error) {
			if err := b.accept(ctx, a); err != nil {
				return b.st, err
			}
			return b.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, a Approval) error { return b.verifyApproval(a) }},
	); err != nil {
		return err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, BailoutCancel,
		func(ctx workflow.Context, c CancelRequest) (BailoutStatus, error) {
			b.markCancelled(ctx, c.Signer)
			return b.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, c CancelRequest) error { return b.verifyCancel(c) }},
	); err != nil {
		return err
	}
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannel(ctx, BailoutApprove)
		for {
			var a Approval
			ch.Receive(ctx, &a)
			if err := b.verifyApproval(a); err != nil {
				b.reject(ctx, "approval", a.Signer, err)
				continue
			}
			_ = b.accept(ctx, a)
		}
	})
	workflow.Go(ctx, func(ctx workflow.Context) {
		ch := workflow.GetSignalChannel(ctx, BailoutCancel)
		for {
			var c CancelRequest
			ch.Receive(ctx, &c)
			if err := b.verifyCancel(c); err != nil {
				b.reject(ctx, "cancel", c.Signer, err)
				continue
			}
			b.markCancelled(ctx, c.Signer)
		}
	})
	b.upsert(ctx)
	return nil
}

// verifyApproval checks an approval against the current state without changing it.
func (b *bailout) verifyApproval(a Approval) error {
	if b.st.State != StatePending {
		return fmt.Errorf("bailout is %s: approvals are not accepted", b.st.State)
	}
	if _, dup := b.sigs[a.Signer]; dup {
		return contracts.ErrDuplicate
	}
	sig, err := contracts.ParseSignature(a.Signature)
	if err != nil {
		return err
	}
	return contracts.VerifyCouncilSignature(b.council, a.Signer, b.hash, sig)
}

func (b *bailout) verifyCancel(c CancelRequest) error {
	if b.st.State != StatePending {
		return fmt.Errorf("bailout is %s: it can no longer be cancelled", b.st.State)
	}
	sig, err := contracts.ParseSignature(c.Signature)
	if err != nil {
		return err
	}
	return contracts.VerifyCouncilSignature(b.council, c.Signer, contracts.CancelMessage(b.st.TxHash), sig)
}

func (b *bailout) upsert(ctx workflow.Context) {
	_ = workflow.UpsertTypedSearchAttributes(ctx,
		BailoutStateKey.ValueSet(b.st.State), BailoutApprovalsKey.ValueSet(int64(len(b.st.Approvals))))
}

// markCancelled records a verified cancel; the main loop closes the bailout.
func (b *bailout) markCancelled(ctx workflow.Context, signer string) {
	b.cancelled, b.st.CancelledBy, b.st.State = true, signer, StateCancelled
	b.upsert(ctx)
}

func (b *bailout) reject(ctx workflow.Context, kind, signer string, err error) {
	b.st.Rejected = append(b.st.Rejected, RejectedAttempt{Kind: kind, Signer: signer, Reason: err.Error(), At: workflow.Now(ctx).UTC()})
}

// accept records a verified approval: in the state at once, in the treasury's event log
// through an activity.
func (b *bailout) accept(ctx workflow.Context, a Approval) error {
	sig, _ := contracts.ParseSignature(a.Signature)
	b.sigs[a.Signer] = sig
	now := workflow.Now(ctx).UTC()
	b.st.Approvals = append(b.st.Approvals, ApprovalRecord{Signer: a.Signer, At: now})
	b.upsert(ctx)
	var act *activities.Treasury
	if err := workflow.ExecuteActivity(withShortActivity(ctx), act.RecordApproval,
		activities.ApprovalInput{ID: b.in.ID, Signer: a.Signer, At: now}).Get(ctx, nil); err != nil {
		return err
	}
	b.recorded++
	return nil
}

func withShortActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		},
	})
}

func errorMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}
