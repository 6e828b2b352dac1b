package api

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
)

// fixture helpers: they go through the API as the service role, like an importer would.

func (e *env) service() user { return e.as(RoleService) }

func (e *env) putUser(role Role, handle string) uuid.UUID {
	e.t.Helper()
	id := uuid.New()
	body := map[string]any{"role": role, "display_name": string(role) + " " + id.String()[:8]}
	if handle != "" {
		body["handle"] = handle
	}
	r := e.do(http.MethodPut, "/api/v1/users/"+id.String(), e.service().Token, body)
	require.Equal(e.t, http.StatusCreated, r.Code, string(r.Body))
	return id
}

func (e *env) newCreator() uuid.UUID {
	return e.putUser(RoleCreator, "c_"+uuid.NewString()[:8])
}

func (e *env) newTier(creator uuid.UUID, level int) uuid.UUID {
	e.t.Helper()
	id := uuid.New()
	r := e.do(http.MethodPut, fmt.Sprintf("/api/v1/creators/%s/tiers/%s", creator, id), e.service().Token,
		map[string]any{"name": fmt.Sprintf("Level %d", level), "level": level, "price_stroops": 50_000_000 * level, "asset": "USDC"})
	require.Equal(e.t, http.StatusCreated, r.Code, string(r.Body))
	return id
}

func (e *env) subscribe(fan, creator, tier uuid.UUID) uuid.UUID {
	e.t.Helper()
	r := e.do(http.MethodPost, "/api/v1/subscriptions", e.service().Token,
		map[string]any{"fan_id": fan, "creator_id": creator, "tier_id": tier})
	require.Equal(e.t, http.StatusCreated, r.Code, string(r.Body))
	return uuid.MustParse(r.JSON(e.t)["id"].(string))
}

func TestPutUser(t *testing.T) {
	e := newEnv(t)
	svc := e.service().Token
	id := uuid.New()
	path := "/api/v1/users/" + id.String()

	r := e.do(http.MethodPut, path, svc, map[string]any{"role": "fan", "display_name": "Ada"})
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	require.Equal(t, "Ada", r.JSON(t)["display_name"])
	r = e.do(http.MethodPut, path, svc, map[string]any{"role": "fan", "display_name": "Ada L."})
	require.Equal(t, http.StatusOK, r.Code)
	require.Equal(t, "Ada L.", r.JSON(t)["display_name"])

	bad := map[string]struct {
		body   any
		status int
		code   string
	}{
		"unknown role":      {map[string]any{"role": "root", "display_name": "x"}, 400, "invalid_role"},
		"empty name":        {map[string]any{"role": "fan", "display_name": ""}, 400, "invalid_display_name"},
		"blank name":        {map[string]any{"role": "fan", "display_name": "   "}, 400, "invalid_display_name"},
		"creator no handle": {map[string]any{"role": "creator", "display_name": "x"}, 400, "invalid_handle"},
		"fan with handle":   {map[string]any{"role": "fan", "display_name": "x", "handle": "abc"}, 400, "invalid_handle"},
		"bad stellar":       {map[string]any{"role": "fan", "display_name": "x", "stellar_account": "GABC"}, 400, "invalid_stellar_account"},
		"unknown field":     {map[string]any{"role": "fan", "display_name": "x", "admin": true}, 400, "unknown_field"},
		"wrong type":        {map[string]any{"role": "fan", "display_name": 7}, 400, "wrong_type"},
		"not json":          {"{nope", 400, "invalid_json"},
		"two values":        {`{"role":"fan","display_name":"x"} {}`, 400, "invalid_json"},
	}
	for name, c := range bad {
		other := uuid.New()
		r := e.do(http.MethodPut, "/api/v1/users/"+other.String(), svc, c.body)
		require.Equal(t, c.status, r.Code, name)
		require.Equal(t, c.code, r.ErrorCode(t), name)
		require.Zero(t, e.count(`SELECT count(*) FROM users WHERE id = $1`, other), "%s wrote a user", name)
	}

	// A creator keeps its role; handles are unique.
	creator := e.newCreator()
	r = e.do(http.MethodPut, "/api/v1/users/"+creator.String(), svc, map[string]any{"role": "fan", "display_name": "x"})
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, "role_change_not_allowed", r.ErrorCode(t))
	e.putUser(RoleCreator, "taken_handle")
	r = e.do(http.MethodPut, "/api/v1/users/"+uuid.NewString(), svc, map[string]any{"role": "creator", "display_name": "x", "handle": "taken_handle"})
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, "handle_taken", r.ErrorCode(t))

	r = e.do(http.MethodPut, "/api/v1/users/not-a-uuid", svc, map[string]any{"role": "fan", "display_name": "x"})
	require.Equal(t, http.StatusBadRequest, r.Code)
}

