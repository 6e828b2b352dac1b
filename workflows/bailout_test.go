package workflows

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
)

const day = 24 * time.Hour

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// bailoutFixture is a bailout workflow in the test suite, with mocked activities that record
// what they were asked to do.
type bailoutFixture struct {
	t        *testing.T
	env      *testsuite.TestWorkflowEnvironment
	council  []*keypair.Full
	in       BailoutInput
	built    activities.BuiltTx
	mu       sync.Mutex
	executed []activities.SubmitInput
	closed   []activities.CloseInput
	recorded []string
	// calls is the order in which the closing activities ran.
	calls   []string
	outcome activities.Outcome
	pending int
}

func newBailoutFixture(t *testing.T) *bailoutFixture {
	f := &bailoutFixture{t: t}
	var s testsuite.WorkflowTestSuite
	f.env = s.NewTestWorkflowEnvironment()
	f.env.SetStartTime(t0)
	f.env.RegisterWorkflow(Bailout)
	f.env.RegisterActivity(&activities.Treasury{})
	var keys []string
	for range 5 {
		kp := keypair.MustRandom()
		f.council = append(f.council, kp)
		keys = append(keys, kp.Address())
	}
	req := contracts.BailoutRequest{Asset: "XLM", AmountStroops: 5_000_000, Destination: keypair.MustRandom().Address(), Reason: "exploit"}
	// The input carries no policy: council, timelock and grace come from the worker.
	f.in = BailoutInput{ID: contracts.BailoutID(req), Request: req, RequestedAt: t0}
	sum := sha256.Sum256([]byte("the payment transaction"))
	channel := keypair.MustRandom().Address()
	f.built = activities.BuiltTx{XDR: "AAAA", Hash: hex.EncodeToString(sum[:]), Sequence: 43, Channel: channel}
	f.outcome = activities.Outcome{State: contracts.StateExecuted, Hash: f.built.Hash}

	var act *activities.Treasury
	f.env.OnActivity(act.BailoutPolicy, mock.Anything).Return(
		activities.Policy{Council: keys, Required: 5, Timelock: 14 * day, Grace: 7 * day}, nil)
	f.env.OnActivity(act.ReserveRecordedBailout, mock.Anything, mock.Anything).Return(
		activities.Reserved{RequestedAt: t0, Window: contracts.BailoutWindow(t0, 14*day, 7*day), Channel: channel}, nil)
	f.env.OnActivity(act.BuildChannelPayment, mock.Anything, mock.Anything).Return(f.built, nil)
	f.env.OnActivity(act.InvalidateEnvelope, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.InvalidateInput) (activities.Outcome, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			require.Equal(t, f.built.Sequence, in.Sequence)
			f.calls = append(f.calls, "invalidate")
			return activities.Outcome{}, nil
		})
	f.env.OnActivity(act.FailBailout, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.FailInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.calls = append(f.calls, "fail")
			return nil
		})
	f.env.OnActivity(act.RecordApproval, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.ApprovalInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.recorded = append(f.recorded, in.Signer)
			return nil
		})
	return f
}

func (f *bailoutFixture) onClose(after time.Duration) {
	var act *activities.Treasury
	f.env.OnActivity(act.CloseBailout, mock.Anything, mock.Anything).After(after).Return(
		func(_ context.Context, in activities.CloseInput) error {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.closed = append(f.closed, in)
			f.calls = append(f.calls, "close")
			return nil
		})
}

func (f *bailoutFixture) onExecute(failures int) {
	var act *activities.Treasury
	calls := 0
	f.env.OnActivity(act.SubmitBailout, mock.Anything, mock.Anything).Return(
		func(_ context.Context, in activities.SubmitInput) (activities.Outcome, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			calls++
			if calls <= failures {
				return activities.Outcome{}, errors.New("horizon: connection refused")
			}
			f.executed = append(f.executed, in)
			return f.outcome, nil
		})
}

func (f *bailoutFixture) hash() []byte { b, _ := hex.DecodeString(f.built.Hash); return b }

func (f *bailoutFixture) approval(i int) Approval {
	sig, err := f.council[i].Sign(f.hash())
	require.NoError(f.t, err)
	return Approval{Signer: f.council[i].Address(), Signature: activities.SignatureBase64(sig)}
}

func (f *bailoutFixture) cancel(i int) CancelRequest {
	sig, err := f.council[i].Sign(contracts.CancelMessage(f.built.Hash))
	require.NoError(f.t, err)
	return CancelRequest{Signer: f.council[i].Address(), Signature: activities.SignatureBase64(sig)}
}

