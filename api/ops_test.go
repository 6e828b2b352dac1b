package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestOpsEndpointsNeedAdmin(t *testing.T) {
	e := newEnv(t)
	for _, role := range []Role{RoleFan, RoleCreator, RoleCouncil, RoleService} {
		tok := e.as(role).Token
		for _, rt := range []struct{ method, path string }{
			{http.MethodGet, "/api/v1/ops/backups"}, {http.MethodPost, "/api/v1/ops/backups"},
			{http.MethodGet, "/api/v1/ops/drills"}, {http.MethodPost, "/api/v1/ops/drills"},
		} {
			r := e.do(rt.method, rt.path, tok, nil)
			require.Equal(t, http.StatusForbidden, r.Code, "%s %s as %s", rt.method, rt.path, role)
		}
	}
	r := e.do(http.MethodGet, "/api/v1/ops/backups", "", nil)
	require.Equal(t, http.StatusUnauthorized, r.Code)
}

func TestListBackupsAndDrills(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.as(RoleAdmin).Token
	t0 := time.Date(2026, 11, 1, 2, 0, 0, 0, time.UTC)
	require.NoError(t, db.StartBackup(ctx, e.pool, "b1", "nightly", "backups/b1", t0))
	fin := t0.Add(time.Minute)
	require.NoError(t, db.CompleteBackup(ctx, e.pool, db.Backup{ID: "b1", FinishedAt: &fin, StoredBytes: 9, SHA256: "ff", Tables: 2}))
	require.NoError(t, db.StartBackup(ctx, e.pool, "b2", "manual", "backups/b2", t0.Add(time.Hour)))
	require.NoError(t, db.RecordDrill(ctx, e.pool, db.Drill{ID: "d1", BackupID: "b1", StartedAt: t0, Outcome: "pass", RTOSeconds: 12}))

	r := e.do(http.MethodGet, "/api/v1/ops/backups", admin, nil)
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	items := r.JSON(t)["items"].([]any)
	require.Len(t, items, 2)
	require.Equal(t, "b2", items[0].(map[string]any)["id"])

	r = e.do(http.MethodGet, "/api/v1/ops/backups?status=complete&limit=5", admin, nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Len(t, r.JSON(t)["items"].([]any), 1)

	for _, q := range []string{"?status=bogus", "?limit=0", "?limit=x"} {
		r = e.do(http.MethodGet, "/api/v1/ops/backups"+q, admin, nil)
		require.Equal(t, http.StatusBadRequest, r.Code, q)
	}

	r = e.do(http.MethodGet, "/api/v1/ops/drills", admin, nil)
	require.Equal(t, http.StatusOK, r.Code)
	d := r.JSON(t)["items"].([]any)[0].(map[string]any)
	require.Equal(t, "pass", d["outcome"])
	require.EqualValues(t, 12, d["rto_seconds"])

	// Without a Temporal client the start endpoints answer 503 and start nothing.
	r = e.do(http.MethodPost, "/api/v1/ops/backups", admin, nil)
	require.Equal(t, http.StatusServiceUnavailable, r.Code)
	r = e.do(http.MethodPost, "/api/v1/ops/drills", admin, map[string]any{"bogus": 1})
	require.Equal(t, http.StatusBadRequest, r.Code)
}

// With Temporal, the start endpoints start the workflows on their task queues (no worker
// here: the test checks what was started, then terminates it) and audit who did it.
func TestStartBackupAndDrill(t *testing.T) {
	tc := testharness.Temporal(t)
	e := newEnv(t, withTemporal(tc))
	ctx := context.Background()
	admin := e.as(RoleAdmin)

	r := e.do(http.MethodPost, "/api/v1/ops/backups", admin.Token, nil)
	require.Equal(t, http.StatusAccepted, r.Code, string(r.Body))
	wfID := r.JSON(t)["workflow_id"].(string)
	desc, err := tc.DescribeWorkflowExecution(ctx, wfID, "")
	require.NoError(t, err)
	require.Equal(t, "BackupWorkflow", desc.GetWorkflowExecutionInfo().GetType().GetName())
	require.Equal(t, "backup", desc.GetWorkflowExecutionInfo().GetTaskQueue())
	require.NoError(t, tc.TerminateWorkflow(ctx, wfID, "", "test"))

	// An unknown backup is a 404 and starts nothing.
	r = e.do(http.MethodPost, "/api/v1/ops/drills", admin.Token, map[string]any{"backup_id": "nope"})
	require.Equal(t, http.StatusNotFound, r.Code, string(r.Body))
	// An unknown kind is a 400 and starts nothing.
	r = e.do(http.MethodPost, "/api/v1/ops/drills", admin.Token, map[string]any{"kind": "physical"})
	require.Equal(t, http.StatusBadRequest, r.Code, string(r.Body))
	require.Equal(t, "invalid_kind", r.ErrorCode(t))

	e.clock.Set(e.clock.Now().Add(time.Second))
	r = e.do(http.MethodPost, "/api/v1/ops/drills", admin.Token, nil)
	require.Equal(t, http.StatusAccepted, r.Code, string(r.Body))
	wfID = r.JSON(t)["workflow_id"].(string)
	desc, err = tc.DescribeWorkflowExecution(ctx, wfID, "")
	require.NoError(t, err)
	require.Equal(t, "DrillWorkflow", desc.GetWorkflowExecutionInfo().GetType().GetName())
	require.Equal(t, "drill", desc.GetWorkflowExecutionInfo().GetTaskQueue())
	require.NoError(t, tc.TerminateWorkflow(ctx, wfID, "", "test"))

	var n int
	require.NoError(t, e.pool.QueryRow(ctx, `SELECT count(*) FROM access_log WHERE action IN ('backup.start', 'drill.start')`).Scan(&n))
	require.Equal(t, 2, n)
}
