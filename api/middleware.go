package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

var (
	httpRequests = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchestrator_http_requests_total",
		Help: "HTTP requests by route, method and status code.",
	}, []string{"route", "method", "code"})
	httpDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "orchestrator_http_request_duration_seconds",
		Help:    "HTTP request latency by route and method.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"route", "method"})
)

// observe records every request's count and latency under its route pattern (never the
// concrete path, which would hold ids and explode the label set).
func observe() gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		if route == "" {
			route = "unmatched"
		}
		httpRequests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
		httpDuration.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
	}
}

// accessLog logs one line per request: method, route pattern (never the raw URL, whose query
// may hold a token), status, latency and client. Health probes and metrics scrapes are not
// logged.
func accessLog(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := c.FullPath()
		switch route {
		case "/health", "/ready", "/metrics":
			return
		case "":
			route = "unmatched"
		}
		status := c.Writer.Status()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		logger.LogAttrs(c.Request.Context(), level, "request",
			slog.String("method", c.Request.Method), slog.String("route", route), slog.Int("status", status),
			slog.Duration("took", time.Since(start)), slog.String("client", c.ClientIP()))
	}
}

// recoverJSON turns a handler panic into a logged 500 with the API's error body.
func recoverJSON(logger *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler {
					panic(r)
				}
				logger.Error("handler panic", "route", c.FullPath(), "panic", r)
				fail(c, http.StatusInternalServerError, "internal", "the server could not complete the request")
			}
		}()
		c.Next()
	}
}

// metricsHandler serves the process's Prometheus metrics.
func metricsHandler() http.Handler { return promhttp.Handler() }

// refuseNUL answers 400 to a request whose path or query holds a NUL character: PostgreSQL
// text cannot store one, so it would otherwise surface as a 500 wherever the value is used.
// Bodies are checked where they are decoded (DecodeStrict).
func refuseNUL() gin.HandlerFunc {
	return func(c *gin.Context) {
		if strings.IndexByte(c.Request.URL.Path, 0) >= 0 || strings.Contains(c.Request.URL.RawQuery, "%00") ||
			strings.IndexByte(c.Request.URL.RawQuery, 0) >= 0 {
			badRequest(c, "invalid_query", "the path and query must not contain NUL characters")
			return
		}
		c.Next()
	}
}
