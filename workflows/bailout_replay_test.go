package workflows

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"
)

// Checked-in histories of full bailouts still replay against today's code: a change that
// would break running bailouts fails here. bailout_history.json was recorded before channel
// accounts (first version: requested, five approvals with a refused non-member and duplicate,
// timelock, executed) and is never regenerated; bailout_channels_history.json is a bailout on
// its own channel account (policy from the worker, reserved from the treasury's record,
// submitted and read back).
func TestBailoutReplay(t *testing.T) {
	for _, f := range []string{"testdata/bailout_history.json", "testdata/bailout_channels_history.json"} {
		t.Run(f, func(t *testing.T) {
			r := worker.NewWorkflowReplayer()
			r.RegisterWorkflowWithOptions(Bailout, workflow.RegisterOptions{Name: BailoutWorkflowName})
			require.NoError(t, r.ReplayWorkflowHistoryFromJSONFile(nil, f))
		})
	}
}