func TestUserReadsAndWritesNeedTheRightRole(t *testing.T) {
	e := newEnv(t)
	fan := e.putUser(RoleFan, "")
	fanTok := e.token(fan, RoleFan)
	other := e.putUser(RoleFan, "")

	// Writes: service and admin only.
	for _, role := range []Role{RoleFan, RoleCreator, RoleCouncil} {
		r := e.do(http.MethodPut, "/api/v1/users/"+fan.String(), e.as(role).Token, map[string]any{"role": "admin", "display_name": "me"})
		require.Equal(t, http.StatusForbidden, r.Code, role)
	}
	r := e.do(http.MethodPut, "/api/v1/users/"+fan.String(), e.as(RoleAdmin).Token, map[string]any{"role": "fan", "display_name": "me"})
	require.Equal(t, http.StatusOK, r.Code)

	// Reads: oneself, or the back office; another user's record is a 404.
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/users/"+fan.String(), fanTok, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/users/"+other.String(), fanTok, nil).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/users/"+other.String(), e.service().Token, nil).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/api/v1/users", fanTok, nil).Code)
}

func TestListsPage(t *testing.T) {
	e := newEnv(t)
	for range 5 {
		e.putUser(RoleFan, "")
	}
	seen := map[string]bool{}
	path := "/api/v1/users?role=fan&limit=2"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		r := e.do(http.MethodGet, path, e.service().Token, nil)
		require.Equal(t, http.StatusOK, r.Code, string(r.Body))
		body := r.JSON(t)
		for _, it := range body["items"].([]any) {
			seen[it.(map[string]any)["id"].(string)] = true
		}
		next, _ := body["next_cursor"].(string)
		if next == "" {
			break
		}
		path = "/api/v1/users?role=fan&limit=2&after=" + next
	}
	require.Len(t, seen, 5)

	for _, q := range []string{"limit=0", "limit=201", "limit=x", "after=garbage", "role=root"} {
		r := e.do(http.MethodGet, "/api/v1/users?"+q, e.service().Token, nil)
		require.Equal(t, http.StatusBadRequest, r.Code, q)
	}
}

