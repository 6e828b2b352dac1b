package api

import (
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/workflows"
)

// registerTreasury adds the endpoints of the insurance treasury and bailouts.
func (s *Server) registerTreasury(g *gin.RouterGroup) {
	council := requireRole(RoleCouncil, RoleAdmin)
	g.POST("/treasury/yield", requireRole(RoleService), s.recordYield)
	g.GET("/treasury", council, s.getTreasury)
	g.POST("/bailouts", council, s.requestBailout)
	g.GET("/bailouts/:id", council, s.getBailout)
	g.POST("/bailouts/:id/approvals", council, s.approveBailout)
	g.POST("/bailouts/:id/cancel", council, s.cancelBailout)
}

func (s *Server) treasury() *db.Treasury { return db.NewTreasury(s.treasuryPool) }

// ---- yield ----

type yieldRequest struct {
	ID           *uuid.UUID `json:"id"`
	Asset        string     `json:"asset"`
	GrossStroops int64      `json:"gross_stroops"`
	OccurredAt   *time.Time `json:"occurred_at"`
}

type yieldJSON struct {
	ID           uuid.UUID `json:"id"`
	Asset        string    `json:"asset"`
	GrossStroops int64     `json:"gross_stroops"`
	FeeStroops   int64     `json:"fee_stroops"`
	NetStroops   int64     `json:"net_stroops"`
	Fee          string    `json:"fee"`
	Net          string    `json:"net"`
	OccurredAt   time.Time `json:"occurred_at"`
}

// recordYield routes 1% of a DeFi yield event to the insurance fund (idempotent by id: 201
// the first time, 200 after).
func (s *Server) recordYield(c *gin.Context) {
	var req yieldRequest
	if !decodeJSON(c, &req) {
		return
	}
	switch {
	case req.ID == nil || *req.ID == uuid.Nil:
		badRequest(c, "missing_field", "id (the yield event's UUID) is required")
		return
	case req.Asset != contracts.AssetUSDC && req.Asset != contracts.AssetXLM:
		badRequest(c, "unsupported_asset", "asset must be USDC or XLM")
		return
	case req.GrossStroops <= 0:
		badRequest(c, "invalid_amount", "gross_stroops must be a positive integer")
		return
	case req.OccurredAt == nil:
		badRequest(c, "missing_field", "occurred_at is required")
		return
	case req.OccurredAt.After(s.now().Add(time.Minute)):
		badRequest(c, "invalid_time", "occurred_at is in the future")
		return
	}
	r, err := s.treasury().RecordYield(c, db.YieldInput{ID: *req.ID, Asset: req.Asset, GrossStroops: req.GrossStroops, OccurredAt: *req.OccurredAt})
	if err != nil {
		s.respondErr(c, err)
		return
	}
	status := http.StatusOK
	if r.Created {
		status = http.StatusCreated
	}
	c.JSON(status, yieldJSON{ID: r.ID, Asset: r.Asset, GrossStroops: r.GrossStroops, FeeStroops: r.FeeStroops,
		NetStroops: r.NetStroops, Fee: contracts.FormatStroops(r.FeeStroops), Net: contracts.FormatStroops(r.NetStroops),
		OccurredAt: utc(r.OccurredAt)})
}

// ---- the fund ----

type balanceJSON struct {
	Asset            string `json:"asset"`
	BalanceStroops   int64  `json:"balance_stroops"`
	ReservedStroops  int64  `json:"reserved_stroops"`
	AvailableStroops int64  `json:"available_stroops"`
	Balance          string `json:"balance"`
}

type treasuryEventJSON struct {
	Seq        int64           `json:"seq"`
	Type       string          `json:"type"`
	BailoutID  *uuid.UUID      `json:"bailout_id"`
	Payload    json.RawMessage `json:"payload"`
	OccurredAt time.Time       `json:"occurred_at"`
	PrevHash   string          `json:"prev_hash"`
	Hash       string          `json:"hash"`
}

func toEventsJSON(evs []db.TreasuryEvent) []treasuryEventJSON {
	out := make([]treasuryEventJSON, 0, len(evs))
	for _, e := range evs {
		out = append(out, treasuryEventJSON{e.Seq, e.Type, e.BailoutID, e.Payload, utc(e.OccurredAt), e.PrevHash, e.Hash})
	}
	return out
}

// getTreasury shows the fund: balances, reserved amounts and the 50 newest events.
func (s *Server) getTreasury(c *gin.Context) {
	t := s.treasury()
	bs, err := t.Balances(c)
	if err != nil {
		s.internalError(c, err)
		return
	}
	evs, err := t.RecentEvents(c, 50)
	if err != nil {
		s.internalError(c, err)
		return
	}
	balances := make([]balanceJSON, 0, len(bs))
	for _, b := range bs {
		balances = append(balances, balanceJSON{b.Asset, b.Balance, b.Reserved, b.Available(), contracts.FormatStroops(b.Balance)})
	}
	c.JSON(http.StatusOK, gin.H{"balances": balances, "recent_events": toEventsJSON(evs)})
}

// ---- bailouts ----

type bailoutRequest struct {
	Asset         string `json:"asset"`
	AmountStroops int64  `json:"amount_stroops"`
	Destination   string `json:"destination"`
	Reason        string `json:"reason"`
}

