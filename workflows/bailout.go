package workflows

import (
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
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

// Bailout states, as the status query and BailoutState show them.
const (
	StateReserving = "reserving"
	StatePending   = "awaiting_approvals"
	StateExecuting = "executing"
	StateExecuted  = "executed"
	StateCancelled = "cancelled"
	StateExpired   = "expired"
	StateRejected  = "rejected"
	StateFailed    = "failed"
)

// BailoutInput starts a bailout workflow.
type BailoutInput struct {
	ID          uuid.UUID
	Request     contracts.BailoutRequest
	RequestedBy *uuid.UUID
	RequestedAt time.Time
	Timelock    time.Duration
	Grace       time.Duration
	// Council are the five members' public keys at the time of the request.
	Council []string
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
	TxHash        string            `json:"tx_hash,omitempty"`
	TxXDR         string            `json:"tx_xdr,omitempty"`
	Approvals     []ApprovalRecord  `json:"approvals"`
	Rejected      []RejectedAttempt `json:"rejected_attempts"`
	CancelledBy   string            `json:"cancelled_by,omitempty"`
	Error         string            `json:"error,omitempty"`
}

// BailoutWorkflowID is the workflow id of a bailout: it derives from the request's hash.
func BailoutWorkflowID(id uuid.UUID) string { return contracts.BailoutWorkflowID(id) }

// bailout is the workflow's state.
type bailout struct {
	in        BailoutInput
	st        BailoutStatus
	hash      []byte
	sigs      map[string][]byte
	cancelled bool
	expired   bool
	unlocked  bool
}

// verifyApproval checks an approval against the current state without changing it.
func (b *bailout) verifyApproval(a Approval) error {
	if b.st.State != StatePending {
		return fmt.Errorf("bailout is %s: approvals are not accepted", b.st.State)
	}
	if _, dup := b.sigs[a.Signer]; dup {
		return contracts.ErrDuplicate
	}
	sig, err := activities.ParseSignature(a.Signature)
	if err != nil {
		return err
	}
	return contracts.VerifyCouncilSignature(b.in.Council, a.Signer, b.hash, sig)
}

func (b *bailout) verifyCancel(c CancelRequest) error {
	if b.st.State != StatePending {
		return fmt.Errorf("bailout is %s: it can no longer be cancelled", b.st.State)
	}
	sig, err := activities.ParseSignature(c.Signature)
	if err != nil {
		return err
	}
	return contracts.VerifyCouncilSignature(b.in.Council, c.Signer, contracts.CancelMessage(b.st.TxHash), sig)
}

func (b *bailout) upsert(ctx workflow.Context) {
	_ = workflow.UpsertTypedSearchAttributes(ctx,
		BailoutStateKey.ValueSet(b.st.State), BailoutApprovalsKey.ValueSet(int64(len(b.st.Approvals))))
}

// markCancelled records a verified cancel; the main loop releases the reservation.
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
	sig, _ := activities.ParseSignature(a.Signature)
	b.sigs[a.Signer] = sig
	now := workflow.Now(ctx).UTC()
	b.st.Approvals = append(b.st.Approvals, ApprovalRecord{Signer: a.Signer, At: now})
	b.upsert(ctx)
	var act *activities.Treasury
	return workflow.ExecuteActivity(withShortActivity(ctx), act.RecordApproval,
		activities.ApprovalInput{ID: b.in.ID, Signer: a.Signer, At: now}).Get(ctx, nil)
}

func withShortActivity(ctx workflow.Context) workflow.Context {
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: 30 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
		},
	})
}

