package api

import (
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/creatorvault/orchestrator/db"
)

// allow counts one hit of bucket against limit, shared by every API instance through
// PostgreSQL. When the limit is reached it answers 429 with Retry-After and returns false.
func (s *Server) allow(c *gin.Context, bucket string, limit db.Limit, what string) bool {
	d, err := db.TakeRateLimit(c, s.pool, bucket, limit, s.now())
	if err != nil {
		s.internalError(c, err)
		return false
	}
	if d.Allowed {
		return true
	}
	secs := int(math.Ceil(d.RetryAfter.Seconds()))
	if secs < 1 {
		secs = 1
	}
	c.Header("Retry-After", strconv.Itoa(secs))
	fail(c, http.StatusTooManyRequests, "rate_limited",
		what+": at most "+strconv.Itoa(limit.Max)+" per "+humanWindow(limit.Window)+"; retry in "+strconv.Itoa(secs)+"s")
	return false
}

func humanWindow(d time.Duration) string {
	switch d {
	case time.Minute:
		return "minute"
	case time.Hour:
		return "hour"
	default:
		return d.String()
	}
}
