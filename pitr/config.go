// Package pitr is point-in-time recovery: physical backups and continuous WAL archiving by
// pgBackRest (the engine; no archiver of our own) into an S3 repository under its own prefix of
// the backup bucket, zstd-compressed and encrypted (aes-256-cbc), and restores to a moment.
//
// The orchestrator writes pgBackRest's configuration from the environment (LoadConfig,
// Engine.WriteConfig), runs its commands (stanza-create, check, backup, expire, info) and
// parses `info --output=json` into typed values. The logical, age-encrypted dumps of package
// backup stay the portable layer; this one bounds data loss by the archive lag.
package pitr

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Config is pgBackRest's configuration, from the environment.
type Config struct {
	// Stanza names the cluster in the repository (PITR_STANZA, default "orchestrator").
	Stanza string
	// RepoPath is the repository's prefix in the bucket (PITR_REPO_PREFIX, default
	// "pgbackrest"), apart from the logical backups' keys.
	RepoPath string
	// CipherPass encrypts the repository (aes-256-cbc) (PITR_CIPHER_PASS, or the first line of
	// PITR_CIPHER_PASS_FILE). Required: a repository is never written unencrypted. Never logged.
	CipherPass string
	// RetentionFull and RetentionDiff are how many full and differential backups expire keeps
	// (PITR_RETENTION_FULL, default 2; PITR_RETENTION_DIFF, default 7). WAL older than the
	// oldest kept full backup is expired with it.
	RetentionFull, RetentionDiff int

	// PGData is the cluster's data directory (PITR_PG_DATA); needed to back up, not to list or
	// restore.
	PGData string
	// PGPort is the port the cluster listens on (PITR_PG_PORT, default 5432).
	PGPort int
	// PGSocketDir is the directory of the cluster's Unix socket, which pgBackRest connects
	// through (PITR_PG_SOCKET_DIR, default /var/run/postgresql).
	PGSocketDir string
	// PGUser is the superuser pgBackRest connects as (PITR_PG_USER, default postgres).
	PGUser string
	// PGPassword is its password when the socket asks for one (PITR_PG_PASSWORD); given to
	// pgBackRest in its environment, never written to the configuration.
	PGPassword string

	// S3: the bucket and endpoint of the logical backups (S3_BUCKET, S3_ENDPOINT, AWS_REGION;
	// PITR_S3_ENDPOINT overrides the endpoint for pgBackRest). pgBackRest speaks S3 only over
	// TLS, so an endpoint must be https.
	S3Bucket, S3Region string
	S3Host             string
	S3Port             int
	// S3Key and S3Secret are AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY; when unset pgBackRest
	// takes the instance's credentials (repo1-s3-key-type=auto).
	S3Key, S3Secret string
	// S3CAFile is a CA bundle the endpoint's certificate is verified with (PITR_S3_CA_FILE).
	S3CAFile string
	// S3PathStyle addresses buckets by path (on when S3_ENDPOINT is set, as MinIO needs).
	S3PathStyle bool

	// Dir holds the written configuration and pgBackRest's lock files (PITR_DIR, default
	// /var/lib/orchestrator/pgbackrest). The cluster's user must be able to read it:
	// PostgreSQL's archive_command runs pgBackRest with it.
	Dir string
	// Bin is the pgbackrest program (PITR_PGBACKREST, default pgbackrest on PATH).
	Bin string
	// ProcessMax is pgBackRest's parallelism for backup and restore (PITR_PROCESS_MAX,
	// default 2).
	ProcessMax int
}

// ErrNoCipherPass is returned when the repository's encryption key is missing.
var ErrNoCipherPass = errors.New("pitr: PITR_CIPHER_PASS (or PITR_CIPHER_PASS_FILE) is not set: the pgBackRest repository is encrypted (aes-256-cbc) and is neither written nor read without its key")

