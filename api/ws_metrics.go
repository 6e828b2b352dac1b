package api

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The WebSocket's metrics, served on /metrics with the rest of the process's.
var (
	wsOpenSockets = promauto.NewGauge(prometheus.GaugeOpts{
		Name: "orchestrator_ws_open_sockets",
		Help: "WebSockets open on this instance.",
	})
	wsFramesIn = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchestrator_ws_frames_in_total",
		Help: "Frames received from clients, by type (unknown for anything not a known type).",
	}, []string{"type"})
	wsFramesOut = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchestrator_ws_frames_out_total",
		Help: "Frames written to clients, by type.",
	}, []string{"type"})
	wsSendDrops = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchestrator_ws_send_buffer_drops_total",
		Help: "Frames not queued because a socket's send buffer was full, by type. A NewMessage is not lost: the socket catches up from the database.",
	}, []string{"type"})
	wsDisconnects = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "orchestrator_ws_disconnects_total",
		Help: "WebSockets closed, by reason.",
	}, []string{"reason"})
	wsDeliveryLatency = promauto.NewHistogram(prometheus.HistogramOpts{
		Name:    "orchestrator_ws_delivery_latency_seconds",
		Help:    "From a message's commit (its sent_at) to its NewMessage frame written on a recipient's socket, live deliveries only.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	wsListenerReconnects = promauto.NewCounter(prometheus.CounterOpts{
		Name: "orchestrator_ws_listener_reconnects_total",
		Help: "Times the real-time LISTEN connection was re-established after a failure.",
	})
)

// Disconnect reasons (the reason label of orchestrator_ws_disconnects_total).
const (
	reasonClient       = "client"        // the client closed or the connection broke
	reasonPingTimeout  = "ping_timeout"  // no pong or frame within PongWait
	reasonWriteFailed  = "write_failed"  // a write failed or hit WriteWait: the client stopped reading
	reasonFrameTooBig  = "frame_too_big" // a frame over MaxFrameBytes (1009)
	reasonTokenExpired = "token_expired" // the token's exp passed (4001)
	reasonShutdown     = "shutdown"      // the server is stopping (1001)
	reasonReplayFailed = "replay_failed" // the database could not serve a catch-up (1011)
	reasonRevoked      = "revoked"       // the session was revoked, the role changed or the user erased (1008)
)

func init() {
	// Every series exists from the start, so dashboards and alerts see zeros, not gaps.
	for _, t := range []string{"SendMessage", "Typing", "MarkRead", "Ping", "unknown"} {
		wsFramesIn.WithLabelValues(t)
	}
	for _, t := range []string{"NewMessage", "Ack", "Error", "Typing", "ReadReceipt", "Presence"} {
		wsFramesOut.WithLabelValues(t)
		wsSendDrops.WithLabelValues(t)
	}
	for _, r := range []string{reasonClient, reasonPingTimeout, reasonWriteFailed, reasonFrameTooBig, reasonTokenExpired, reasonShutdown, reasonReplayFailed} {
		wsDisconnects.WithLabelValues(r)
	}
}
