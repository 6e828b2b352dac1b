package api

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
)

// registerTreasury adds the endpoints of the insurance treasury (this file) and its bailouts
// (bailouts.go).
func (s *Server) registerTreasury(g *gin.RouterGroup) {
	council := requireRole(RoleCouncil, RoleAdmin)
	g.POST("/treasury/yield", requireRole(RoleService), s.recordYield)
	g.GET("/treasury", council, s.getTreasury)
	s.registerBailouts(g, council)
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