func TestPutTier(t *testing.T) {
	e := newEnv(t)
	svc := e.service().Token
	creator := e.newCreator()
	tier := uuid.New()
	path := fmt.Sprintf("/api/v1/creators/%s/tiers/%s", creator, tier)
	good := map[string]any{"name": "Gold", "level": 3, "price_stroops": 150_000_000, "asset": "USDC", "permissions": []string{"early_access"}}

	r := e.do(http.MethodPut, path, svc, good)
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	body := r.JSON(t)
	require.Equal(t, "15.0000000", body["price"])
	require.EqualValues(t, 30, body["period_days"])
	good["price_stroops"] = 160_000_000
	require.Equal(t, http.StatusOK, e.do(http.MethodPut, path, svc, good).Code)

	bad := map[string]struct {
		change map[string]any
		status int
		code   string
	}{
		"negative price":    {map[string]any{"price_stroops": -1}, 400, "invalid_amount"},
		"zero price":        {map[string]any{"price_stroops": 0}, 400, "invalid_amount"},
		"fractional price":  {map[string]any{"price_stroops": 1.5}, 400, "wrong_type"},
		"unsupported asset": {map[string]any{"asset": "BTC"}, 400, "unsupported_asset"},
		"level 0":           {map[string]any{"level": 0}, 400, "invalid_level"},
		"bad permission":    {map[string]any{"permissions": []string{"Bad Perm"}}, 400, "invalid_permissions"},
		"period 0":          {map[string]any{"period_days": 0}, 400, "invalid_period"},
	}
	for name, c := range bad {
		b := map[string]any{}
		for k, v := range good {
			b[k] = v
		}
		for k, v := range c.change {
			b[k] = v
		}
		id := uuid.New()
		r := e.do(http.MethodPut, fmt.Sprintf("/api/v1/creators/%s/tiers/%s", creator, id), svc, b)
		require.Equal(t, c.status, r.Code, name)
		require.Equal(t, c.code, r.ErrorCode(t), name)
		require.Zero(t, e.count(`SELECT count(*) FROM subscription_tiers WHERE id = $1`, id), name)
	}

	// Unknown creator: 404. Another creator's tier id: 409. A taken level: 409.
	r = e.do(http.MethodPut, fmt.Sprintf("/api/v1/creators/%s/tiers/%s", uuid.New(), uuid.New()), svc, good)
	require.Equal(t, http.StatusNotFound, r.Code)
	require.Equal(t, "creator_not_found", r.ErrorCode(t))
	other := e.newCreator()
	r = e.do(http.MethodPut, fmt.Sprintf("/api/v1/creators/%s/tiers/%s", other, tier), svc, good)
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, "tier_of_another_creator", r.ErrorCode(t))
	r = e.do(http.MethodPut, fmt.Sprintf("/api/v1/creators/%s/tiers/%s", creator, uuid.New()), svc, good)
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, "tier_level_taken", r.ErrorCode(t))

	// Anyone signed in reads tiers.
	r = e.do(http.MethodGet, fmt.Sprintf("/api/v1/creators/%s/tiers", creator), e.as(RoleFan).Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Len(t, r.JSON(t)["items"], 1)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, path, e.as(RoleFan).Token, nil).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/creators/"+creator.String(), e.as(RoleFan).Token, nil).Code)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/creators", e.as(RoleFan).Token, nil).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPut, path, e.as(RoleCreator).Token, good).Code)
}

