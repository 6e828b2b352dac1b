package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The checked-in ErasureWorkflow history (recorded by api's TestEraseUserEndToEnd with
// UPDATE_HISTORY=1) still replays: erasures that were running when a worker is upgraded
// resume on the new code.
func TestErasureReplay(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(ErasureWorkflow, workflow.RegisterOptions{Name: "ErasureWorkflow"})
	require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/erasure_history.json"))
}
