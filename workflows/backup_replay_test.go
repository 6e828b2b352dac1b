package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The checked-in histories (recorded by the end-to-end test in workers with UPDATE_HISTORY=1)
// still replay: the workflow code has made no non-deterministic change.
func TestBackupAndDrillReplay(t *testing.T) {
	for _, tc := range []struct {
		file string
		wf   any
		name string
	}{
		{"testdata/backup_history.json", BackupWorkflow, "BackupWorkflow"},
		{"testdata/drill_history.json", DrillWorkflow, "DrillWorkflow"},
		{"testdata/pitr_backup_history.json", PhysicalBackupWorkflow, "PhysicalBackupWorkflow"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(tc.wf, workflow.RegisterOptions{Name: tc.name})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, tc.file))
		})
	}
}
