package workers

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/creatorvault/orchestrator/internal/config"
)

// schedule is one Temporal Schedule this system keeps.
type schedule struct {
	id        string
	cron      string
	workflow  any
	args      []any
	taskQueue string
	// workflowID is the id each run gets (Temporal appends the scheduled time).
	workflowID string
	note       string
}

// schedules lists the periodic work, from configuration, domain by domain.
func schedules(cfg *config.Config) []schedule {
	var all []schedule
	all = append(all, backupSchedules(cfg)...)
	all = append(all, forecastSchedules(cfg)...)
	all = append(all, treasuryIntegritySchedules(cfg)...)
	all = append(all, treasurySchedules(cfg)...)
	all = append(all, pitrSchedules(cfg)...)
	return all
}

// ApplySchedules creates each schedule, or updates its spec and action when they changed.
// Running it again changes nothing; a schedule paused by an operator stays paused. Overlap
// policy is skip: a run still going when the next is due makes the next one skip.
func ApplySchedules(ctx context.Context, c client.Client, cfg *config.Config) error {
	for _, s := range schedules(cfg) {
		if err := applySchedule(ctx, c, s); err != nil {
			return fmt.Errorf("schedule %s: %w", s.id, err)
		}
	}
	return nil
}

func applySchedule(ctx context.Context, c client.Client, s schedule) error {
	spec := client.ScheduleSpec{CronExpressions: []string{s.cron}}
	action := &client.ScheduleWorkflowAction{
		ID:        s.workflowID,
		Workflow:  s.workflow,
		Args:      s.args,
		TaskQueue: s.taskQueue,
	}
	h := c.ScheduleClient().GetHandle(ctx, s.id)
	_, err := h.Describe(ctx)
	var nf *serviceerror.NotFound
	if errors.As(err, &nf) {
		_, err = c.ScheduleClient().Create(ctx, client.ScheduleOptions{
			ID:      s.id,
			Spec:    spec,
			Action:  action,
			Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
			Note:    s.note,
		})
		var exists *serviceerror.AlreadyExists
		if errors.As(err, &exists) || errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
			return nil // another process created it at the same moment
		}
		return err
	}
	if err != nil {
		return err
	}
	return h.Update(ctx, client.ScheduleUpdateOptions{
		DoUpdate: func(in client.ScheduleUpdateInput) (*client.ScheduleUpdate, error) {
			sch := in.Description.Schedule
			sch.Spec = &spec
			sch.Action = action
			if sch.Policy == nil {
				sch.Policy = &client.SchedulePolicies{}
			}
			sch.Policy.Overlap = enumspb.SCHEDULE_OVERLAP_POLICY_SKIP
			return &client.ScheduleUpdate{Schedule: &sch}, nil
		},
	})
}
