package workers

import "github.com/creatorvault/orchestrator/internal/config"

// backupQueues are the task queues of the backup domain.
func backupQueues() []queue { return nil }

// backupSchedules are the nightly backup and the quarterly fire drill.
func backupSchedules(cfg *config.Config) []schedule { _ = cfg; return nil }
