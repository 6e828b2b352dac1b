package workers

import "github.com/creatorvault/orchestrator/internal/config"

// forecastQueues are the task queues of the forecast domain.
func forecastQueues() []queue { return nil }

// forecastSchedules is the daily forecast refresh.
func forecastSchedules(cfg *config.Config) []schedule { _ = cfg; return nil }
