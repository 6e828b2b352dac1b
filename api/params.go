package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/db"
)

// Paging defaults of every list.
const (
	defaultLimit = 50
	maxLimit     = 200
)

// list is the shape of every list response.
type list[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](items []T, next *db.Cursor) list[T] {
	if items == nil {
		items = []T{}
	}
	l := list[T]{Items: items}
	if next != nil {
		s := next.Encode()
		l.NextCursor = &s
	}
	return l
}

// mapList converts a page of rows into a list response.
func mapList[R, T any](rows []R, next *db.Cursor, f func(R) T) list[T] {
	items := make([]T, len(rows))
	for i, r := range rows {
		items[i] = f(r)
	}
	return newList(items, next)
}

// pathUUID parses a UUID path parameter, answering 400 when it is not one.
func pathUUID(c *gin.Context, name string) (uuid.UUID, bool) {
	id, err := uuid.Parse(c.Param(name))
	if err != nil {
		badRequest(c, "invalid_id", name+" must be a UUID")
		return uuid.Nil, false
	}
	return id, true
}

// fieldUUID parses a UUID from a JSON field, answering 400 when it is missing or not one.
func fieldUUID(c *gin.Context, name, value string) (uuid.UUID, bool) {
	if value == "" {
		badRequest(c, "missing_field", name+" is required")
		return uuid.Nil, false
	}
	id, err := uuid.Parse(value)
	if err != nil {
		badRequest(c, "invalid_id", name+" must be a UUID")
		return uuid.Nil, false
	}
	return id, true
}

// optionalUUID parses an optional UUID field; nil when absent.
func optionalUUID(c *gin.Context, name string, value *string) (*uuid.UUID, bool) {
	if value == nil {
		return nil, true
	}
	id, ok := fieldUUID(c, name, *value)
	if !ok {
		return nil, false
	}
	return &id, true
}

// queryUUID parses an optional UUID query parameter; uuid.Nil when absent.
func queryUUID(c *gin.Context, name string) (uuid.UUID, bool) {
	v := c.Query(name)
	if v == "" {
		return uuid.Nil, true
	}
	id, err := uuid.Parse(v)
	if err != nil {
		badRequest(c, "invalid_query", name+" must be a UUID")
		return uuid.Nil, false
	}
	return id, true
}

// pageParams reads ?after=<cursor>&limit=, answering 400 on nonsense.
func pageParams(c *gin.Context) (db.Page, bool) {
	p := db.Page{Limit: defaultLimit}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			badRequest(c, "invalid_query", "limit must be a whole number from 1 to 200")
			return p, false
		}
		p.Limit = n
	}
	if v := c.Query("after"); v != "" {
		cur, err := db.DecodeCursor(v)
		if err != nil {
			badRequest(c, "invalid_query", err.Error())
			return p, false
		}
		p.After = cur
	}
	return p, true
}

// respondErr answers a domain error with its status, anything else with 500.
func (s *Server) respondErr(c *gin.Context, err error) {
	e, ok := db.AsError(err)
	if !ok {
		s.internalError(c, err)
		return
	}
	status := map[db.Kind]int{
		db.KindInvalid:   http.StatusUnprocessableEntity,
		db.KindConflict:  http.StatusConflict,
		db.KindNotFound:  http.StatusNotFound,
		db.KindForbidden: http.StatusForbidden,
	}[e.Kind]
	if status == 0 {
		status = http.StatusBadRequest
	}
	fail(c, status, e.Code, e.Message)
}

// utc renders times in UTC, as every time in the API is.
func utc(t time.Time) time.Time { return t.UTC() }

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
