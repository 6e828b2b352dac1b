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
//
// Failed authentications (action auth.failed) are counted per source and minute, and only the
// first db.AuthFailuresLogged of a source's minute get their own row: one client cannot write
// rows without bound.
func (s *Server) audit(c *gin.Context, p *Principal, action, target, detail string) {
	e := s.accessEntry(c, p)
	e.Action, e.Target, e.Detail = action, target, detail
	// Detached from the request: a client hanging up must not erase the record.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.Request.Context()), 5*time.Second)
	defer cancel()
	var err error
	if action == "auth.failed" {
		_, err = db.RecordAuthFailure(ctx, s.pool, e, s.now())
	} else {
		err = db.InsertAccessLog(ctx, s.pool, e)
	}
	if err != nil {
		s.logger.Error("access log write failed", "action", action, "error", err)
	}
}

// accessEntry is who (p, nil when unauthenticated) and from where, for the access log.
func (s *Server) accessEntry(c *gin.Context, p *Principal) db.AccessLogEntry {
	e := db.AccessLogEntry{IP: c.ClientIP(), UserAgent: c.Request.UserAgent()}
	if p != nil {
		e.UserID = &p.UserID
		e.Role = string(p.Role)
	}
	return e
}
