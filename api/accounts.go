package api

import (
	"net/http"
	"regexp"
	"slices"
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
// tiers (this file, as db/accounts.go), subscriptions (subscriptions.go) and revenue events
// (revenue.go). Writes need the service or admin role; reads are open to the people a record
// concerns.
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

	s.registerSubscriptions(g, backOffice)
	s.registerRevenue(g, backOffice)
}

// isBackOffice reports whether the caller runs the platform rather than uses it.
func isBackOffice(p Principal) bool { return p.Role == RoleService || p.Role == RoleAdmin }

// callerScope narrows a list to what the caller may see: the back office sees what it asked
// for; a fan only their own (fan is set to them), a creator only their own (creator is set to
// them). A nil pointer means that role sees nothing of this list: 403 with why, and false.
func callerScope(c *gin.Context, fan, creator *uuid.UUID, why string) bool {
	switch p := principal(c); {
	case isBackOffice(p):
	case p.Role == RoleFan && fan != nil:
		*fan = p.UserID
	case p.Role == RoleCreator && creator != nil:
		*creator = p.UserID
	default:
		forbidden(c, why)
		return false
	}
	return true
}

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

// validText reports whether s is valid UTF-8 of 1 to max characters, not all blank.
func validText(s string, max int) bool {
	n := utf8.RuneCountInString(s)
	return utf8.ValidString(s) && n >= 1 && n <= max && strings.TrimSpace(s) != ""
}
