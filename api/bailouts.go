package api

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/workflows"
)

// registerBailouts adds the bailout workflow's endpoints, all for the council (and admins):
// request, read, approve with a member's signature, cancel.
func (s *Server) registerBailouts(g *gin.RouterGroup, council gin.HandlerFunc) {
	g.POST("/bailouts", council, s.requestBailout)
	g.GET("/bailouts/:id", council, s.getBailout)
	g.POST("/bailouts/:id/approvals", council, s.approveBailout)
	g.POST("/bailouts/:id/cancel", council, s.cancelBailout)
}

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
