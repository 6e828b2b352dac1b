package api

import (
	"bytes"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/demo"
	"github.com/creatorvault/orchestrator/forecast"
)

// analyticsEnv is the API on a fresh database seeded with the demo dataset, the clock on the
// day after its history ends.
func analyticsEnv(t *testing.T) (*env, *demo.Dataset) {
	t.Helper()
	e := newEnv(t)
	anchor := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	d, err := demo.Seed(t.Context(), e.pool, anchor)
	require.NoError(t, err)
	e.clock.Set(anchor.Add(9 * time.Hour))
	return e, d
}

// xlmTips records a tip in XLM to creator on each of the days days before the clock's day.
func xlmTips(t *testing.T, e *env, creator uuid.UUID, days int) {
	t.Helper()
	var evs []db.RevenueEventInput
	today := db.Day(e.clock.Now())
	for i := 1; i <= days; i++ {
		evs = append(evs, db.RevenueEventInput{ExternalID: fmt.Sprintf("xlm-tip-%s-%d", creator, i), CreatorID: creator,
			Kind: db.KindTip, AmountStroops: int64(200+i%9*10) * 1_0000000, Asset: "XLM", OccurredAt: today.AddDate(0, 0, -i).Add(time.Hour)})
	}
	_, err := db.RecordRevenueEvents(t.Context(), e.pool, evs)
	require.NoError(t, err)
}

func TestPredictRevenue(t *testing.T) {
	e, d := analyticsEnv(t)
	creator := d.Creators[0].ID // sells in USDC; here also tipped in XLM
	xlmTips(t, e, creator, 120)
	tok := e.token(creator, RoleCreator)

	r := e.do("POST", "/api/v1/predict/revenue", tok, map[string]any{"creator_id": creator})
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	m := r.JSON(t)
	require.Equal(t, []string{"creator_id", "forecasts"}, keysOf(m))
	require.Equal(t, creator.String(), m["creator_id"])
	blocks := m["forecasts"].([]any)
	require.Len(t, blocks, 2, "one block per asset")
	for k, asset := range []string{"USDC", "XLM"} {
		b := blocks[k].(map[string]any)
		require.Equal(t, []string{"as_of", "asset", "created_at", "factors", "history_days", "model_version", "paths", "predictions"}, keysOf(b))
		require.Equal(t, asset, b["asset"])
		require.Equal(t, forecast.ModelVersion, b["model_version"])
		f := b["factors"].(map[string]any)
		require.Equal(t, []string{"base_revenue_stroops", "churn_rate", "growth_rate", "growth_std_error", "stream_count", "volatility", "volatility_df"}, keysOf(f))
		preds := b["predictions"].([]any)
		require.Len(t, preds, 3)
		for i, p := range preds {
			p := p.(map[string]any)
			require.Equal(t, []string{"confidence_interval", "period_days", "predicted_revenue_stroops"}, keysOf(p))
			require.EqualValues(t, 30*(i+1), p["period_days"])
			ci := p["confidence_interval"].(map[string]any)
			require.Equal(t, []string{"confidence_level", "lower_bound_stroops", "upper_bound_stroops"}, keysOf(ci))
			require.EqualValues(t, 0.95, ci["confidence_level"])
			require.LessOrEqual(t, ci["lower_bound_stroops"].(float64), p["predicted_revenue_stroops"].(float64))
			require.LessOrEqual(t, p["predicted_revenue_stroops"].(float64), ci["upper_bound_stroops"].(float64))
			require.Greater(t, p["predicted_revenue_stroops"].(float64), 0.0)
		}
	}
	// XLM is in XLM's stroops: its base is the tips of the last 30 days, nothing of USDC.
	var tips int64
	for i := 1; i <= 30; i++ {
		tips += int64(200+i%9*10) * 1_0000000
	}
	xlm := blocks[1].(map[string]any)["factors"].(map[string]any)
	require.EqualValues(t, tips, xlm["base_revenue_stroops"])
	require.EqualValues(t, 0, xlm["stream_count"])
	require.Greater(t, blocks[0].(map[string]any)["factors"].(map[string]any)["stream_count"].(float64), 0.0)
	require.Equal(t, 2, e.count(`SELECT count(*) FROM forecasts WHERE creator_id = $1`, creator))

	// The same day again gives the same numbers (seeded from creator, asset and as-of date).
	again := e.do("POST", "/api/v1/predict/revenue", e.token(d.Admin, RoleAdmin), map[string]any{"creator_id": creator})
	require.Equal(t, http.StatusOK, again.Code)
	require.JSONEq(t, string(r.Body), string(again.Body))
	require.Equal(t, 2, e.count(`SELECT count(*) FROM forecasts WHERE creator_id = $1`, creator))

	// The stored forecasts read back.
	got := e.do("GET", "/api/v1/analytics/"+creator.String()+"/forecast", tok, nil)
	require.Equal(t, http.StatusOK, got.Code, "%s", got.Body)
	gm := got.JSON(t)
	require.Len(t, gm["forecasts"], 2)
	for k := range 2 {
		want, have := blocks[k].(map[string]any), gm["forecasts"].([]any)[k].(map[string]any)
		require.Equal(t, "2026-10-01", have["as_of"])
		require.Equal(t, want["predictions"], have["predictions"])
		require.Equal(t, want["factors"], have["factors"])
	}
}

