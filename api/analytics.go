package api

import (
	"bytes"
	"image/color"
	"net/http"
	"slices"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/forecast"
)

// predictLimit is how many on-demand forecasts a creator may get per hour.
var predictLimit = db.Limit{Max: 10, Window: time.Hour}

// registerAnalytics adds the endpoints of revenue forecasts and analytics. Only the creator
// themself and admins read a creator's analytics (the rule); other roles get 403,
// another creator 404. Machines refresh forecasts through the workflow, not this API.
func (s *Server) registerAnalytics(g *gin.RouterGroup) {
	readers := requireRole(RoleCreator, RoleAdmin)
	g.POST("/predict/revenue", readers, s.predictRevenue)
	g.GET("/analytics/:creator_id/streams", readers, s.creatorStreams)
	g.GET("/analytics/:creator_id/forecast", readers, s.latestForecast)
	g.GET("/analytics/:creator_id/forecast.png", readers, s.latestForecastPNG)
}

// mayReadAnalytics answers 404 to a creator asking about another creator.
func mayReadAnalytics(c *gin.Context, creator uuid.UUID) bool {
	p := principal(c)
	if p.Role == RoleAdmin || (p.Role == RoleCreator && p.UserID == creator) {
		return true
	}
	notFound(c, "creator")
	return false
}

type predictRequest struct {
	CreatorID string `json:"creator_id"`
}

type confidenceIntervalJSON struct {
	LowerBound      int64   `json:"lower_bound_stroops"`
	UpperBound      int64   `json:"upper_bound_stroops"`
	ConfidenceLevel float64 `json:"confidence_level"`
}

type factorsJSON struct {
	BaseRevenue    int64   `json:"base_revenue_stroops"`
	ChurnRate      float64 `json:"churn_rate"`
	GrowthRate     float64 `json:"growth_rate"`
	GrowthStdError float64 `json:"growth_std_error"`
	Volatility     float64 `json:"volatility"`
	VolatilityDF   float64 `json:"volatility_df"`
	StreamCount    int     `json:"stream_count"`
}

type predictionJSON struct {
	PeriodDays         int                    `json:"period_days"`
	PredictedRevenue   int64                  `json:"predicted_revenue_stroops"`
	ConfidenceInterval confidenceIntervalJSON `json:"confidence_interval"`
}

// assetForecastJSON is one asset's forecast: every amount in that asset's stroops.
type assetForecastJSON struct {
	Asset        string           `json:"asset"`
	AsOf         string           `json:"as_of"`
	ModelVersion string           `json:"model_version"`
	Paths        int              `json:"paths"`
	HistoryDays  int              `json:"history_days"`
	CreatedAt    time.Time        `json:"created_at"`
	Factors      factorsJSON      `json:"factors"`
	Predictions  []predictionJSON `json:"predictions"`
}