// LoadConfig reads the configuration from lookup (os.LookupEnv in production). A missing
// encryption key is ErrNoCipherPass.
func LoadConfig(lookup func(string) (string, bool)) (Config, error) {
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	num := func(k string, def, min int) (int, error) {
		v := get(k, "")
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			return 0, fmt.Errorf("pitr: %s=%q: want a whole number of at least %d", k, v, min)
		}
		return n, nil
	}
	c := Config{
		Stanza:      get("PITR_STANZA", "orchestrator"),
		RepoPath:    "/" + strings.Trim(get("PITR_REPO_PREFIX", "pgbackrest"), "/"),
		PGData:      get("PITR_PG_DATA", ""),
		PGSocketDir: get("PITR_PG_SOCKET_DIR", "/var/run/postgresql"),
		PGUser:      get("PITR_PG_USER", "postgres"),
		PGPassword:  get("PITR_PG_PASSWORD", ""),
		S3Bucket:    get("S3_BUCKET", ""),
		S3Region:    get("AWS_REGION", "us-east-1"),
		S3Key:       get("AWS_ACCESS_KEY_ID", ""),
		S3Secret:    get("AWS_SECRET_ACCESS_KEY", ""),
		S3CAFile:    get("PITR_S3_CA_FILE", ""),
		Dir:         get("PITR_DIR", "/var/lib/orchestrator/pgbackrest"),
		Bin:         get("PITR_PGBACKREST", "pgbackrest"),
	}
	var err error
	if c.RetentionFull, err = num("PITR_RETENTION_FULL", 2, 1); err != nil {
		return Config{}, err
	}
	if c.RetentionDiff, err = num("PITR_RETENTION_DIFF", 7, 1); err != nil {
		return Config{}, err
	}
	if c.PGPort, err = num("PITR_PG_PORT", 5432, 1); err != nil {
		return Config{}, err
	}
	if c.ProcessMax, err = num("PITR_PROCESS_MAX", 2, 1); err != nil {
		return Config{}, err
	}
	c.CipherPass = get("PITR_CIPHER_PASS", "")
	if f := get("PITR_CIPHER_PASS_FILE", ""); c.CipherPass == "" && f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return Config{}, fmt.Errorf("pitr: PITR_CIPHER_PASS_FILE: %w", err)
		}
		c.CipherPass = strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0])
	}
	// PITR_S3_ENDPOINT, when set, is pgBackRest's alone: where the application reaches the same
	// store over plain HTTP (dev) and pgBackRest needs HTTPS.
	if endpoint := get("PITR_S3_ENDPOINT", get("S3_ENDPOINT", "")); endpoint != "" {
		if c.S3Host, c.S3Port, err = splitEndpoint(endpoint); err != nil {
			return Config{}, err
		}
		c.S3PathStyle = true
	} else {
		c.S3Host, c.S3Port = "s3."+c.S3Region+".amazonaws.com", 443
	}
	if v := get("S3_FORCE_PATH_STYLE", ""); v != "" {
		c.S3PathStyle = v == "true" || v == "1"
	}
	return c, c.Validate()
}

// Validate reports the first missing or malformed setting, in one line.
func (c Config) Validate() error {
	if c.CipherPass == "" {
		return ErrNoCipherPass
	}
	for name, v := range map[string]string{"PITR_STANZA": c.Stanza, "S3_BUCKET": c.S3Bucket} {
		if v == "" {
			return fmt.Errorf("pitr: %s is not set", name)
		}
	}
	// The configuration is an INI file: a value with a line break would inject options.
	for name, v := range map[string]string{"PITR_STANZA": c.Stanza, "PITR_REPO_PREFIX": c.RepoPath, "PITR_CIPHER_PASS": c.CipherPass,
		"PITR_PG_DATA": c.PGData, "PITR_PG_SOCKET_DIR": c.PGSocketDir, "PITR_PG_USER": c.PGUser, "S3_BUCKET": c.S3Bucket,
		"AWS_REGION": c.S3Region, "AWS_ACCESS_KEY_ID": c.S3Key, "AWS_SECRET_ACCESS_KEY": c.S3Secret, "PITR_S3_CA_FILE": c.S3CAFile,
		"PITR_DIR": c.Dir} {
		if strings.ContainsAny(v, "\r\n") {
			return fmt.Errorf("pitr: %s contains a line break", name)
		}
	}
	if strings.ContainsAny(c.Stanza, " /[]=") {
		return fmt.Errorf("pitr: PITR_STANZA=%q: letters, digits, - and _ only", c.Stanza)
	}
	return nil
}

// splitEndpoint takes host and port from an https URL (or a bare host[:port]).
func splitEndpoint(endpoint string) (string, int, error) {
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", 0, fmt.Errorf("pitr: S3_ENDPOINT: %w", err)
	}
	if u.Scheme != "https" {
		return "", 0, fmt.Errorf("pitr: S3_ENDPOINT=%s: pgBackRest speaks S3 only over TLS; serve the object store over https", u.Redacted())
	}
	host, port := u.Hostname(), 443
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return "", 0, fmt.Errorf("pitr: S3_ENDPOINT port %q", p)
		}
	}
	if host == "" {
		return "", 0, errors.New("pitr: S3_ENDPOINT has no host")
	}
	return host, port, nil
}

// hostPort is the endpoint as host:port, for messages.
func (c Config) hostPort() string { return net.JoinHostPort(c.S3Host, strconv.Itoa(c.S3Port)) }