func TestSubscriptionLifecycle(t *testing.T) {
	e := newEnv(t)
	svc := e.service().Token
	creator, other := e.newCreator(), e.newCreator()
	gold, otherTier := e.newTier(creator, 3), e.newTier(other, 1)
	fan := e.putUser(RoleFan, "")
	council := e.putUser(RoleCouncil, "")

	bad := map[string]struct {
		body   map[string]any
		status int
		code   string
	}{
		"unknown creator":         {map[string]any{"fan_id": fan, "creator_id": uuid.New(), "tier_id": gold}, 422, "creator_not_found"},
		"tier of another creator": {map[string]any{"fan_id": fan, "creator_id": creator, "tier_id": otherTier}, 422, "tier_of_another_creator"},
		"unknown tier":            {map[string]any{"fan_id": fan, "creator_id": creator, "tier_id": uuid.New()}, 422, "tier_not_found"},
		"unknown fan":             {map[string]any{"fan_id": uuid.New(), "creator_id": creator, "tier_id": gold}, 422, "fan_not_found"},
		"not a fan":               {map[string]any{"fan_id": council, "creator_id": creator, "tier_id": gold}, 422, "not_a_fan"},
		"missing tier":            {map[string]any{"fan_id": fan, "creator_id": creator}, 400, "missing_field"},
		"bad uuid":                {map[string]any{"fan_id": "x", "creator_id": creator, "tier_id": gold}, 400, "invalid_id"},
		"future start":            {map[string]any{"fan_id": fan, "creator_id": creator, "tier_id": gold, "started_at": time.Now().Add(time.Hour)}, 400, "invalid_time"},
		"bad time":                {map[string]any{"fan_id": fan, "creator_id": creator, "tier_id": gold, "started_at": "yesterday"}, 400, "wrong_type"},
	}
	for name, c := range bad {
		r := e.do(http.MethodPost, "/api/v1/subscriptions", svc, c.body)
		require.Equal(t, c.status, r.Code, "%s: %s", name, r.Body)
		require.Equal(t, c.code, r.ErrorCode(t), name)
	}
	require.Zero(t, e.count(`SELECT count(*) FROM subscriptions`))

	sub := e.subscribe(fan, creator, gold)
	r := e.do(http.MethodPost, "/api/v1/subscriptions", svc, map[string]any{"fan_id": fan, "creator_id": creator, "tier_id": gold})
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, "subscription_exists", r.ErrorCode(t))

	got := e.do(http.MethodGet, "/api/v1/subscriptions/"+sub.String(), e.token(fan, RoleFan), nil).JSON(t)
	require.Equal(t, true, got["active"])
	require.EqualValues(t, 3, got["tier_level"])
	end1, _ := time.Parse(time.RFC3339Nano, got["current_period_end"].(string))

	// Renew: one more period from the old end.
	r = e.do(http.MethodPost, "/api/v1/subscriptions/"+sub.String()+"/renew", svc, nil)
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	end2, _ := time.Parse(time.RFC3339Nano, r.JSON(t)["current_period_end"].(string))
	require.Equal(t, 30*24*time.Hour, end2.Sub(end1))

	// Reads: the fan, the creator and the back office; anyone else 404.
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/subscriptions/"+sub.String(), e.token(creator, RoleCreator), nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/subscriptions/"+sub.String(), e.as(RoleFan).Token, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/subscriptions/"+sub.String(), e.token(other, RoleCreator), nil).Code)
	list := e.do(http.MethodGet, "/api/v1/subscriptions", e.token(fan, RoleFan), nil).JSON(t)
	require.Len(t, list["items"], 1)
	list = e.do(http.MethodGet, "/api/v1/subscriptions?fan_id="+fan.String(), e.token(other, RoleCreator), nil).JSON(t)
	require.Len(t, list["items"], 0, "a creator only lists their own subscribers")

	// Another fan cannot cancel it; the fan can, twice without harm; then no renewal.
	require.Equal(t, http.StatusNotFound, e.do(http.MethodPost, "/api/v1/subscriptions/"+sub.String()+"/cancel", e.as(RoleFan).Token, nil).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPost, "/api/v1/subscriptions/"+sub.String()+"/cancel", e.token(creator, RoleCreator), nil).Code)
	for range 2 {
		r = e.do(http.MethodPost, "/api/v1/subscriptions/"+sub.String()+"/cancel", e.token(fan, RoleFan), nil)
		require.Equal(t, http.StatusOK, r.Code)
		require.Equal(t, "cancelled", r.JSON(t)["status"])
		require.Equal(t, false, r.JSON(t)["active"])
	}
	r = e.do(http.MethodPost, "/api/v1/subscriptions/"+sub.String()+"/renew", svc, nil)
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, "subscription_cancelled", r.ErrorCode(t))

	// After a cancellation the fan may subscribe again.
	e.subscribe(fan, creator, gold)
}