// Bailout is the bailout workflow: reserve the amount, build the payment, then wait for both
// the durable timelock and five distinct valid council signatures; execute exactly once, or
// end cancelled (a signed cancel) or expired (the grace period passed).
func Bailout(ctx workflow.Context, in BailoutInput) (BailoutStatus, error) {
	w := contracts.BailoutWindow(in.RequestedAt, in.Timelock, in.Grace)
	b := &bailout{in: in, sigs: map[string][]byte{}, st: BailoutStatus{
		ID: in.ID, State: StateReserving, Asset: in.Request.Asset, AmountStroops: in.Request.AmountStroops,
		Destination: in.Request.Destination, Reason: in.Request.Reason, RequestedAt: in.RequestedAt.UTC(),
		UnlockAt: w.Unlock, ExpiresAt: w.Expiry, Approvals: []ApprovalRecord{}, Rejected: []RejectedAttempt{},
	}}
	if err := workflow.SetQueryHandler(ctx, BailoutStatusQuery, func() (BailoutStatus, error) { return b.st, nil }); err != nil {
		return b.st, err
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
		return b.st, err
	}
	if err := workflow.SetUpdateHandlerWithOptions(ctx, BailoutCancel,
		func(ctx workflow.Context, c CancelRequest) (BailoutStatus, error) {
			b.markCancelled(ctx, c.Signer)
			return b.st, nil
		},
		workflow.UpdateHandlerOptions{Validator: func(ctx workflow.Context, c CancelRequest) error { return b.verifyCancel(c) }},
	); err != nil {
		return b.st, err
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
	finish := func() (BailoutStatus, error) {
		b.upsert(ctx)
		_ = workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) })
		return b.st, nil
	}

	var act *activities.Treasury
	actx := withShortActivity(ctx)
	err := workflow.ExecuteActivity(actx, act.ReserveBailout, activities.ReserveInput{
		ID: in.ID, WorkflowID: workflow.GetInfo(ctx).WorkflowExecution.ID, Request: in.Request,
		RequestedBy: in.RequestedBy, RequestedAt: in.RequestedAt, Window: w,
	}).Get(ctx, nil)
	if err != nil {
		b.st.State, b.st.Error = StateRejected, errorMessage(err)
		return finish()
	}
	var built activities.BuiltTx
	if err := workflow.ExecuteActivity(actx, act.BuildBailoutTx, activities.BuildInput{ID: in.ID, Request: in.Request, Window: w}).Get(ctx, &built); err != nil {
		b.st.State, b.st.Error = StateFailed, "building the payment failed: "+errorMessage(err)
		_ = workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{ID: in.ID, State: db.BailoutCancelled, By: "system: build failed", At: workflow.Now(ctx)}).Get(ctx, nil)
		return finish()
	}
	b.hash, _ = contracts.TxHashBytes(built.Hash)
	b.st.TxHash, b.st.TxXDR, b.st.State = built.Hash, built.XDR, StatePending
	b.upsert(ctx)

	tctx, stopTimers := workflow.WithCancel(ctx)
	startTimer := func(at time.Time, done *bool) {
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
	startTimer(w.Unlock, &b.unlocked)
	startTimer(w.Expiry, &b.expired)
	_ = workflow.Await(ctx, func() bool {
		return b.cancelled || b.expired || (b.unlocked && len(b.sigs) >= contracts.CouncilSize)
	})
	stopTimers()

	switch {
	case b.cancelled:
		b.st.State = StateCancelled
		b.upsert(ctx)
		if err := workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{
			ID: in.ID, State: db.BailoutCancelled, By: b.st.CancelledBy, At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
			b.st.Error = errorMessage(err)
		}
		return finish()
	case b.expired && !(b.unlocked && len(b.sigs) >= contracts.CouncilSize):
		b.st.State = StateExpired
		b.upsert(ctx)
		if err := workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{
			ID: in.ID, State: db.BailoutExpired, At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
			b.st.Error = errorMessage(err)
		}
		return finish()
	}

	b.st.State = StateExecuting
	b.upsert(ctx)
	sigs := make([]activities.Signature, 0, len(in.Council))
	for _, k := range in.Council { // council order: deterministic
		if s, ok := b.sigs[k]; ok {
			sigs = append(sigs, activities.Signature{Signer: k, Signature: s})
		}
	}
	ectx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: time.Minute,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: 5 * time.Minute,
		},
	})
	var hash string
	if err := workflow.ExecuteActivity(ectx, act.ExecuteBailout, activities.ExecuteInput{
		ID: in.ID, XDR: built.XDR, Hash: built.Hash, Signatures: sigs, At: workflow.Now(ctx)}).Get(ctx, &hash); err != nil {
		b.st.State, b.st.Error = StateFailed, "execution failed: "+errorMessage(err)
		_ = workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{
			ID: in.ID, State: db.BailoutExpired, By: "system: execution failed", At: workflow.Now(ctx)}).Get(ctx, nil)
		return finish()
	}
	b.st.State = StateExecuted
	return finish()
}

func errorMessage(err error) string {
	var app *temporal.ApplicationError
	if errors.As(err, &app) {
		return app.Message()
	}
	return err.Error()
}