type skippedAssetJSON struct {
	Asset   string `json:"asset"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type forecastsResponse struct {
	CreatorID uuid.UUID           `json:"creator_id"`
	Forecasts []assetForecastJSON `json:"forecasts"`
	// Skipped lists the assets the creator earned in that could not be forecast (on demand
	// only).
	Skipped []skippedAssetJSON `json:"skipped,omitempty"`
}

func toForecastJSON(f db.Forecast) assetForecastJSON {
	out := assetForecastJSON{Asset: f.Asset, AsOf: f.AsOf.UTC().Format(time.DateOnly), ModelVersion: f.ModelVersion,
		Paths: f.Paths, HistoryDays: f.HistoryDays, CreatedAt: utc(f.CreatedAt),
		Factors: factorsJSON{BaseRevenue: f.BaseRevenue, ChurnRate: f.ChurnRate, GrowthRate: f.GrowthRate,
			GrowthStdError: f.GrowthStdError, Volatility: f.Volatility, VolatilityDF: f.VolatilityDF, StreamCount: f.StreamCount},
		Predictions: make([]predictionJSON, len(f.Predictions))}
	for i, p := range f.Predictions {
		out.Predictions[i] = predictionJSON{PeriodDays: p.PeriodDays, PredictedRevenue: p.Predicted,
			ConfidenceInterval: confidenceIntervalJSON{LowerBound: p.Lower, UpperBound: p.Upper, ConfidenceLevel: f.ConfidenceLevel}}
	}
	return out
}

func toForecastsResponse(creator uuid.UUID, fs []db.Forecast) forecastsResponse {
	out := forecastsResponse{CreatorID: creator, Forecasts: make([]assetForecastJSON, len(fs))}
	for i, f := range fs {
		out.Forecasts[i] = toForecastJSON(f)
	}
	return out
}

// predictRevenue forecasts a creator from their history up to yesterday, one forecast per
// asset they earned in, with the pure engine; stores the forecasts and answers them. A
// creator none of whose assets can be forecast gets a 422.
func (s *Server) predictRevenue(c *gin.Context) {
	var req predictRequest
	if !decodeJSON(c, &req) {
		return
	}
	creator, ok := fieldUUID(c, "creator_id", req.CreatorID)
	if !ok || !mayReadAnalytics(c, creator) {
		return
	}
	if _, err := db.GetCreator(c, s.pool, creator); err != nil {
		s.respondErr(c, err)
		return
	}
	if !s.allow(c, "forecast.predict:"+creator.String(), predictLimit, "revenue predictions for a creator") {
		return
	}
	now := s.now()
	hs, err := db.CreatorHistories(c, s.pool, []uuid.UUID{creator}, now, forecast.HistoryDays)
	if err != nil {
		s.internalError(c, err)
		return
	}
	fs, refused, err := db.ForecastHistory(hs[0], now, s.cfg.Forecast.Paths)
	if err != nil {
		s.internalError(c, err)
		return
	}
	if len(fs) == 0 {
		s.respondErr(c, db.RefusalError(refused))
		return
	}
	if err := db.UpsertForecasts(c, s.pool, fs, now); err != nil {
		s.respondErr(c, err)
		return
	}
	for i := range fs {
		fs[i].CreatedAt = now
	}
	res := toForecastsResponse(creator, fs)
	for _, r := range refused {
		e, _ := db.AsError(db.RefusalError([]db.Refusal{r}))
		res.Skipped = append(res.Skipped, skippedAssetJSON{Asset: r.Asset, Code: e.Code, Message: r.Err.Error()})
	}
	c.JSON(http.StatusOK, res)
}

type streamJSON struct {
	ID             uuid.UUID  `json:"id"`
	FanID          uuid.UUID  `json:"fan_id"`
	TierLevel      int        `json:"tier_level"`
	PriceStroops   int64      `json:"price_stroops"`
	Asset          string     `json:"asset"`
	Status         string     `json:"status"`
	StartedAt      time.Time  `json:"started_at"`
	CancelledAt    *time.Time `json:"cancelled_at"`
	EndsAt         time.Time  `json:"ends_at"`
	RevenueStroops int64      `json:"revenue_stroops"`
}

// assetStreamsJSON is a creator's streams and revenue in one asset, in its stroops.
type assetStreamsJSON struct {
	Asset              string `json:"asset"`
	ActiveStreams      int    `json:"active_streams"`
	Cancellations30d   int    `json:"cancellations_30d"`
	CancellationsTotal int    `json:"cancellations_total"`
	TotalStreams       int    `json:"total_streams"`
	RevenueStroops     int64  `json:"revenue_stroops"`
	TipRevenueStroops  int64  `json:"tip_revenue_stroops"`
}

type streamsResponse struct {
	CreatorID  uuid.UUID          `json:"creator_id"`
	Assets     []assetStreamsJSON `json:"assets"`
	Items      []streamJSON       `json:"items"`
	NextCursor *string            `json:"next_cursor"`
}

// creatorStreams answers the creator's streams, cancellations and revenue per asset, and a
// page of the streams.
func (s *Server) creatorStreams(c *gin.Context) {
	creator, ok := pathUUID(c, "creator_id")
	if !ok || !mayReadAnalytics(c, creator) {
		return
	}
	page, ok := pageParams(c)
	if !ok {
		return
	}
	sums, streams, next, err := db.CreatorStreams(c, s.pool, creator, s.now(), page)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	l := mapList(streams, next, func(st db.Stream) streamJSON {
		return streamJSON{ID: st.ID, FanID: st.FanID, TierLevel: st.Level, PriceStroops: st.PriceStroops, Asset: st.Asset,
			Status: st.Status, StartedAt: utc(st.StartedAt), CancelledAt: utcPtr(st.CancelledAt), EndsAt: utc(st.EndsAt),
			RevenueStroops: st.RevenueStroops}
	})
	assets := make([]assetStreamsJSON, len(sums))
	for i, a := range sums {
		assets[i] = assetStreamsJSON{Asset: a.Asset, ActiveStreams: a.Active, Cancellations30d: a.Cancellations30d,
			CancellationsTotal: a.CancellationsTotal, TotalStreams: a.Total, RevenueStroops: a.RevenueStroops,
			TipRevenueStroops: a.TipStroops}
	}
	c.JSON(http.StatusOK, streamsResponse{CreatorID: creator, Assets: assets, Items: l.Items, NextCursor: l.NextCursor})
}

// latestForecast answers the latest stored forecasts, one per asset, as JSON or, for Accept:
// image/png, as a fan chart of one asset.
func (s *Server) latestForecast(c *gin.Context) {
	if c.NegotiateFormat(gin.MIMEJSON, "image/png") == "image/png" {
		s.latestForecastPNG(c)
		return
	}
	creator, ok := pathUUID(c, "creator_id")
	if !ok || !mayReadAnalytics(c, creator) {
		return
	}
	fs, err := db.LatestForecasts(c, s.pool, creator)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, toForecastsResponse(creator, fs))
}

// latestForecastPNG draws the latest stored forecast in one asset (?asset=, default the first
// the creator has a forecast in) as a fan chart.
func (s *Server) latestForecastPNG(c *gin.Context) {
	creator, ok := pathUUID(c, "creator_id")
	if !ok || !mayReadAnalytics(c, creator) {
		return
	}
	asset := c.Query("asset")
	if asset != "" && !forecast.SupportedAsset(asset) {
		fail(c, http.StatusUnprocessableEntity, "unsupported_asset", "asset must be one of USDC, XLM")
		return
	}
	fs, err := db.LatestForecasts(c, s.pool, creator)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	f := fs[0]
	if asset != "" {
		i := slices.IndexFunc(fs, func(f db.Forecast) bool { return f.Asset == asset })
		if i < 0 {
			fail(c, http.StatusNotFound, "forecast_not_found", "there is no forecast for this creator in "+asset)
			return
		}
		f = fs[i]
	}
	hs, err := db.CreatorHistories(c, s.pool, []uuid.UUID{creator}, f.AsOf, forecast.HistoryDays)
	if err != nil {
		s.internalError(c, err)
		return
	}
	h, _ := hs[0].Asset(f.Asset)
	png, err := fanChart(h, f)
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.Data(http.StatusOK, "image/png", png)
}

// fanChart draws the 30-day revenue run rate of one asset's history and, from the as-of day,
// the forecast's median and its 95% band through the horizons. Amounts are in whole units of
// the asset (stroops / 10^7).
func fanChart(h db.AssetHistory, f db.Forecast) ([]byte, error) {
	const unit = 1e7
	rev := make([]float64, len(h.Revenue))
	for i, v := range h.Revenue {
		rev[i] = float64(v)
	}
	p := plot.New()
	p.Title.Text = f.Asset + " revenue per 30 days, forecast as of " + f.AsOf.UTC().Format(time.DateOnly)
	p.X.Label.Text = "days from the as-of date"
	p.Y.Label.Text = f.Asset + " per 30 days"
	p.Add(plotter.NewGrid())

	if rate := forecast.RunRate(rev, forecast.SmoothingDays); len(rate) > 0 {
		hist := make(plotter.XYs, len(rate))
		for i, v := range rate {
			hist[i] = plotter.XY{X: float64(i - len(rate)), Y: v / unit}
		}
		line, err := plotter.NewLine(hist)
		if err != nil {
			return nil, err
		}
		line.Color = color.RGBA{R: 40, G: 40, B: 40, A: 255}
		p.Add(line)
		p.Legend.Add("history", line)
	}
	base := float64(f.BaseRevenue) / unit
	mean := plotter.XYs{{X: 0, Y: base}}
	upper := plotter.XYs{{X: 0, Y: base}}
	lower := plotter.XYs{{X: 0, Y: base}}
	for _, pr := range f.Predictions {
		x := float64(pr.PeriodDays)
		mean = append(mean, plotter.XY{X: x, Y: float64(pr.Predicted) / unit})
		upper = append(upper, plotter.XY{X: x, Y: float64(pr.Upper) / unit})
		lower = append(lower, plotter.XY{X: x, Y: float64(pr.Lower) / unit})
	}
	band := append(plotter.XYs{}, upper...)
	for i := len(lower) - 1; i >= 0; i-- {
		band = append(band, lower[i])
	}
	poly, err := plotter.NewPolygon(band)
	if err != nil {
		return nil, err
	}
	poly.Color = color.RGBA{R: 70, G: 130, B: 220, A: 90}
	poly.LineStyle.Width = 0
	p.Add(poly)
	p.Legend.Add("95% interval", poly)
	ml, mp, err := plotter.NewLinePoints(mean)
	if err != nil {
		return nil, err
	}
	ml.Color, mp.Color = color.RGBA{R: 20, G: 70, B: 180, A: 255}, color.RGBA{R: 20, G: 70, B: 180, A: 255}
	p.Add(ml, mp)
	p.Legend.Add("forecast (median)", ml, mp)
	p.Legend.Top, p.Legend.Left = true, true

	w, err := p.WriterTo(8*vg.Inch, 4.5*vg.Inch, "png")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
