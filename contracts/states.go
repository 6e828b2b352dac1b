package contracts

// The bailout's state vocabulary, shared by the workflow, the activities and the treasury's
// records.

// Bailout states as the status query and the BailoutState search attribute show them.
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

// Bailout states in the treasury's records.
const (
	// BailoutRequested: recorded by the API, nothing reserved yet.
	BailoutRequested = "requested"
	// BailoutPending: amount reserved, channel allocated, awaiting approvals.
	BailoutPending   = "pending"
	BailoutRejected  = "rejected"
	BailoutCancelled = "cancelled"
	BailoutExpired   = "expired"
	BailoutExecuted  = "executed"
	// BailoutFailed: the payment was refused or failed on chain; nothing was debited.
	BailoutFailed = "failed"
)
