package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/workflows"
)

// registerOps adds the endpoints of backups and fire drills (admin).
func (s *Server) registerOps(g *gin.RouterGroup) {
	admin := requireRole(RoleAdmin)
	g.POST("/ops/backups", admin, s.startBackup)
	g.GET("/ops/backups", admin, s.listBackups)
	g.POST("/ops/drills", admin, s.startDrill)
	g.GET("/ops/drills", admin, s.listDrills)
}

type startedJSON struct {
	WorkflowID string `json:"workflow_id"`
	RunID      string `json:"run_id"`
}

func (s *Server) startBackup(c *gin.Context) {
	if s.temporal == nil {
		fail(c, http.StatusServiceUnavailable, "temporal_unavailable", "the workflow service is not connected")
		return
	}
	p := principal(c)
	id := workflows.BackupWorkflowID(s.now())
	run, err := s.temporal.ExecuteWorkflow(c, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.BackupTaskQueue},
		workflows.BackupWorkflow, workflows.BackupInput{Kind: "manual"})
	if err != nil {
		s.internalError(c, err)
		return
	}
	s.audit(c, &p, "backup.start", run.GetID(), "")
	c.JSON(http.StatusAccepted, startedJSON{WorkflowID: run.GetID(), RunID: run.GetRunID()})
}

type startDrillRequest struct {
	BackupID string `json:"backup_id"`
	// Kind is logical, pitr or both; empty means both with PITR configured, else logical.
	Kind string `json:"kind"`
}

func (s *Server) startDrill(c *gin.Context) {
	var req startDrillRequest
	if c.Request.ContentLength != 0 && !decodeJSON(c, &req) {
		return
	}
	if req.Kind == "" {
		req.Kind = workflows.DefaultDrillKind(s.cfg.PITR.Enabled)
	} else if !workflows.ValidDrillKind(req.Kind) {
		fail(c, http.StatusBadRequest, "invalid_kind", "kind must be logical, pitr or both")
		return
	}
	if req.BackupID != "" && req.BackupID != "latest" {
		if _, err := db.GetBackup(c, s.pool, req.BackupID); err != nil {
			s.respondErr(c, err)
			return
		}
	}
	if s.temporal == nil {
		fail(c, http.StatusServiceUnavailable, "temporal_unavailable", "the workflow service is not connected")
		return
	}
	p := principal(c)
	id := workflows.DrillWorkflowID(s.now())
	run, err := s.temporal.ExecuteWorkflow(c, client.StartWorkflowOptions{ID: id, TaskQueue: workflows.DrillTaskQueue},
		workflows.DrillWorkflow, workflows.DrillInput{BackupID: req.BackupID, RTOTarget: s.cfg.Backup.DrillRTOTarget, Kind: req.Kind})
	if err != nil {
		s.internalError(c, err)
		return
	}
	s.audit(c, &p, "drill.start", run.GetID(), req.BackupID)
	c.JSON(http.StatusAccepted, startedJSON{WorkflowID: run.GetID(), RunID: run.GetRunID()})
}

// opsLimit reads ?limit= (1..200, default 50).
func opsLimit(c *gin.Context) (int, bool) {
	v := c.Query("limit")
	if v == "" {
		return defaultLimit, true
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxLimit {
		badRequest(c, "invalid_limit", "limit must be an integer from 1 to 200")
		return 0, false
	}
	return n, true
}

func (s *Server) listBackups(c *gin.Context) {
	limit, ok := opsLimit(c)
	if !ok {
		return
	}
	status := c.Query("status")
	switch status {
	case "", "running", "complete", "failed", "pruned":
	default:
		badRequest(c, "invalid_status", "status must be running, complete, failed or pruned")
		return
	}
	rows, err := db.ListBackups(c, s.pool, status, limit)
	if err != nil {
		s.internalError(c, err)
		return
	}
	for i := range rows {
		rows[i].StartedAt = utc(rows[i].StartedAt)
		rows[i].FinishedAt = utcPtr(rows[i].FinishedAt)
		rows[i].VerifiedAt = utcPtr(rows[i].VerifiedAt)
	}
	c.JSON(http.StatusOK, newList(rows, nil))
}

func (s *Server) listDrills(c *gin.Context) {
	limit, ok := opsLimit(c)
	if !ok {
		return
	}
	rows, err := db.ListDrills(c, s.pool, limit)
	if err != nil {
		s.internalError(c, err)
		return
	}
	for i := range rows {
		rows[i].StartedAt = utc(rows[i].StartedAt)
		rows[i].FinishedAt = utcPtr(rows[i].FinishedAt)
	}
	c.JSON(http.StatusOK, newList(rows, nil))
}