// TestActiveNowAtThePeriodBoundary: a subscription opens things strictly before its
// current_period_end and not at or after it, whatever its status says; renewing a lapsed one
// starts the new period now.
func TestActiveNowAtThePeriodBoundary(t *testing.T) {
	e := newEnv(t)
	creator := e.newCreator()
	tier := e.newTier(creator, 3)
	fan := e.putUser(RoleFan, "")
	start := time.Now().Add(-40 * 24 * time.Hour).UTC().Truncate(time.Second)
	r := e.do(http.MethodPost, "/api/v1/subscriptions", e.service().Token,
		map[string]any{"fan_id": fan, "creator_id": creator, "tier_id": tier, "started_at": start})
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	sub := uuid.MustParse(r.JSON(t)["id"].(string))
	end := start.Add(30 * 24 * time.Hour)

	ctx := t.Context()
	level, ok, err := db.ActiveLevel(ctx, e.pool, fan, creator, end.Add(-time.Microsecond))
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, 3, level)
	_, ok, err = db.ActiveLevel(ctx, e.pool, fan, creator, end)
	require.NoError(t, err)
	require.False(t, ok, "the period's end is no longer in the period")

	// Ten days after the end, the status column still says active, and nothing is open.
	require.Equal(t, "active", e.do(http.MethodGet, "/api/v1/subscriptions/"+sub.String(), e.service().Token, nil).JSON(t)["status"])
	require.Equal(t, false, e.do(http.MethodGet, "/api/v1/subscriptions/"+sub.String(), e.service().Token, nil).JSON(t)["active"])

	// Renewing the lapsed subscription runs a new period from now.
	now := e.clock.Now()
	r = e.do(http.MethodPost, "/api/v1/subscriptions/"+sub.String()+"/renew", e.service().Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	newEnd, _ := time.Parse(time.RFC3339Nano, r.JSON(t)["current_period_end"].(string))
	require.WithinDuration(t, now.Add(30*24*time.Hour), newEnd, time.Millisecond)
	require.Equal(t, true, r.JSON(t)["active"])
}

