package workers

// treasuryQueues are the task queues of the treasury domain.
func treasuryQueues() []queue { return nil }
