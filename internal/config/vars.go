package config

// Variable documents one environment variable the binary reads.
type Variable struct {
	Name        string
	Default     string
	Description string
}

// Variables lists every variable Load reads, for the README, .env.example and the test that
// checks docker-compose.yml sets nothing the binary ignores.
var Variables = []Variable{
	{"DATABASE_URL", "(dev: found or started)", "PostgreSQL URL of the runtime role orchestrator_app (API and workers); in dev, a server and an administrator on it"},
	{"MIGRATE_DATABASE_URL", "(DATABASE_URL)", "PostgreSQL URL of the owner orchestrator_owner, for `migrate`"},
	{"ADMIN_DATABASE_URL", "", "PostgreSQL URL of an administrator, for `db bootstrap` (or its --admin-url)"},
	{"ALLOW_PRIVILEGED_DATABASE_URL", "false", "let api/worker start with a DATABASE_URL that could reach the treasury (superuser or member)"},
	{"TEMPORAL_ADDRESS", DefaultTemporalAddress, "Temporal frontend host:port (dev: embedded unless set)"},
	{"TEMPORAL_NAMESPACE", DefaultTemporalNamespace, "Temporal namespace"},
	{"HTTP_ADDR", DefaultHTTPAddr, "where the API listens"},
	{"LOG_LEVEL", "info", "debug, info, warn or error"},
	{"LOG_FORMAT", "text", "text or json"},
	{"TASK_QUEUES", "(all)", "comma-separated task queues a worker serves"},
	{"TRUSTED_PROXIES", "(none)", "proxies whose X-Forwarded-For the API believes"},
	{"METRICS_ADDR", "(off)", "where a worker serves /metrics and /health"},
	{"S3_ENDPOINT", "(AWS S3; dev: in-process on 127.0.0.1:9000)", "URL of an S3-compatible server such as MinIO"},
	{"S3_BUCKET", DefaultS3Bucket, "bucket for backups and drill reports"},
	{"AWS_REGION", DefaultAWSRegion, "AWS region; credentials come from the standard AWS chain"},
	{"S3_FORCE_PATH_STYLE", "true when S3_ENDPOINT is set", "path-style bucket addressing"},
	{"JWT_SECRET", "(dev: generated in .data/jwt-secret)", "HS256 key for API tokens, at least 32 bytes"},
	{"JWT_SECRET_FILE", "", "file holding JWT_SECRET"},
	{"WS_ALLOWED_ORIGINS", "(none: browsers refused)", "browser origins allowed to open WebSockets"},
	{"TREASURY_DATABASE_URL", "(required by api/worker)", "PostgreSQL URL of the treasury login orchestrator_treasury_login"},
	{"HORIZON_URL", "(dev: local endpoint)", "Stellar Horizon server for bailout payments"},
	{"STELLAR_NETWORK_PASSPHRASE", TestnetPassphrase, "Stellar network"},
	{"TREASURY_ACCOUNT", "(dev: demo account)", "the treasury's Stellar account (G...)"},
	{"COUNCIL_PUBLIC_KEYS", "(dev: demo keys)", "the five council members' Stellar public keys, comma separated"},
	{"USDC_ISSUER", "(dev: demo issuer)", "issuer account of the accepted USDC"},
	{"BAILOUT_TIMELOCK", "336h", "how long a bailout waits before it may execute"},
	{"BAILOUT_GRACE_PERIOD", "168h", "how long after the timelock a bailout may still execute"},
	{"BACKUP_DATABASE_URL", "(DATABASE_URL)", "the database that is backed up, as the read-only orchestrator_backup"},
	{"BACKUP_RECIPIENTS", "(dev: demo recipient)", "age X25519 recipients (age1...), comma separated"},
	{"BACKUP_RECIPIENTS_FILE", "", "file of age recipients, one a line"},
	{"BACKUP_PASSPHRASE_FILE", "", "age passphrase (scrypt) mode instead of recipients"},
	{"BACKUP_IDENTITY_FILE", "", "age identity that decrypts backups: drill worker and restore only"},
	{"BACKUP_SCHEDULE", "0 2 * * *", "nightly backup, cron in UTC"},
	{"BACKUP_KEEP_NIGHTLY", "7", "newest backups retention keeps"},
	{"BACKUP_KEEP_MONTHLY", "12", "monthly backups retention keeps"},
	{"PG_BIN_DIR", "(/usr/lib/postgresql/<server major>/bin, then PATH)", "where pg_dump and pg_restore are"},
	{"DRILL_SCHEDULE", "0 3 1 1,4,7,10 *", "quarterly fire drill, cron in UTC"},
	{"DRILL_RTO_TARGET", "30m", "recovery time objective of a drill"},
	{"DRILL_DATABASE_URL", "(DATABASE_URL: refused outside dev)", "an administrator's URL on the drill server, where drills create scratch databases"},
	{"DRILL_RESTORE_JOBS", "(the drill worker's cores)", "pg_restore --jobs of a drill"},
	{"DRILL_ALLOW_PRODUCTION_SERVER", "false (dev: true)", "let drills restore onto DATABASE_URL's server"},
	{"TEMPORAL_BACKUP_DATABASE_URLS", "(none)", "Temporal's PostgreSQL databases the nightly backup also dumps, comma separated"},
	{"PITR_CIPHER_PASS", "(PITR off)", "key of the pgBackRest repository (aes-256-cbc); setting it turns point-in-time recovery on"},
	{"PITR_CIPHER_PASS_FILE", "", "file holding PITR_CIPHER_PASS"},
	{"PITR_FULL_SCHEDULE", "0 3 * * 0", "weekly full physical backup, cron in UTC"},
	{"PITR_DIFF_SCHEDULE", "0 3 * * 1-6", "daily differential physical backup, cron in UTC"},
	{"FORECAST_SCHEDULE", "30 1 * * *", "daily forecast refresh, cron in UTC"},
	{"FORECAST_PATHS", "1000", "Monte Carlo paths per creator"},
	{"FORECAST_BATCH_SIZE", "500", "creators per refresh activity"},
}
