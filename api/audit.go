package api

import (
	"context"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/creatorvault/orchestrator/db"
)

// audit writes a sensitive action to the access log: who (p, nil when unauthenticated), what
// (action and target), and from where. A failure to log is itself logged, not returned: the
// action has already happened.
func (s *Server) audit(c *gin.Context, p *Principal, action, target, detail string) {
	e := db.AccessLogEntry{
		Action:    action,
		Target:    target,
		Detail:    detail,
		IP:        c.ClientIP(),
		UserAgent: c.Request.UserAgent(),
	}
	if p != nil {
		e.UserID = &p.UserID
		e.Role = string(p.Role)
	}
	// Detached from the request: a client hanging up must not erase the record.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 5*time.Second)
	defer cancel()
	if err := db.InsertAccessLog(ctx, s.pool, e); err != nil {
		s.logger.Error("access log write failed", "action", action, "error", err)
	}
}