// TestPredictRevenueSkipsAnAssetWithTooLittleHistory: revenue in XLM for a single day next to
// a USDC history: the USDC forecast is answered, XLM is listed as skipped with its reason.
func TestPredictRevenueSkipsAnAssetWithTooLittleHistory(t *testing.T) {
	e, d := analyticsEnv(t)
	creator := d.Creators[1].ID
	xlmTips(t, e, creator, 1)
	r := e.do("POST", "/api/v1/predict/revenue", e.token(creator, RoleCreator), map[string]any{"creator_id": creator})
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	m := r.JSON(t)
	require.Len(t, m["forecasts"], 1)
	require.Equal(t, "USDC", m["forecasts"].([]any)[0].(map[string]any)["asset"])
	skipped := m["skipped"].([]any)
	require.Len(t, skipped, 1)
	sk := skipped[0].(map[string]any)
	require.Equal(t, "XLM", sk["asset"])
	require.Equal(t, "insufficient_history", sk["code"])
	require.NotContains(t, string(r.Body), "NaN")
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestPredictRevenueRejects(t *testing.T) {
	e, d := analyticsEnv(t)
	creator := d.Creators[0].ID
	path := "/api/v1/predict/revenue"
	admin := e.token(d.Admin, RoleAdmin)
	cases := []struct {
		name   string
		token  string
		body   any
		status int
		code   string
	}{
		{"no token", "", map[string]any{"creator_id": creator}, 401, "unauthenticated"},
		{"fan", e.token(d.GoldFan, RoleFan), map[string]any{"creator_id": creator}, 403, "forbidden"},
		{"council", e.token(d.Council[0], RoleCouncil), map[string]any{"creator_id": creator}, 403, "forbidden"},
		{"service", e.token(d.Service, RoleService), map[string]any{"creator_id": creator}, 403, "forbidden"},
		{"another creator", e.token(d.Creators[1].ID, RoleCreator), map[string]any{"creator_id": creator}, 404, "not_found"},
		{"missing id", admin, map[string]any{}, 400, "missing_field"},
		{"bad id", admin, map[string]any{"creator_id": "nope"}, 400, "invalid_id"},
		{"unknown field", admin, map[string]any{"creator_id": creator, "x": 1}, 400, ""},
		{"unknown creator", admin, map[string]any{"creator_id": d.GoldFan}, 404, "creator_not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", path, tc.token, tc.body)
			require.Equal(t, tc.status, r.Code, "%s", r.Body)
			code := r.ErrorCode(t)
			if tc.code != "" {
				require.Equal(t, tc.code, code)
			}
		})
	}
	require.Zero(t, e.count(`SELECT count(*) FROM forecasts`))

	// A creator whose only revenue is a single day: 422, nothing stored.
	single := d.Creators[2].ID
	_, err := e.pool.Exec(t.Context(), `DELETE FROM revenue_events WHERE creator_id = $1 AND occurred_at < $2`, single, db.Day(e.clock.Now()).AddDate(0, 0, -1))
	require.NoError(t, err)
	require.Positive(t, e.count(`SELECT count(*) FROM revenue_events WHERE creator_id = $1`, single))
	r := e.do("POST", path, e.token(single, RoleCreator), map[string]any{"creator_id": single})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code, "%s", r.Body)
	require.Equal(t, "insufficient_history", r.ErrorCode(t))
	require.Zero(t, e.count(`SELECT count(*) FROM forecasts`))

	// A creator without history (all zero): 422, nothing stored.
	fresh := uuid.New()
	r = e.do("PUT", "/api/v1/users/"+fresh.String(), admin, map[string]any{"role": "creator", "display_name": "New", "handle": "brand_new"})
	require.Equal(t, http.StatusCreated, r.Code, "%s", r.Body)
	r = e.do("POST", path, e.token(fresh, RoleCreator), map[string]any{"creator_id": fresh})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code, "%s", r.Body)
	require.Equal(t, "insufficient_history", r.ErrorCode(t))
	require.Zero(t, e.count(`SELECT count(*) FROM forecasts`))
}

