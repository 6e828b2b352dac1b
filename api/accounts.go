package api

import (
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/strkey"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
)

// registerAccounts adds the service API of the account model: users, creators and their
// tiers, subscriptions and revenue events. Writes need the service or admin role; reads are
// open to the people a record concerns.
func (s *Server) registerAccounts(g *gin.RouterGroup) {
	backOffice := requireRole(RoleService, RoleAdmin)
	g.PUT("/users/:id", backOffice, s.putUser)
	g.GET("/users", backOffice, s.listUsers)
	g.GET("/users/:id", s.getUser)

	g.GET("/creators", s.listCreators)
	g.GET("/creators/:id", s.getCreator)
	g.GET("/creators/:id/tiers", s.listTiers)
	g.GET("/creators/:id/tiers/:tier_id", s.getTier)
	g.PUT("/creators/:id/tiers/:tier_id", backOffice, s.putTier)

	g.POST("/subscriptions", backOffice, s.createSubscription)
	g.GET("/subscriptions", s.listSubscriptions)
	g.GET("/subscriptions/:id", s.getSubscription)
	g.POST("/subscriptions/:id/renew", backOffice, s.renewSubscription)
	g.POST("/subscriptions/:id/cancel", s.cancelSubscription)

	g.POST("/revenue-events", backOffice, s.recordRevenueEvent)
	g.POST("/revenue-events/batch", backOffice, s.recordRevenueBatch)
	g.GET("/revenue-events", s.listRevenueEvents)
	g.GET("/revenue-events/:id", s.getRevenueEvent)
}

// isBackOffice reports whether the caller runs the platform rather than uses it.
func isBackOffice(p Principal) bool { return p.Role == RoleService || p.Role == RoleAdmin }

// ---- users and creators ----