// requestBailout validates a request and starts its workflow, whose id derives from a hash
// of the request: the same request twice is a 409.
func (s *Server) requestBailout(c *gin.Context) {
	var req bailoutRequest
	if !decodeJSON(c, &req) {
		return
	}
	r := contracts.BailoutRequest{Asset: req.Asset, AmountStroops: req.AmountStroops, Destination: req.Destination, Reason: req.Reason}
	if err := r.Validate(s.cfg.Treasury.USDCIssuer); err != nil {
		badRequest(c, "invalid_bailout", err.Error())
		return
	}
	if s.temporal == nil || contracts.ValidateCouncil(s.cfg.Treasury.CouncilKeys) != nil {
		fail(c, http.StatusServiceUnavailable, "treasury_not_configured", "bailouts need Temporal and five COUNCIL_PUBLIC_KEYS")
		return
	}
	bs, err := s.treasury().Balances(c)
	if err != nil {
		s.internalError(c, err)
		return
	}
	for _, b := range bs {
		if b.Asset == r.Asset && b.Available() < r.AmountStroops {
			fail(c, http.StatusUnprocessableEntity, "insufficient_funds",
				"the amount exceeds the fund's available "+r.Asset+" balance ("+contracts.FormatStroops(b.Available())+")")
			return
		}
	}
	p := principal(c)
	id := contracts.BailoutID(r)
	wid := workflows.BailoutWorkflowID(id)
	in := workflows.BailoutInput{ID: id, Request: r, RequestedBy: &p.UserID, RequestedAt: s.now().UTC(),
		Timelock: s.cfg.Treasury.Timelock, Grace: s.cfg.Treasury.GracePeriod, Council: s.cfg.Treasury.CouncilKeys}
	_, err = s.temporal.ExecuteWorkflow(c, client.StartWorkflowOptions{
		ID: wid, TaskQueue: workflows.TreasuryQueue,
		WorkflowIDReusePolicy:                    enumspb.WORKFLOW_ID_REUSE_POLICY_REJECT_DUPLICATE,
		WorkflowIDConflictPolicy:                 enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		WorkflowExecutionErrorWhenAlreadyStarted: true,
	}, workflows.BailoutWorkflowName, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		fail(c, http.StatusConflict, "duplicate_bailout", "this bailout was already requested (id "+id.String()+")")
		return
	}
	if err != nil {
		s.internalError(c, err)
		return
	}
	s.audit(c, &p, "bailout.request", id.String(), r.Asset+" "+contracts.FormatStroops(r.AmountStroops)+" to "+r.Destination)
	w := contracts.BailoutWindow(in.RequestedAt, in.Timelock, in.Grace)
	c.JSON(http.StatusAccepted, gin.H{"id": id, "workflow_id": wid, "state": workflows.StateReserving,
		"requested_at": in.RequestedAt, "unlock_at": w.Unlock, "expires_at": w.Expiry})
}

// getBailout answers the workflow's status query (state, approvals with times, unlock time,
// transaction hash and envelope, rejected attempts).
func (s *Server) getBailout(c *gin.Context) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	if s.temporal == nil {
		fail(c, http.StatusServiceUnavailable, "treasury_not_configured", "bailouts need Temporal")
		return
	}
	v, err := s.temporal.QueryWorkflow(c, workflows.BailoutWorkflowID(id), "", workflows.BailoutStatusQuery)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		notFound(c, "bailout")
		return
	}
	if err != nil {
		s.internalError(c, err)
		return
	}
	var st workflows.BailoutStatus
	if err := v.Get(&st); err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

type signedRequest struct {
	Signer    string `json:"signer"`
	Signature string `json:"signature"`
}

// approveBailout hands a council member's signature to the workflow as an Update: the
// validator refuses a forged signature, a non-member or a duplicate at once (422).
func (s *Server) approveBailout(c *gin.Context) {
	s.signedUpdate(c, workflows.BailoutApprove, "bailout.approve", func(r signedRequest) any {
		return workflows.Approval{Signer: r.Signer, Signature: r.Signature}
	})
}

// cancelBailout hands a council member's signed cancel message to the workflow.
func (s *Server) cancelBailout(c *gin.Context) {
	s.signedUpdate(c, workflows.BailoutCancel, "bailout.cancel", func(r signedRequest) any {
		return workflows.CancelRequest{Signer: r.Signer, Signature: r.Signature}
	})
}

func (s *Server) signedUpdate(c *gin.Context, name, action string, arg func(signedRequest) any) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	var req signedRequest
	if !decodeJSON(c, &req) {
		return
	}
	if !contracts.ValidAccount(req.Signer) {
		badRequest(c, "invalid_signer", "signer must be a Stellar public key (G...)")
		return
	}
	if req.Signature == "" {
		badRequest(c, "missing_field", "signature (base64) is required")
		return
	}
	if s.temporal == nil {
		fail(c, http.StatusServiceUnavailable, "treasury_not_configured", "bailouts need Temporal")
		return
	}
	p := principal(c)
	h, err := s.temporal.UpdateWorkflow(c, client.UpdateWorkflowOptions{
		WorkflowID: workflows.BailoutWorkflowID(id), UpdateName: name, Args: []any{arg(req)},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	var st workflows.BailoutStatus
	if err == nil {
		err = h.Get(c, &st)
	}
	var nf *serviceerror.NotFound
	var app *temporal.ApplicationError
	switch {
	case errors.As(err, &nf):
		notFound(c, "bailout")
	case errors.As(err, &app):
		s.audit(c, &p, action+".refused", id.String(), req.Signer+": "+app.Message())
		fail(c, http.StatusUnprocessableEntity, "refused", app.Message())
	case err != nil:
		s.internalError(c, err)
	default:
		s.audit(c, &p, action, id.String(), req.Signer)
		c.JSON(http.StatusOK, st)
	}
}
