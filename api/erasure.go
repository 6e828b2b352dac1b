package api

import (
	"bufio"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/workflows"
)

// registerErasure adds the right to be forgotten and the data export.
func (s *Server) registerErasure(g *gin.RouterGroup) {
	g.DELETE("/users/:id", s.eraseUser)
	g.GET("/users/:id/export", s.exportUser)
}

// selfOrAdmin resolves the {id} of a user endpoint only the user themself or an admin may
// use; for anyone else the user does not exist (404).
func (s *Server) selfOrAdmin(c *gin.Context) (uuid.UUID, bool) {
	id, ok := pathUUID(c, "id")
	if !ok {
		return uuid.Nil, false
	}
	if p := principal(c); p.UserID != id && p.Role != RoleAdmin {
		notFound(c, "user")
		return uuid.Nil, false
	}
	if _, err := db.GetUser(c, s.pool, id); err != nil {
		s.respondErr(c, err)
		return uuid.Nil, false
	}
	return id, true
}

type erasureJSON struct {
	UserID      uuid.UUID         `json:"user_id"`
	Status      string            `json:"status"`
	WorkflowID  string            `json:"workflow_id"`
	RequestedAt *string           `json:"requested_at"`
	CompletedAt *string           `json:"completed_at"`
	Result      *db.ErasureCounts `json:"result"`
}

// eraseUser starts (or finds) the user's ErasureWorkflow: 202 while it runs, 200 once the
// user is erased (erasing again is a no-op success).
func (s *Server) eraseUser(c *gin.Context) {
	id, ok := s.selfOrAdmin(c)
	if !ok {
		return
	}
	p := principal(c)
	wid := workflows.ErasureWorkflowID(id)
	if e, err := db.GetErasure(c, s.pool, id); err == nil && e.CompletedAt != nil {
		req, done := e.RequestedAt.UTC().Format(rfc3339), e.CompletedAt.UTC().Format(rfc3339)
		c.JSON(http.StatusOK, erasureJSON{UserID: id, Status: "erased", WorkflowID: wid, RequestedAt: &req, CompletedAt: &done, Result: &e.Result})
		return
	} else if err != nil && !errors.Is(err, db.ErrNotFound) {
		s.internalError(c, err)
		return
	}
	if s.temporal == nil {
		fail(c, http.StatusServiceUnavailable, "unavailable", "erasure needs the workflow service, which is not configured")
		return
	}
	_, err := s.temporal.ExecuteWorkflow(c, client.StartWorkflowOptions{
		ID: wid, TaskQueue: workflows.ErasureTaskQueue,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_USE_EXISTING,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
	}, workflows.ErasureWorkflow, workflows.ErasureInput{UserID: id})
	if err != nil {
		s.internalError(c, err)
		return
	}
	s.audit(c, &p, "user.erase_requested", id.String(), "")
	c.JSON(http.StatusAccepted, erasureJSON{UserID: id, Status: "erasing", WorkflowID: wid})
}

const rfc3339 = "2006-01-02T15:04:05.999999Z07:00"

// exportUser streams the user's data as one JSON object of sections, each an array of rows.
func (s *Server) exportUser(c *gin.Context) {
	id, ok := s.selfOrAdmin(c)
	if !ok {
		return
	}
	p := principal(c)
	s.audit(c, &p, "user.exported", id.String(), "")
	c.Header("Content-Type", "application/json")
	c.Header("Content-Disposition", `attachment; filename="user-`+id.String()+`.json"`)
	c.Status(http.StatusOK)
	w := &exportJSON{w: bufio.NewWriterSize(c.Writer, 32<<10)}
	_, _ = w.w.WriteString(`{"user_id":"` + id.String() + `","exported_at":"` + s.now().UTC().Format(rfc3339) + `"`)
	err := db.ExportUser(c, s.pool, id, w)
	if err == nil {
		err = w.end()
	}
	if err != nil {
		// The status is sent: end the stream unfinished, so the client sees broken JSON
		// rather than a complete-looking partial export.
		s.logger.ErrorContext(c, "export failed", "error", err)
		_ = w.w.Flush()
		panic(http.ErrAbortHandler)
	}
}

// exportJSON frames the export's sections and rows.
type exportJSON struct {
	w    *bufio.Writer
	open bool
	rows int
}

func (e *exportJSON) Section(name string) error {
	if err := e.closeSection(); err != nil {
		return err
	}
	e.open, e.rows = true, 0
	_, err := e.w.WriteString(`,"` + name + `":[`)
	return err
}

func (e *exportJSON) Row(row map[string]any) error {
	b, err := json.Marshal(row)
	if err != nil {
		return err
	}
	if e.rows > 0 {
		_ = e.w.WriteByte(',')
	}
	e.rows++
	_, err = e.w.Write(b)
	return err
}

func (e *exportJSON) closeSection() error {
	if !e.open {
		return nil
	}
	e.open = false
	return e.w.WriteByte(']')
}

func (e *exportJSON) end() error {
	if err := e.closeSection(); err != nil {
		return err
	}
	if err := e.w.WriteByte('}'); err != nil {
		return err
	}
	return e.w.Flush()
}