// accept sends an update that must be accepted; refuse one that must be rejected. The
// test suite answers asynchronously, so the outcomes are counted and checked at the end.
func (f *bailoutFixture) accept(name string, arg any) { f.update(name, arg, false, "") }

func (f *bailoutFixture) refuse(name string, arg any, why string) { f.update(name, arg, true, why) }

func (f *bailoutFixture) update(name string, arg any, wantReject bool, why string) {
	f.mu.Lock()
	f.pending++
	f.mu.Unlock()
	done := func() { f.mu.Lock(); f.pending--; f.mu.Unlock() }
	f.env.UpdateWorkflow(name, uuid.NewString(), &testsuite.TestUpdateCallback{
		OnReject: func(err error) {
			defer done()
			if !wantReject {
				f.t.Errorf("update %s rejected: %v", name, err)
			}
		},
		OnAccept: func() {
			if wantReject {
				defer done()
				f.t.Errorf("update %s (%s) accepted, want rejected", name, why)
			}
		},
		OnComplete: func(_ any, err error) {
			if !wantReject {
				defer done()
				if err != nil {
					f.t.Errorf("update %s failed: %v", name, err)
				}
			}
		},
	}, arg)
}

func (f *bailoutFixture) at(d time.Duration, fn func()) { f.env.RegisterDelayedCallback(fn, d) }

func (f *bailoutFixture) status() BailoutStatus {
	v, err := f.env.QueryWorkflow(BailoutStatusQuery)
	require.NoError(f.t, err)
	var st BailoutStatus
	require.NoError(f.t, v.Get(&st))
	return st
}

func (f *bailoutFixture) run() BailoutStatus {
	f.env.ExecuteWorkflow(Bailout, f.in)
	require.True(f.t, f.env.IsWorkflowCompleted())
	require.NoError(f.t, f.env.GetWorkflowError())
	var st BailoutStatus
	require.NoError(f.t, f.env.GetWorkflowResult(&st))
	require.Zero(f.t, f.pending, "updates without an outcome")
	return st
}

func TestBailoutApprovedEarlyWaitsForTimelock(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	f.at(time.Hour, func() {
		for i := range 5 {
			f.accept(BailoutApprove, f.approval(i))
		}
	})
	f.at(13*day, func() {
		st := f.status()
		require.Equal(t, StatePending, st.State, "5 signatures before day 14 wait for the timer")
		require.Len(t, st.Approvals, 5)
		require.Empty(t, f.executed)
	})
	st := f.run()
	require.Equal(t, StateExecuted, st.State)
	require.Len(t, f.executed, 1)
	require.False(t, f.executed[0].At.Before(t0.Add(14*day)), "executed at %v", f.executed[0].At)
	require.Len(t, f.executed[0].Signatures, 5)
	require.Len(t, f.recorded, 5)
	require.Empty(t, f.closed)
}

func TestBailoutTimelockPassedWaitsForFifthSignature(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	f.at(time.Hour, func() {
		for i := range 4 {
			f.accept(BailoutApprove, f.approval(i))
		}
	})
	f.at(15*day, func() {
		require.Equal(t, StatePending, f.status().State, "day 14 with 4 signatures waits")
		require.Empty(t, f.executed)
	})
	f.at(16*day, func() { f.accept(BailoutApprove, f.approval(4)) })
	st := f.run()
	require.Equal(t, StateExecuted, st.State)
	require.Len(t, f.executed, 1)
	require.Equal(t, t0.Add(16*day), f.executed[0].At.UTC())
}

func TestBailoutFourSignaturesExpire(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	f.at(time.Hour, func() {
		for i := range 4 {
			f.accept(BailoutApprove, f.approval(i))
		}
	})
	st := f.run()
	require.Equal(t, StateExpired, st.State)
	require.Empty(t, f.executed, "4 signatures never execute")
	require.Len(t, f.closed, 1)
	require.Equal(t, contracts.BailoutExpired, f.closed[0].State)
	require.Equal(t, t0.Add(21*day), f.closed[0].At.UTC())
}

