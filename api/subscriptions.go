package api

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/db"
)

// registerSubscriptions adds the subscriptions of fans to creators' tiers: the back office
// creates and renews them; fans and creators read their own, and a fan cancels their own.
func (s *Server) registerSubscriptions(g *gin.RouterGroup, backOffice gin.HandlerFunc) {
	g.POST("/subscriptions", backOffice, s.createSubscription)
	g.GET("/subscriptions", s.listSubscriptions)
	g.GET("/subscriptions/:id", s.getSubscription)
	g.POST("/subscriptions/:id/renew", backOffice, s.renewSubscription)
	g.POST("/subscriptions/:id/cancel", s.cancelSubscription)
}

type subscriptionJSON struct {
	ID               uuid.UUID  `json:"id"`
	FanID            uuid.UUID  `json:"fan_id"`
	CreatorID        uuid.UUID  `json:"creator_id"`
	TierID           uuid.UUID  `json:"tier_id"`
	TierLevel        int        `json:"tier_level"`
	Status           string     `json:"status"`
	Active           bool       `json:"active"`
	StartedAt        time.Time  `json:"started_at"`
	CurrentPeriodEnd time.Time  `json:"current_period_end"`
	CancelledAt      *time.Time `json:"cancelled_at"`
	CreatedAt        time.Time  `json:"created_at"`
	UpdatedAt        time.Time  `json:"updated_at"`
}

func (s *Server) toSubscriptionJSON(sub db.Subscription) subscriptionJSON {
	return subscriptionJSON{ID: sub.ID, FanID: sub.FanID, CreatorID: sub.CreatorID, TierID: sub.TierID,
		TierLevel: sub.TierLevel, Status: sub.Status, Active: sub.ActiveAt(s.now()), StartedAt: utc(sub.StartedAt),
		CurrentPeriodEnd: utc(sub.CurrentPeriodEnd), CancelledAt: utcPtr(sub.CancelledAt),
		CreatedAt: utc(sub.CreatedAt), UpdatedAt: utc(sub.UpdatedAt)}
}

type createSubscriptionRequest struct {
	FanID     string     `json:"fan_id"`
	CreatorID string     `json:"creator_id"`
	TierID    string     `json:"tier_id"`
	StartedAt *time.Time `json:"started_at"`
}

func (s *Server) createSubscription(c *gin.Context) {
	var req createSubscriptionRequest
	if !decodeJSON(c, &req) {
		return
	}
	fan, ok := fieldUUID(c, "fan_id", req.FanID)
	if !ok {
		return
	}
	creator, ok := fieldUUID(c, "creator_id", req.CreatorID)
	if !ok {
		return
	}
	tier, ok := fieldUUID(c, "tier_id", req.TierID)
	if !ok {
		return
	}
	if req.StartedAt != nil && req.StartedAt.After(s.now().Add(5*time.Minute)) {
		badRequest(c, "invalid_time", "started_at is in the future")
		return
	}
	sub, err := db.CreateSubscription(c, s.pool, db.SubscriptionInput{FanID: fan, CreatorID: creator, TierID: tier,
		StartedAt: req.StartedAt}, s.now())
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusCreated, s.toSubscriptionJSON(sub))
}

// subscriptionFor loads a subscription the caller may see: the back office, its fan and its
// creator. Anyone else gets 404, as if it did not exist.
func (s *Server) subscriptionFor(c *gin.Context) (db.Subscription, bool) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return db.Subscription{}, false
	}
	sub, err := db.GetSubscription(c, s.pool, id)
	if err != nil {
		s.respondErr(c, err)
		return db.Subscription{}, false
	}
	if p := principal(c); !isBackOffice(p) && p.UserID != sub.FanID && p.UserID != sub.CreatorID {
		notFound(c, "subscription")
		return db.Subscription{}, false
	}
	return sub, true
}

func (s *Server) getSubscription(c *gin.Context) {
	if sub, ok := s.subscriptionFor(c); ok {
		c.JSON(http.StatusOK, s.toSubscriptionJSON(sub))
	}
}

func (s *Server) listSubscriptions(c *gin.Context) {
	page, ok := pageParams(c)
	if !ok {
		return
	}
	fan, ok := queryUUID(c, "fan_id")
	if !ok {
		return
	}
	creator, ok := queryUUID(c, "creator_id")
	if !ok {
		return
	}
	// Fans see their own subscriptions, creators their subscribers; the back office all.
	if !callerScope(c, &fan, &creator, "listing subscriptions needs the fan, creator, service or admin role") {
		return
	}
	subs, next, err := db.ListSubscriptions(c, s.pool, db.SubscriptionFilter{FanID: fan, CreatorID: creator}, page)
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(http.StatusOK, mapList(subs, next, s.toSubscriptionJSON))
}

func (s *Server) renewSubscription(c *gin.Context) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	sub, err := db.RenewSubscription(c, s.pool, id, s.now())
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, s.toSubscriptionJSON(sub))
}

// cancelSubscription is open to the back office and to the subscription's own fan.
func (s *Server) cancelSubscription(c *gin.Context) {
	sub, ok := s.subscriptionFor(c)
	if !ok {
		return
	}
	if p := principal(c); !isBackOffice(p) && p.UserID != sub.FanID {
		forbidden(c, "only the subscriber or the back office can cancel a subscription")
		return
	}
	sub, err := db.CancelSubscription(c, s.pool, sub.ID, s.now())
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, s.toSubscriptionJSON(sub))
}
