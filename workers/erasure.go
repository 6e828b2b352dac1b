package workers

import (
	"context"

	"go.temporal.io/sdk/worker"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/workflows"
)

// erasureQueues is the task queue of the right to be forgotten.
func erasureQueues() []queue {
	return []queue{{
		name: workflows.ErasureTaskQueue,
		register: func(_ context.Context, w worker.Registry, d Deps) (func(), error) {
			w.RegisterWorkflow(workflows.ErasureWorkflow)
			w.RegisterActivity(&activities.Erasure{Pool: d.Pool, Register: db.ErasureRegister{S3: d.S3, Bucket: d.Config.S3.Bucket}})
			return nil, nil
		},
	}}
}
