package api

import (
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
)

// registerRevenue adds revenue events: the back office records them (one or a batch,
// idempotent by external_id); a creator reads their own.
func (s *Server) registerRevenue(g *gin.RouterGroup, backOffice gin.HandlerFunc) {
	g.POST("/revenue-events", backOffice, s.recordRevenueEvent)
	g.POST("/revenue-events/batch", backOffice, s.recordRevenueBatch)
	g.GET("/revenue-events", s.listRevenueEvents)
	g.GET("/revenue-events/:id", s.getRevenueEvent)
}

type revenueEventJSON struct {
	ID             uuid.UUID  `json:"id"`
	ExternalID     string     `json:"external_id"`
	CreatorID      uuid.UUID  `json:"creator_id"`
	FanID          *uuid.UUID `json:"fan_id"`
	SubscriptionID *uuid.UUID `json:"subscription_id"`
	Kind           string     `json:"kind"`
	AmountStroops  int64      `json:"amount_stroops"`
	Amount         string     `json:"amount"`
	Asset          string     `json:"asset"`
	OccurredAt     time.Time  `json:"occurred_at"`
	CreatedAt      time.Time  `json:"created_at"`
}

func toRevenueJSON(e db.RevenueEvent) revenueEventJSON {
	return revenueEventJSON{ID: e.ID, ExternalID: e.ExternalID, CreatorID: e.CreatorID, FanID: e.FanID,
		SubscriptionID: e.SubscriptionID, Kind: e.Kind, AmountStroops: e.AmountStroops,
		Amount: contracts.FormatStroops(e.AmountStroops), Asset: e.Asset, OccurredAt: utc(e.OccurredAt),
		CreatedAt: utc(e.CreatedAt)}
}

type revenueEventRequest struct {
	ExternalID     string     `json:"external_id"`
	CreatorID      string     `json:"creator_id"`
	FanID          *string    `json:"fan_id"`
	SubscriptionID *string    `json:"subscription_id"`
	Kind           string     `json:"kind"`
	AmountStroops  int64      `json:"amount_stroops"`
	Asset          string     `json:"asset"`
	OccurredAt     *time.Time `json:"occurred_at"`
}

// revenueInput validates one event; prefix names it within a batch ("events[3].").
func (s *Server) revenueInput(c *gin.Context, prefix string, r revenueEventRequest) (db.RevenueEventInput, bool) {
	var in db.RevenueEventInput
	switch {
	case !validText(r.ExternalID, 128):
		badRequest(c, "invalid_external_id", prefix+"external_id must be 1 to 128 characters")
		return in, false
	case r.Kind != db.KindSubscriptionPayment && r.Kind != db.KindTip:
		badRequest(c, "invalid_kind", prefix+"kind must be subscription_payment or tip")
		return in, false
	case r.AmountStroops <= 0:
		badRequest(c, "invalid_amount", prefix+"amount_stroops must be a positive whole number of stroops")
		return in, false
	case !slices.Contains(db.Assets, r.Asset):
		badRequest(c, "unsupported_asset", prefix+"asset must be USDC or XLM")
		return in, false
	case r.OccurredAt == nil:
		badRequest(c, "missing_field", prefix+"occurred_at is required")
		return in, false
	case r.OccurredAt.After(s.now().Add(5 * time.Minute)):
		badRequest(c, "invalid_time", prefix+"occurred_at is in the future")
		return in, false
	case r.Kind == db.KindSubscriptionPayment && r.SubscriptionID == nil:
		badRequest(c, "missing_field", prefix+"a subscription_payment needs subscription_id")
		return in, false
	}
	creator, ok := fieldUUID(c, prefix+"creator_id", r.CreatorID)
	if !ok {
		return in, false
	}
	fan, ok := optionalUUID(c, prefix+"fan_id", r.FanID)
	if !ok {
		return in, false
	}
	sub, ok := optionalUUID(c, prefix+"subscription_id", r.SubscriptionID)
	if !ok {
		return in, false
	}
	return db.RevenueEventInput{ExternalID: r.ExternalID, CreatorID: creator, FanID: fan, SubscriptionID: sub,
		Kind: r.Kind, AmountStroops: r.AmountStroops, Asset: r.Asset, OccurredAt: r.OccurredAt.UTC()}, true
}

// recordRevenueEvent answers 201 for a new event and 200 for a repeat of a recorded one.
func (s *Server) recordRevenueEvent(c *gin.Context) {
	var req revenueEventRequest
	if !decodeJSON(c, &req) {
		return
	}
	in, ok := s.revenueInput(c, "", req)
	if !ok {
		return
	}
	res, err := db.RecordRevenueEvents(c, s.pool, []db.RevenueEventInput{in})
	if err != nil {
		s.respondErr(c, err)
		return
	}
	status := http.StatusOK
	if res[0].Created {
		status = http.StatusCreated
	}
	c.JSON(status, toRevenueJSON(res[0].Event))
}

// maxBatch bounds one import request.
const maxBatch = 1000

type revenueBatchRequest struct {
	Events []revenueEventRequest `json:"events"`
}

type revenueBatchResponse struct {
	Created  int                `json:"created"`
	Existing int                `json:"existing"`
	Items    []revenueEventJSON `json:"items"`
}

// recordRevenueBatch records up to 1000 events all or nothing.
func (s *Server) recordRevenueBatch(c *gin.Context) {
	var req revenueBatchRequest
	if !decodeJSONLimit(c, &req, 4<<20) {
		return
	}
	if len(req.Events) == 0 || len(req.Events) > maxBatch {
		badRequest(c, "invalid_batch", "events must hold 1 to 1000 events")
		return
	}
	ins := make([]db.RevenueEventInput, len(req.Events))
	seen := make(map[string]int, len(req.Events))
	for i, r := range req.Events {
		prefix := "events[" + strconv.Itoa(i) + "]."
		in, ok := s.revenueInput(c, prefix, r)
		if !ok {
			return
		}
		if j, dup := seen[in.ExternalID]; dup {
			badRequest(c, "duplicate_external_id", prefix+"external_id repeats events["+strconv.Itoa(j)+"]")
			return
		}
		seen[in.ExternalID] = i
		ins[i] = in
	}
	res, err := db.RecordRevenueEvents(c, s.pool, ins)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	out := revenueBatchResponse{Items: make([]revenueEventJSON, len(res))}
	for i, r := range res {
		out.Items[i] = toRevenueJSON(r.Event)
		if r.Created {
			out.Created++
		} else {
			out.Existing++
		}
	}
	c.JSON(http.StatusOK, out)
}

// listRevenueEvents: the back office sees everything (optionally one creator's), a creator
// their own.
func (s *Server) listRevenueEvents(c *gin.Context) {
	page, ok := pageParams(c)
	if !ok {
		return
	}
	creator, ok := queryUUID(c, "creator_id")
	if !ok {
		return
	}
	if !callerScope(c, nil, &creator, "revenue is visible to its creator and the back office only") {
		return
	}
	evs, next, err := db.ListRevenueEvents(c, s.pool, creator, page)
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(http.StatusOK, mapList(evs, next, toRevenueJSON))
}

func (s *Server) getRevenueEvent(c *gin.Context) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	e, err := db.GetRevenueEvent(c, s.pool, id)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	if p := principal(c); !isBackOffice(p) && p.UserID != e.CreatorID {
		notFound(c, "revenue event")
		return
	}
	c.JSON(http.StatusOK, toRevenueJSON(e))
}