func TestPredictRevenueRateLimit(t *testing.T) {
	e, d := analyticsEnv(t)
	creator := d.Creators[1].ID
	tok := e.token(creator, RoleCreator)
	for i := range 10 {
		r := e.do("POST", "/api/v1/predict/revenue", tok, map[string]any{"creator_id": creator})
		require.Equal(t, http.StatusOK, r.Code, "request %d: %s", i, r.Body)
	}
	r := e.do("POST", "/api/v1/predict/revenue", e.token(d.Admin, RoleAdmin), map[string]any{"creator_id": creator})
	require.Equal(t, http.StatusTooManyRequests, r.Code)
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	require.Equal(t, "rate_limited", r.ErrorCode(t))
	// Another creator is not limited.
	other := d.Creators[2].ID
	r = e.do("POST", "/api/v1/predict/revenue", e.token(other, RoleCreator), map[string]any{"creator_id": other})
	require.Equal(t, http.StatusOK, r.Code)
	// An hour later it is allowed again.
	e.clock.Set(e.clock.Now().Add(2 * time.Hour))
	r = e.do("POST", "/api/v1/predict/revenue", tok, map[string]any{"creator_id": creator})
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
}

func TestCreatorStreamsEndpoint(t *testing.T) {
	e, d := analyticsEnv(t)
	creator := d.Creators[0].ID
	tok := e.token(creator, RoleCreator)
	r := e.do("GET", "/api/v1/analytics/"+creator.String()+"/streams?limit=5", tok, nil)
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	m := r.JSON(t)
	require.Equal(t, []string{"assets", "creator_id", "items", "next_cursor"}, keysOf(m))
	assets := m["assets"].([]any)
	require.Len(t, assets, 1)
	a := assets[0].(map[string]any)
	require.Equal(t, "USDC", a["asset"])
	require.Greater(t, a["active_streams"].(float64), 0.0)
	require.GreaterOrEqual(t, a["total_streams"].(float64), a["active_streams"].(float64)+a["cancellations_total"].(float64))
	require.Greater(t, a["tip_revenue_stroops"].(float64), 0.0)
	require.Greater(t, a["revenue_stroops"].(float64), a["tip_revenue_stroops"].(float64))
	require.Len(t, m["items"].([]any), 5)
	require.NotNil(t, m["next_cursor"])
	next := e.do("GET", "/api/v1/analytics/"+creator.String()+"/streams?limit=5&after="+m["next_cursor"].(string), tok, nil)
	require.Equal(t, http.StatusOK, next.Code)
	require.NotEqual(t, m["items"], next.JSON(t)["items"])

	require.Equal(t, 404, e.do("GET", "/api/v1/analytics/"+creator.String()+"/streams", e.token(d.Creators[1].ID, RoleCreator), nil).Code)
	require.Equal(t, 403, e.do("GET", "/api/v1/analytics/"+creator.String()+"/streams", e.token(d.GoldFan, RoleFan), nil).Code)
	require.Equal(t, 400, e.do("GET", "/api/v1/analytics/nope/streams", tok, nil).Code)
	require.Equal(t, 404, e.do("GET", "/api/v1/analytics/"+d.GoldFan.String()+"/streams", e.token(d.Admin, RoleAdmin), nil).Code)
}

func TestForecastChart(t *testing.T) {
	e, d := analyticsEnv(t)
	creator := d.Creators[2].ID
	tok := e.token(creator, RoleCreator)
	require.Equal(t, 404, e.do("GET", "/api/v1/analytics/"+creator.String()+"/forecast", tok, nil).Code)
	require.Equal(t, 200, e.do("POST", "/api/v1/predict/revenue", tok, map[string]any{"creator_id": creator}).Code)

	for _, get := range []func() *httptest.ResponseRecorder{
		func() *httptest.ResponseRecorder {
			req := httptest.NewRequest("GET", "/api/v1/analytics/"+creator.String()+"/forecast", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Accept", "image/png")
			w := httptest.NewRecorder()
			e.router.ServeHTTP(w, req)
			return w
		},
		func() *httptest.ResponseRecorder {
			req := httptest.NewRequest("GET", "/api/v1/analytics/"+creator.String()+"/forecast.png", nil)
			req.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			e.router.ServeHTTP(w, req)
			return w
		},
	} {
		w := get()
		require.Equal(t, http.StatusOK, w.Code, "%s", w.Body.String())
		require.Equal(t, "image/png", w.Header().Get("Content-Type"))
		img, err := png.Decode(bytes.NewReader(w.Body.Bytes()))
		require.NoError(t, err)
		require.Greater(t, img.Bounds().Dx(), 100)
	}
	require.Equal(t, 404, e.do("GET", "/api/v1/analytics/"+creator.String()+"/forecast.png", e.token(d.Creators[0].ID, RoleCreator), nil).Code)
	// Per asset: this creator sells in XLM; a USDC chart does not exist, EURC is not supported.
	require.Equal(t, 200, e.do("GET", "/api/v1/analytics/"+creator.String()+"/forecast.png?asset=XLM", tok, nil).Code)
	r := e.do("GET", "/api/v1/analytics/"+creator.String()+"/forecast.png?asset=USDC", tok, nil)
	require.Equal(t, 404, r.Code)
	require.Equal(t, "forecast_not_found", r.ErrorCode(t))
	r = e.do("GET", "/api/v1/analytics/"+creator.String()+"/forecast.png?asset=EURC", tok, nil)
	require.Equal(t, 422, r.Code)
	require.Equal(t, "unsupported_asset", r.ErrorCode(t))
}