func TestBailoutRefusesBadApprovals(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	outsider := keypair.MustRandom()
	f.at(time.Hour, func() {
		f.accept(BailoutApprove, f.approval(0))

		forged := f.approval(1)
		forged.Signature = f.approval(2).Signature // member 2's signature claimed by member 1
		osig, _ := outsider.Sign(f.hash())
		other := sha256.Sum256([]byte("another transaction"))
		wrongTx, _ := f.council[3].Sign(other[:])
		for name, a := range map[string]Approval{
			"forged":         forged,
			"non-member":     {Signer: outsider.Address(), Signature: activities.SignatureBase64(osig)},
			"duplicate":      f.approval(0),
			"other tx":       {Signer: f.council[3].Address(), Signature: activities.SignatureBase64(wrongTx)},
			"not base64":     {Signer: f.council[4].Address(), Signature: "!!"},
			"unknown signer": {Signer: "GNOTAKEY", Signature: f.approval(4).Signature},
		} {
			f.refuse(BailoutApprove, a, name)
		}
		// The same payloads as signals are verified and recorded as rejected.
		f.env.SignalWorkflow(BailoutApprove, forged)
		f.env.SignalWorkflow(BailoutApprove, f.approval(0))
		// Only non-members/forgeries: a bad cancel is refused too.
		f.refuse(BailoutCancel, CancelRequest{Signer: outsider.Address(), Signature: activities.SignatureBase64(osig)}, "")
		badCancel := f.cancel(1)
		badCancel.Signature = f.approval(1).Signature // signed the tx hash, not the cancel message
		f.refuse(BailoutCancel, badCancel, "")
	})
	f.at(2*time.Hour, func() {
		st := f.status()
		require.Len(t, st.Approvals, 1, "nothing changed")
		require.Len(t, st.Rejected, 2)
		require.Equal(t, StatePending, st.State)
	})
	st := f.run()
	require.Equal(t, StateExpired, st.State)
	require.Empty(t, f.executed)
	require.Equal(t, []string{f.council[0].Address()}, f.recorded)
}

func TestBailoutCancel(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(time.Hour) // the release takes a while: approvals meanwhile are refused
	f.onExecute(0)
	f.at(time.Hour, func() {
		for i := range 3 {
			f.accept(BailoutApprove, f.approval(i))
		}
	})
	f.at(2*day, func() { f.accept(BailoutCancel, f.cancel(4)) })
	f.at(2*day+time.Minute, func() {
		f.refuse(BailoutApprove, f.approval(3), "approval after cancel")
		f.refuse(BailoutCancel, f.cancel(2), "cancel after cancel")
		require.Equal(t, StateCancelled, f.status().State)
	})
	st := f.run()
	require.Equal(t, StateCancelled, st.State)
	require.Equal(t, f.council[4].Address(), st.CancelledBy)
	require.Len(t, st.Approvals, 3)
	require.Len(t, f.closed, 1)
	require.Equal(t, contracts.BailoutCancelled, f.closed[0].State)
	require.Empty(t, f.executed)
}

func TestBailoutExpiryRefusesLateApprovals(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(time.Hour)
	f.onExecute(0)
	f.at(21*day+time.Minute, func() {
		require.Equal(t, StateExpired, f.status().State)
		f.refuse(BailoutApprove, f.approval(0), "approval after expiry")
	})
	st := f.run()
	require.Equal(t, StateExpired, st.State)
	require.Empty(t, st.Approvals)
	require.Empty(t, f.executed)
}

func TestBailoutSubmitFailsThenSucceedsOnce(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(2)
	f.at(time.Hour, func() {
		for i := range 5 {
			f.accept(BailoutApprove, f.approval(i))
		}
	})
	st := f.run()
	require.Equal(t, StateExecuted, st.State)
	require.Len(t, f.executed, 1, "executed once")
	f.env.AssertNumberOfCalls(t, "SubmitBailout", 3)
}

func TestBailoutReservationRefused(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(Bailout)
	env.RegisterActivity(&activities.Treasury{})
	var act *activities.Treasury
	env.OnActivity(act.BailoutPolicy, mock.Anything).Return(activities.Policy{Timelock: day, Grace: day}, nil)
	env.OnActivity(act.ReserveRecordedBailout, mock.Anything, mock.Anything).Return(
		func(context.Context, activities.ReserveRecordedInput) (activities.Reserved, error) {
			return activities.Reserved{}, errNonRetryable("the amount exceeds the fund's available XLM balance")
		})
	req := contracts.BailoutRequest{Asset: "XLM", AmountStroops: 1, Destination: keypair.MustRandom().Address(), Reason: "x"}
	env.ExecuteWorkflow(Bailout, BailoutInput{ID: contracts.BailoutID(req), Request: req, RequestedAt: t0})
	require.NoError(t, env.GetWorkflowError())
	var st BailoutStatus
	require.NoError(t, env.GetWorkflowResult(&st))
	require.Equal(t, StateRejected, st.State)
	require.Contains(t, st.Error, "available")
}

