package config

import "time"

// Treasury configures the insurance treasury and the bailout workflow.
type Treasury struct {
	// DatabaseURL connects as the treasury's own database role (TREASURY_DATABASE_URL);
	// empty means DATABASE_URL with SET ROLE to the treasury role.
	DatabaseURL string
	// HorizonURL is the Stellar Horizon server bailouts are submitted to (HORIZON_URL).
	HorizonURL string
	// NetworkPassphrase selects the Stellar network (STELLAR_NETWORK_PASSPHRASE).
	NetworkPassphrase string
	// Account is the treasury's Stellar account, G... (TREASURY_ACCOUNT).
	Account string
	// CouncilKeys are the five council members' Stellar public keys (COUNCIL_PUBLIC_KEYS,
	// comma separated).
	CouncilKeys []string
	// USDCIssuer is the issuer account of the accepted USDC asset (USDC_ISSUER).
	USDCIssuer string
	// Timelock is how long a bailout waits before it may execute (BAILOUT_TIMELOCK).
	Timelock time.Duration
	// ChannelSeedsFile holds the channel accounts' secret seeds, one a line
	// (TREASURY_CHANNEL_SEEDS_FILE): the orchestrator's keys, which can pay fees and consume
	// the channels' sequence numbers but move nothing from the treasury.
	ChannelSeedsFile string
	// GracePeriod is how long after the timelock a bailout may still execute
	// (BAILOUT_GRACE_PERIOD).
	GracePeriod time.Duration
	// Integrity: timelock floor, reconciliation and anchoring (treasury_integrity.go).
	Integrity Integrity
}

// TestnetPassphrase is the Stellar test network's passphrase, the default network.
const TestnetPassphrase = "Test SDF Network ; September 2015"

func loadTreasury(e *env) Treasury {
	return Treasury{
		DatabaseURL:       e.str("TREASURY_DATABASE_URL", ""),
		HorizonURL:        e.url("HORIZON_URL"),
		NetworkPassphrase: e.str("STELLAR_NETWORK_PASSPHRASE", TestnetPassphrase),
		Account:           e.str("TREASURY_ACCOUNT", ""),
		CouncilKeys:       e.list("COUNCIL_PUBLIC_KEYS"),
		USDCIssuer:        e.str("USDC_ISSUER", ""),
		Timelock:          e.duration("BAILOUT_TIMELOCK", 14*24*time.Hour),
		GracePeriod:       e.duration("BAILOUT_GRACE_PERIOD", 7*24*time.Hour),
		Integrity:         loadIntegrity(e),
		ChannelSeedsFile:  e.str("TREASURY_CHANNEL_SEEDS_FILE", ""),
	}
}