type userJSON struct {
	ID             uuid.UUID `json:"id"`
	Role           string    `json:"role"`
	DisplayName    string    `json:"display_name"`
	StellarAccount *string   `json:"stellar_account"`
	Handle         *string   `json:"handle"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
}

func toUserJSON(u db.User) userJSON {
	return userJSON{ID: u.ID, Role: u.Role, DisplayName: u.DisplayName, StellarAccount: u.StellarAccount,
		Handle: u.Handle, CreatedAt: utc(u.CreatedAt), UpdatedAt: utc(u.UpdatedAt)}
}

type putUserRequest struct {
	Role           string  `json:"role"`
	DisplayName    string  `json:"display_name"`
	StellarAccount *string `json:"stellar_account"`
	Handle         *string `json:"handle"`
}

var handlePattern = regexp.MustCompile(`^[a-z0-9_]{2,32}$`)

func (s *Server) putUser(c *gin.Context) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	var req putUserRequest
	if !decodeJSON(c, &req) {
		return
	}
	switch {
	case !ValidRole(req.Role):
		badRequest(c, "invalid_role", "role must be one of fan, creator, council, admin, service")
	case !validText(req.DisplayName, 100):
		badRequest(c, "invalid_display_name", "display_name must be 1 to 100 characters")
	case req.StellarAccount != nil && !strkey.IsValidEd25519PublicKey(*req.StellarAccount):
		badRequest(c, "invalid_stellar_account", "stellar_account must be a Stellar public key (G...)")
	case req.Role == string(RoleCreator) && (req.Handle == nil || !handlePattern.MatchString(*req.Handle)):
		badRequest(c, "invalid_handle", "a creator needs a handle of 2 to 32 lowercase letters, digits or underscores")
	case req.Role != string(RoleCreator) && req.Handle != nil:
		badRequest(c, "invalid_handle", "only creators have a handle")
	default:
		u, created, err := db.UpsertUser(c, s.pool, id, db.UserInput{Role: req.Role, DisplayName: req.DisplayName,
			StellarAccount: req.StellarAccount, Handle: req.Handle}, s.now())
		if err != nil {
			s.respondErr(c, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		c.JSON(status, toUserJSON(u))
	}
}

func (s *Server) getUser(c *gin.Context) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	if p := principal(c); !isBackOffice(p) && p.UserID != id {
		notFound(c, "user")
		return
	}
	u, err := db.GetUser(c, s.pool, id)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, toUserJSON(u))
}

func (s *Server) listUsers(c *gin.Context) {
	page, ok := pageParams(c)
	if !ok {
		return
	}
	role := c.Query("role")
	if role != "" && !ValidRole(role) {
		badRequest(c, "invalid_query", "role must be one of fan, creator, council, admin, service")
		return
	}
	users, next, err := db.ListUsers(c, s.pool, role, page)
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(http.StatusOK, mapList(users, next, toUserJSON))
}

// creatorJSON is a creator's public page: no Stellar account of theirs is shown to fans.
type creatorJSON struct {
	ID          uuid.UUID `json:"id"`
	Handle      string    `json:"handle"`
	DisplayName string    `json:"display_name"`
	CreatedAt   time.Time `json:"created_at"`
}

func toCreatorJSON(u db.User) creatorJSON {
	h := ""
	if u.Handle != nil {
		h = *u.Handle
	}
	return creatorJSON{ID: u.ID, Handle: h, DisplayName: u.DisplayName, CreatedAt: utc(u.CreatedAt)}
}

func (s *Server) listCreators(c *gin.Context) {
	page, ok := pageParams(c)
	if !ok {
		return
	}
	creators, next, err := db.ListCreators(c, s.pool, page)
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(http.StatusOK, mapList(creators, next, toCreatorJSON))
}

func (s *Server) getCreator(c *gin.Context) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	u, err := db.GetCreator(c, s.pool, id)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, toCreatorJSON(u))
}

// ---- tiers ----

type tierJSON struct {
	ID           uuid.UUID `json:"id"`
	CreatorID    uuid.UUID `json:"creator_id"`
	Name         string    `json:"name"`
	Level        int       `json:"level"`
	PriceStroops int64     `json:"price_stroops"`
	Price        string    `json:"price"`
	Asset        string    `json:"asset"`
	PeriodDays   int       `json:"period_days"`
	Permissions  []string  `json:"permissions"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

func toTierJSON(t db.Tier) tierJSON {
	return tierJSON{ID: t.ID, CreatorID: t.CreatorID, Name: t.Name, Level: t.Level, PriceStroops: t.PriceStroops,
		Price: contracts.FormatStroops(t.PriceStroops), Asset: t.Asset, PeriodDays: t.PeriodDays,
		Permissions: t.Permissions, CreatedAt: utc(t.CreatedAt), UpdatedAt: utc(t.UpdatedAt)}
}

type putTierRequest struct {
	Name         string   `json:"name"`
	Level        int      `json:"level"`
	PriceStroops int64    `json:"price_stroops"`
	Asset        string   `json:"asset"`
	PeriodDays   *int     `json:"period_days"`
	Permissions  []string `json:"permissions"`
}

var permissionPattern = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

func (s *Server) putTier(c *gin.Context) {
	creatorID, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	tierID, ok := pathUUID(c, "tier_id")
	if !ok {
		return
	}
	var req putTierRequest
	if !decodeJSON(c, &req) {
		return
	}
	period := 30
	if req.PeriodDays != nil {
		period = *req.PeriodDays
	}
	switch {
	case !validText(req.Name, 50):
		badRequest(c, "invalid_name", "name must be 1 to 50 characters")
	case req.Level < 1 || req.Level > 10:
		badRequest(c, "invalid_level", "level must be from 1 to 10 (Bronze 1, Silver 2, Gold 3)")
	case req.PriceStroops <= 0:
		badRequest(c, "invalid_amount", "price_stroops must be a positive whole number of stroops")
	case !slices.Contains(db.Assets, req.Asset):
		badRequest(c, "unsupported_asset", "asset must be USDC or XLM")
	case period < 1 || period > 366:
		badRequest(c, "invalid_period", "period_days must be from 1 to 366")
	case len(req.Permissions) > 20 || slices.ContainsFunc(req.Permissions, func(p string) bool { return !permissionPattern.MatchString(p) }):
		badRequest(c, "invalid_permissions", "permissions must be at most 20 lowercase words (a-z, 0-9, _)")
	default:
		t, created, err := db.UpsertTier(c, s.pool, creatorID, tierID, db.TierInput{Name: req.Name, Level: req.Level,
			PriceStroops: req.PriceStroops, Asset: req.Asset, PeriodDays: period, Permissions: req.Permissions}, s.now())
		if err != nil {
			s.respondErr(c, err)
			return
		}
		status := http.StatusOK
		if created {
			status = http.StatusCreated
		}
		c.JSON(status, toTierJSON(t))
	}
}

func (s *Server) listTiers(c *gin.Context) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	tiers, err := db.ListTiers(c, s.pool, id)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, mapList(tiers, nil, toTierJSON))
}

func (s *Server) getTier(c *gin.Context) {
	creatorID, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	tierID, ok := pathUUID(c, "tier_id")
	if !ok {
		return
	}
	t, err := db.GetTier(c, s.pool, creatorID, tierID)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, toTierJSON(t))
}

// ---- subscriptions ----

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
	switch p := principal(c); {
	case isBackOffice(p):
	case p.Role == RoleFan:
		fan = p.UserID
	case p.Role == RoleCreator:
		creator = p.UserID
	default:
		forbidden(c, "listing subscriptions needs the fan, creator, service or admin role")
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

// ---- revenue events ----

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
	switch p := principal(c); {
	case isBackOffice(p):
	case p.Role == RoleCreator:
		creator = p.UserID
	default:
		forbidden(c, "revenue is visible to its creator and the back office only")
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

// validText reports whether s is valid UTF-8 of 1 to max characters, not all blank.
func validText(s string, max int) bool {
	n := utf8.RuneCountInString(s)
	return utf8.ValidString(s) && n >= 1 && n <= max && strings.TrimSpace(s) != ""
}