func TestRevenueEventsAreIdempotent(t *testing.T) {
	e := newEnv(t)
	svc := e.service().Token
	creator := e.newCreator()
	tier := e.newTier(creator, 1)
	fan := e.putUser(RoleFan, "")
	sub := e.subscribe(fan, creator, tier)
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	ev := map[string]any{"external_id": "tx-1", "creator_id": creator, "subscription_id": sub, "kind": "subscription_payment",
		"amount_stroops": 50_000_000, "asset": "USDC", "occurred_at": at}

	r := e.do(http.MethodPost, "/api/v1/revenue-events", svc, ev)
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	require.Equal(t, fan.String(), r.JSON(t)["fan_id"], "the fan comes from the subscription")
	require.Equal(t, "5.0000000", r.JSON(t)["amount"])
	r = e.do(http.MethodPost, "/api/v1/revenue-events", svc, ev)
	require.Equal(t, http.StatusOK, r.Code, "importing the same payment again changes nothing")
	require.Equal(t, 1, e.count(`SELECT count(*) FROM revenue_events`))

	changed := map[string]any{}
	for k, v := range ev {
		changed[k] = v
	}
	changed["amount_stroops"] = 60_000_000
	r = e.do(http.MethodPost, "/api/v1/revenue-events", svc, changed)
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, "external_id_reused", r.ErrorCode(t))

	bad := map[string]struct {
		change map[string]any
		status int
		code   string
	}{
		"negative amount":    {map[string]any{"amount_stroops": -5}, 400, "invalid_amount"},
		"unsupported asset":  {map[string]any{"asset": "EURC"}, 400, "unsupported_asset"},
		"unknown creator":    {map[string]any{"creator_id": uuid.New()}, 422, "creator_not_found"},
		"payment no sub":     {map[string]any{"subscription_id": nil}, 400, "missing_field"},
		"other creator's":    {map[string]any{"creator_id": e.newCreator()}, 422, "subscription_of_another_creator"},
		"wrong fan":          {map[string]any{"fan_id": e.putUser(RoleFan, "")}, 422, "fan_mismatch"},
		"unknown kind":       {map[string]any{"kind": "refund"}, 400, "invalid_kind"},
		"future":             {map[string]any{"occurred_at": time.Now().Add(time.Hour)}, 400, "invalid_time"},
		"no time":            {map[string]any{"occurred_at": nil}, 400, "missing_field"},
		"huge amount":        {map[string]any{"amount_stroops": "9223372036854775808"}, 400, "wrong_type"},
		"empty external id":  {map[string]any{"external_id": ""}, 400, "invalid_external_id"},
		"unknown subscriber": {map[string]any{"subscription_id": uuid.New()}, 422, "subscription_not_found"},
	}
	for name, c := range bad {
		b := map[string]any{}
		for k, v := range ev {
			b[k] = v
		}
		b["external_id"] = "tx-" + name
		for k, v := range c.change {
			b[k] = v
		}
		r := e.do(http.MethodPost, "/api/v1/revenue-events", svc, b)
		require.Equal(t, c.status, r.Code, "%s: %s", name, r.Body)
		require.Equal(t, c.code, r.ErrorCode(t), name)
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM revenue_events`))
}

func TestRevenueBatchIsAllOrNothing(t *testing.T) {
	e := newEnv(t)
	svc := e.service().Token
	creator := e.newCreator()
	at := time.Now().Add(-time.Hour).UTC()
	tip := func(i int) map[string]any {
		return map[string]any{"external_id": fmt.Sprintf("tip-%d", i), "creator_id": creator, "kind": "tip",
			"amount_stroops": 10_000_000 + i, "asset": "XLM", "occurred_at": at}
	}
	events := []any{}
	for i := range 10 {
		events = append(events, tip(i))
	}
	// One bad event (an unknown creator) fails the whole batch.
	broken := tip(10)
	broken["creator_id"] = uuid.New()
	r := e.do(http.MethodPost, "/api/v1/revenue-events/batch", svc, map[string]any{"events": append(append([]any{}, events...), broken)})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code)
	require.Contains(t, r.JSON(t)["error"].(map[string]any)["message"], "event 10")
	require.Zero(t, e.count(`SELECT count(*) FROM revenue_events`))

	r = e.do(http.MethodPost, "/api/v1/revenue-events/batch", svc, map[string]any{"events": events})
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	require.EqualValues(t, 10, r.JSON(t)["created"])

	// Importing the same file again creates nothing.
	r = e.do(http.MethodPost, "/api/v1/revenue-events/batch", svc, map[string]any{"events": events})
	require.Equal(t, http.StatusOK, r.Code)
	require.EqualValues(t, 0, r.JSON(t)["created"])
	require.EqualValues(t, 10, r.JSON(t)["existing"])
	require.Equal(t, 10, e.count(`SELECT count(*) FROM revenue_events`))

	dup := []any{tip(1), tip(1)}
	r = e.do(http.MethodPost, "/api/v1/revenue-events/batch", svc, map[string]any{"events": dup})
	require.Equal(t, http.StatusBadRequest, r.Code)
	require.Equal(t, "duplicate_external_id", r.ErrorCode(t))
	r = e.do(http.MethodPost, "/api/v1/revenue-events/batch", svc, map[string]any{"events": []any{}})
	require.Equal(t, http.StatusBadRequest, r.Code)

	// Reads: the creator sees their own, not others'; fans see none.
	creatorTok := e.token(creator, RoleCreator)
	list := e.do(http.MethodGet, "/api/v1/revenue-events?limit=3", creatorTok, nil).JSON(t)
	require.Len(t, list["items"], 3)
	require.NotNil(t, list["next_cursor"])
	first := list["items"].([]any)[0].(map[string]any)["id"].(string)
	require.Equal(t, http.StatusOK, e.do(http.MethodGet, "/api/v1/revenue-events/"+first, creatorTok, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/revenue-events/"+first, e.as(RoleCreator).Token, nil).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/api/v1/revenue-events", e.as(RoleFan).Token, nil).Code)
	other := e.do(http.MethodGet, "/api/v1/revenue-events", e.as(RoleCreator).Token, nil).JSON(t)
	require.Len(t, other["items"], 0)
}