// Approvals and a cancel as signals (the `temporal workflow signal` / Web UI path) are
// verified like updates: valid ones count, invalid ones are recorded as rejected.
func TestBailoutApprovalsBySignal(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	f.at(time.Hour, func() {
		bad := f.approval(0)
		bad.Signer = f.council[1].Address()
		f.env.SignalWorkflow(BailoutApprove, bad)
		for i := range 5 {
			f.env.SignalWorkflow(BailoutApprove, f.approval(i))
		}
		f.env.SignalWorkflow(BailoutCancel, CancelRequest{Signer: f.council[0].Address(), Signature: f.approval(0).Signature})
	})
	st := f.run()
	require.Equal(t, StateExecuted, st.State)
	require.Len(t, st.Approvals, 5)
	require.Len(t, st.Rejected, 2)
	require.Equal(t, "approval", st.Rejected[0].Kind)
	require.Equal(t, "cancel", st.Rejected[1].Kind)
	require.Len(t, f.executed, 1)
}

// After any approval, a cancel first makes the envelope invalid on chain (the channel's
// sequence bumped), then releases the reservation.
func TestBailoutCancelAfterApprovalsInvalidatesFirst(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	f.at(time.Hour, func() {
		for i := range 5 {
			f.accept(BailoutApprove, f.approval(i))
		}
	})
	f.at(2*day, func() { f.accept(BailoutCancel, f.cancel(2)) })
	st := f.run()
	require.Equal(t, StateCancelled, st.State)
	require.Equal(t, []string{"invalidate", "close"}, f.calls)
	require.Empty(t, f.executed)
}

// Without any approval the envelope can never be complete: expiry just releases.
func TestBailoutExpiryWithoutApprovalsReleasesOnly(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	st := f.run()
	require.Equal(t, StateExpired, st.State)
	require.Equal(t, []string{"close"}, f.calls)
}

// Included but failed on chain: the bailout ends failed with the codes, never executed.
func TestBailoutFailedOnChain(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	f.outcome = activities.Outcome{State: contracts.StateFailed, Hash: f.built.Hash, Codes: []string{"tx_failed", "op_underfunded"}}
	f.at(time.Hour, func() {
		for i := range 5 {
			f.accept(BailoutApprove, f.approval(i))
		}
	})
	st := f.run()
	require.Equal(t, StateFailed, st.State)
	require.Equal(t, []string{"tx_failed", "op_underfunded"}, st.ResultCodes)
	require.Contains(t, st.Error, "op_underfunded")
	require.Empty(t, f.calls, "the activity booked it; nothing to invalidate or close")
}

// Refused for good before inclusion: the envelope is made invalid, then the failure booked.
func TestBailoutRefusedInvalidatesThenFails(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	f.outcome = activities.Outcome{State: activities.OutcomeRefused, Hash: f.built.Hash, Codes: []string{"tx_bad_auth"}}
	f.at(time.Hour, func() {
		for i := range 5 {
			f.accept(BailoutApprove, f.approval(i))
		}
	})
	st := f.run()
	require.Equal(t, StateFailed, st.State)
	require.Equal(t, []string{"invalidate", "fail"}, f.calls)
}

// The input is not authority: a council and a one-second timelock in the input change
// nothing; the worker's policy decides who signs and when.
func TestBailoutInputIsNotAuthority(t *testing.T) {
	f := newBailoutFixture(t)
	f.onClose(0)
	f.onExecute(0)
	var rogue []*keypair.Full
	for range 5 {
		kp := keypair.MustRandom()
		rogue = append(rogue, kp)
		f.in.Council = append(f.in.Council, kp.Address())
	}
	f.in.Timelock, f.in.Grace = time.Second, time.Second
	f.at(time.Hour, func() {
		st := f.status()
		require.Equal(t, t0.Add(14*day), st.UnlockAt)
		for _, kp := range rogue {
			sig, _ := kp.Sign(f.hash())
			f.refuse(BailoutApprove, Approval{Signer: kp.Address(), Signature: activities.SignatureBase64(sig)}, "rogue council")
		}
	})
	st := f.run()
	require.Equal(t, StateExpired, st.State)
	require.Empty(t, st.Approvals)
	require.Empty(t, f.executed)
}
