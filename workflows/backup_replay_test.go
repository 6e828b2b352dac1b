package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The checked-in histories (recorded by the end-to-end tests in workers with UPDATE_HISTORY=1)
// still replay: the workflow code has made no non-deterministic change. drill_v1_history.json
// was recorded before drill kinds (a logical drill with no version marker) and is never
// regenerated; drill_history.json is a logical drill and drill_pitr_history.json a drill of
// both kinds, recorded since.
func TestBackupAndDrillReplay(t *testing.T) {
	for _, tc := range []struct {
		file string
		wf   any
		name string
	}{
		{"testdata/backup_history.json", BackupWorkflow, "BackupWorkflow"},
		{"testdata/drill_v1_history.json", DrillWorkflow, "DrillWorkflow"},
		{"testdata/drill_history.json", DrillWorkflow, "DrillWorkflow"},
		{"testdata/drill_pitr_history.json", DrillWorkflow, "DrillWorkflow"},
		{"testdata/pitr_backup_history.json", PhysicalBackupWorkflow, "PhysicalBackupWorkflow"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(tc.wf, workflow.RegisterOptions{Name: tc.name})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, tc.file))
		})
	}
}
