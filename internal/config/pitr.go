package config

// PITR configures point-in-time recovery's schedules (package pitr reads pgBackRest's own
// settings, PITR_* and S3_*, when it runs).
type PITR struct {
	// Enabled is true when the repository's key is set (PITR_CIPHER_PASS or
	// PITR_CIPHER_PASS_FILE): only then are the physical backup schedules applied.
	Enabled bool
	// FullSchedule and DiffSchedule are the weekly full and daily differential backups' cron
	// expressions in UTC (PITR_FULL_SCHEDULE, PITR_DIFF_SCHEDULE).
	FullSchedule, DiffSchedule string
	// Overrides are pgBackRest settings (PITR_*, S3_*, AWS_*) that win over the environment:
	// `orchestrator dev` sets them for the throwaway cluster it archives.
	Overrides map[string]string
}

// Lookup reads a setting from Overrides, else from env (os.LookupEnv).
func (p PITR) Lookup(env func(string) (string, bool)) func(string) (string, bool) {
	return func(k string) (string, bool) {
		if v, ok := p.Overrides[k]; ok {
			return v, true
		}
		return env(k)
	}
}

func loadPITR(e *env) PITR {
	return PITR{
		Enabled:      e.str("PITR_CIPHER_PASS", "") != "" || e.str("PITR_CIPHER_PASS_FILE", "") != "",
		FullSchedule: e.str("PITR_FULL_SCHEDULE", "0 3 * * 0"),
		DiffSchedule: e.str("PITR_DIFF_SCHEDULE", "0 3 * * 1-6"),
	}
}
