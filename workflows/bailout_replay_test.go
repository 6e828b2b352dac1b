package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// The checked-in history of a full bailout (requested, five approvals with a refused
// non-member and duplicate, timelock, executed) still replays against today's code: a change
// that would break running bailouts fails here.
func TestBailoutReplay(t *testing.T) {
	r := worker.NewWorkflowReplayer()
	r.RegisterWorkflowWithOptions(Bailout, workflow.RegisterOptions{Name: BailoutWorkflowName})
	require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, "testdata/bailout_history.json"))
}
