// Package workers is the composition root of the Temporal side: it builds each task queue's
// worker with its workflows and activities, registers search attributes, and applies the
// Temporal Schedules that start the periodic work.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5/pgxpool"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/operatorservice/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"

	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/workflows"
)

// Deps are built once per process and shared by every worker in it.
type Deps struct {
	Client client.Client
	// Pool connects as the runtime role (DATABASE_URL).
	Pool *pgxpool.Pool
	// TreasuryPool connects as the treasury login; nil means open TREASURY_DATABASE_URL
	// (else Pool, which works only for a role that is a treasury member).
	TreasuryPool *pgxpool.Pool
	S3           *s3.Client
	Config       *config.Config
	Logger       *slog.Logger
}

// queue builds one task queue's worker.
type queue struct {
	name string
	// options tune the queue's worker (concurrency, heartbeat throttling); zero is the default.
	options worker.Options
	// register adds the queue's workflows and activities to w. A non-nil cleanup runs after
	// the worker has stopped (to close a pool the activities own, say).
	register func(ctx context.Context, w worker.Registry, d Deps) (cleanup func(), err error)
}

// queues lists every task queue this binary serves, domain by domain.
func queues() []queue {
	var all []queue
	all = append(all, treasuryQueues()...)
	all = append(all, backupQueues()...)
	all = append(all, forecastQueues()...)
	all = append(all, pitrQueues()...)
	all = append(all, erasureQueues()...)
	return all
}

// QueueNames lists the task queues, for TASK_QUEUES and documentation.
func QueueNames() []string {
	var names []string
	for _, q := range queues() {
		names = append(names, q.name)
	}
	sort.Strings(names)
	return names
}

// Run starts a worker per selected task queue (all when only is empty) and blocks until ctx
// ends, then stops them, letting running activities finish their current attempt.
func Run(ctx context.Context, d Deps, only []string) error {
	for _, name := range only {
		if !slices.Contains(QueueNames(), name) {
			return fmt.Errorf("TASK_QUEUES: unknown task queue %q (have %v)", name, QueueNames())
		}
	}
	var started []worker.Worker
	var cleanups []func()
	defer func() {
		for _, w := range started {
			w.Stop()
		}
		for i := len(cleanups) - 1; i >= 0; i-- {
			cleanups[i]()
		}
	}()
	for _, q := range queues() {
		if len(only) > 0 && !slices.Contains(only, q.name) {
			continue
		}
		w := worker.New(d.Client, q.name, q.options)
		cleanup, err := q.register(ctx, w, d)
		if cleanup != nil {
			cleanups = append(cleanups, cleanup)
		}
		if err != nil && ctx.Err() != nil {
			return nil // stopped while starting (a query cut short by the stop): a clean stop
		}
		if err != nil {
			return fmt.Errorf("task queue %s: %w", q.name, err)
		}
		if err := w.Start(); err != nil {
			return fmt.Errorf("task queue %s: %w", q.name, err)
		}
		started = append(started, w)
		d.Logger.Info("worker started", "task_queue", q.name)
	}
	<-ctx.Done()
	return nil
}

// EnsureSearchAttributes registers the workflows' custom search attributes that the namespace
// lacks. On a cluster where this process may not change the namespace, it reports which are
// missing so an operator can add them.
func EnsureSearchAttributes(ctx context.Context, c client.Client, namespace string) error {
	want := workflows.SearchAttributes()
	if len(want) == 0 {
		return nil
	}
	have, err := c.OperatorService().ListSearchAttributes(ctx, &operatorservice.ListSearchAttributesRequest{Namespace: namespace})
	if err != nil {
		return fmt.Errorf("list search attributes: %w", err)
	}
	missing := map[string]enumspb.IndexedValueType{}
	for name, typ := range want {
		if _, ok := have.GetCustomAttributes()[name]; !ok {
			missing[name] = typ
		}
	}
	if len(missing) == 0 {
		return nil
	}
	_, err = c.OperatorService().AddSearchAttributes(ctx, &operatorservice.AddSearchAttributesRequest{
		Namespace: namespace, SearchAttributes: missing,
	})
	var exists *serviceerror.AlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("add search attributes %v (an operator can add them with `temporal operator search-attribute create`): %w", keys(missing), err)
	}
	return nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Serves reports whether a worker started with TASK_QUEUES only (empty: all) serves queue.
func Serves(only []string, queue string) bool {
	return len(only) == 0 || slices.Contains(only, queue)
}
