package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
)

// bailoutV1 is the bailout as it ran before channel accounts (the treasury as transaction
// source, the council and timelock from the input). It stays only so that runs started
// then replay and finish; new runs never take it. Its activities now read the payment's
// result (activities.Treasury.ExecuteBailout).
func bailoutV1(ctx workflow.Context, in BailoutInput) (BailoutStatus, error) {
	w := contracts.BailoutWindow(in.RequestedAt, in.Timelock, in.Grace)
	b := newBailout(in)
	b.council, b.window = in.Council, w
	b.st.RequestedAt, b.st.UnlockAt, b.st.ExpiresAt = in.RequestedAt.UTC(), w.Unlock, w.Expiry
	if err := b.setup(ctx); err != nil {
		return b.st, err
	}
	finish := func() (BailoutStatus, error) { return b.finish(ctx) }

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
	if err := workflow.ExecuteActivity(actx, act.BuildBailoutTx, activities.BuildInput{ID: in.ID, Request: in.Request, Window: w}).Get(ctx, &b.built); err != nil {
		b.st.State, b.st.Error = StateFailed, "building the payment failed: "+errorMessage(err)
		_ = workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{ID: in.ID, State: contracts.BailoutCancelled, By: "system: build failed", At: workflow.Now(ctx)}).Get(ctx, nil)
		return finish()
	}
	b.hash, _ = contracts.TxHashBytes(b.built.Hash)
	b.st.TxHash, b.st.TxXDR, b.st.State = b.built.Hash, b.built.XDR, StatePending
	b.upsert(ctx)

	tctx, stopTimers := workflow.WithCancel(ctx)
	b.startTimer(ctx, tctx, w.Unlock, &b.unlocked)
	b.startTimer(ctx, tctx, w.Expiry, &b.expired)
	_ = workflow.Await(ctx, func() bool {
		return b.cancelled || b.expired || (b.unlocked && len(b.sigs) >= contracts.CouncilSize)
	})
	stopTimers()

	switch {
	case b.cancelled:
		b.st.State = StateCancelled
		b.upsert(ctx)
		if err := workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{
			ID: in.ID, State: contracts.BailoutCancelled, By: b.st.CancelledBy, At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
			b.st.Error = errorMessage(err)
		}
		return finish()
	case b.expired && !(b.unlocked && len(b.sigs) >= contracts.CouncilSize):
		b.st.State = StateExpired
		b.upsert(ctx)
		if err := workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{
			ID: in.ID, State: contracts.BailoutExpired, At: workflow.Now(ctx)}).Get(ctx, nil); err != nil {
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
		ID: in.ID, XDR: b.built.XDR, Hash: b.built.Hash, Signatures: sigs, At: workflow.Now(ctx)}).Get(ctx, &hash); err != nil {
		b.st.State, b.st.Error = StateFailed, "execution failed: "+errorMessage(err)
		_ = workflow.ExecuteActivity(actx, act.CloseBailout, activities.CloseInput{
			ID: in.ID, State: contracts.BailoutExpired, By: "system: execution failed", At: workflow.Now(ctx)}).Get(ctx, nil)
		return finish()
	}
	b.st.State = StateExecuted
	return finish()
}
