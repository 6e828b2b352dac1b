package config

import (
	"fmt"
	"time"
)

// TimelockFloor is the shortest BAILOUT_TIMELOCK a production worker or API accepts: the
// council's 14 days to notice and cancel a bailout.
const TimelockFloor = 14 * 24 * time.Hour

// Integrity configures what keeps the treasury honest beyond the bailout workflow itself:
// the timelock floor, the daily reconciliation with the chain, and the anchoring of the event
// chain's head on Stellar.
type Integrity struct {
	// AllowShortTimelock accepts a BAILOUT_TIMELOCK under TimelockFloor
	// (BAILOUT_TIMELOCK_UNSAFE). Only for dev and tests; `orchestrator dev` sets it.
	AllowShortTimelock bool
	// AnchorAccount is the Stellar account whose transactions publish the chain's head as
	// their memo hash (TREASURY_ANCHOR_ACCOUNT, G...). `treasury verify` reads it.
	AnchorAccount string
	// AnchorSeedFile holds the anchor account's secret seed (TREASURY_ANCHOR_SEED_FILE); only
	// the treasury worker needs it.
	AnchorSeedFile string
	// AnchorSchedule is the daily anchoring's cron expression in UTC (TREASURY_ANCHOR_SCHEDULE).
	AnchorSchedule string
	// ReconcileSchedule is the daily reconciliation's cron expression in UTC
	// (TREASURY_RECONCILE_SCHEDULE).
	ReconcileSchedule string
}

func loadIntegrity(e *env) Integrity {
	return Integrity{
		AllowShortTimelock: e.boolean("BAILOUT_TIMELOCK_UNSAFE", false),
		AnchorAccount:      e.str("TREASURY_ANCHOR_ACCOUNT", ""),
		AnchorSeedFile:     e.str("TREASURY_ANCHOR_SEED_FILE", ""),
		AnchorSchedule:     e.str("TREASURY_ANCHOR_SCHEDULE", "10 0 * * *"),
		ReconcileSchedule:  e.str("TREASURY_RECONCILE_SCHEDULE", "40 0 * * *"),
	}
}

// CheckTimelockFloor refuses a BAILOUT_TIMELOCK under 14 days unless BAILOUT_TIMELOCK_UNSAFE
// is set: a production process must not run bailouts the council has no time to stop.
func (t Treasury) CheckTimelockFloor() error {
	if t.Timelock >= TimelockFloor || t.Integrity.AllowShortTimelock {
		return nil
	}
	return fmt.Errorf("BAILOUT_TIMELOCK: %s is under the 14-day floor (336h); set BAILOUT_TIMELOCK_UNSAFE=true only in dev or tests", t.Timelock)
}
