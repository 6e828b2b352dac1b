package api

import "github.com/gin-gonic/gin"

// registerTreasury adds the endpoints of the insurance treasury and bailouts.
func (s *Server) registerTreasury(g *gin.RouterGroup) { _ = g }
