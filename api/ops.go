package api

import "github.com/gin-gonic/gin"

// registerOps adds the endpoints of backups and fire drills (admin).
func (s *Server) registerOps(g *gin.RouterGroup) { _ = g }
