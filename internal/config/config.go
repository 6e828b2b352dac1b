// Package config loads the orchestrator's configuration from environment variables.
//
// Every setting has one variable; the README's configuration table and .env.example list them
// all. Loading never panics: a bad value yields an error that names the variable and the
// problem, so a binary can exit with one clear line.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Config is the whole configuration of one orchestrator process.
type Config struct {
	// DatabaseURL is the application's PostgreSQL connection string (DATABASE_URL).
	DatabaseURL string
	// DatabaseMaxConns is the most connections the process's pool opens (DATABASE_MAX_CONNS).
	DatabaseMaxConns int
	// TemporalAddress is the Temporal frontend host:port (TEMPORAL_ADDRESS).
	TemporalAddress string
	// TemporalNamespace is the Temporal namespace (TEMPORAL_NAMESPACE).
	TemporalNamespace string
	// HTTPAddr is where the API listens (HTTP_ADDR).
	HTTPAddr string
	// LogLevel is debug, info, warn or error (LOG_LEVEL).
	LogLevel slog.Level
	// LogFormat is text or json (LOG_FORMAT).
	LogFormat string
	// TrustedProxies are the proxies whose X-Forwarded-For the API believes (TRUSTED_PROXIES,
	// comma separated CIDRs or addresses); empty trusts none.
	TrustedProxies []string
	// MetricsAddr is where a worker process serves /metrics and /health (METRICS_ADDR); empty
	// serves nothing.
	MetricsAddr string
	// TaskQueues limits which task queues a worker process serves (TASK_QUEUES, comma
	// separated); empty means all of them.
	TaskQueues []string

	Database Database
	S3       S3
	Auth     Auth
	Treasury Treasury
	Backup   Backup
	Forecast Forecast
	// PITR is point-in-time recovery's schedules.
	PITR   PITR
	SignIn SignIn
}

// S3 configures the object store.
type S3 struct {
	// Endpoint is empty for AWS S3, or the URL of an S3-compatible server (S3_ENDPOINT).
	Endpoint string
	// Bucket holds backups and drill reports (S3_BUCKET).
	Bucket string
	// Region is the AWS region (AWS_REGION).
	Region string
	// PathStyle forces path-style addressing (S3_FORCE_PATH_STYLE); on by default when an
	// endpoint is set, as MinIO and gofakes3 need it.
	PathStyle bool
	// StorageClass is the storage class of backup objects (S3_STORAGE_CLASS, e.g.
	// STANDARD_IA); empty leaves the bucket's default.
	StorageClass string
}

// Auth configures API authentication.
type Auth struct {
	// JWTSecret is the HS256 key, at least 32 bytes (JWT_SECRET or JWT_SECRET_FILE).
	JWTSecret []byte
	// AllowedOrigins lists the browser origins allowed to open WebSockets
	// (WS_ALLOWED_ORIGINS, comma separated).
	AllowedOrigins []string
}

// Defaults used when a variable is unset.
const (
	DefaultTemporalAddress   = "127.0.0.1:7233"
	DefaultTemporalNamespace = "default"
	DefaultHTTPAddr          = "127.0.0.1:8080"
	DefaultS3Bucket          = "orchestrator-backups"
	DefaultAWSRegion         = "us-east-1"
	minJWTSecretBytes        = 32
)

// Load reads the configuration from the process environment.
func Load() (*Config, error) { return LoadFrom(os.LookupEnv) }

// LoadFrom reads the configuration through lookup, which has the shape of os.LookupEnv.
func LoadFrom(lookup func(string) (string, bool)) (*Config, error) {
	e := &env{lookup: lookup}
	c := &Config{
		DatabaseURL:       e.str("DATABASE_URL", ""),
		DatabaseMaxConns:  e.integer("DATABASE_MAX_CONNS", 16, 1),
		TemporalAddress:   e.str("TEMPORAL_ADDRESS", DefaultTemporalAddress),
		TemporalNamespace: e.str("TEMPORAL_NAMESPACE", DefaultTemporalNamespace),
		HTTPAddr:          e.str("HTTP_ADDR", DefaultHTTPAddr),
		LogLevel:          e.level("LOG_LEVEL", slog.LevelInfo),
		LogFormat:         e.oneOf("LOG_FORMAT", "text", "text", "json"),
		TaskQueues:        e.list("TASK_QUEUES"),
		TrustedProxies:    e.list("TRUSTED_PROXIES"),
		MetricsAddr:       e.str("METRICS_ADDR", ""),
	}
	if c.DatabaseURL != "" {
		if _, err := pgxpool.ParseConfig(c.DatabaseURL); err != nil {
			// pgx's message may quote the URL, password included: keep only the gist.
			e.fail("DATABASE_URL", errors.New("not a valid PostgreSQL connection string"))
		}
	}
	if _, _, err := net.SplitHostPort(c.TemporalAddress); err != nil {
		e.fail("TEMPORAL_ADDRESS", fmt.Errorf("want host:port, got %q", c.TemporalAddress))
	}
	if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
		e.fail("HTTP_ADDR", fmt.Errorf("want host:port, got %q", c.HTTPAddr))
	}

	c.Database = loadDatabase(e)

	c.S3 = S3{
		Endpoint: e.url("S3_ENDPOINT"),
		Bucket:   e.str("S3_BUCKET", DefaultS3Bucket),
		Region:   e.str("AWS_REGION", DefaultAWSRegion),
	}
	c.S3.PathStyle = e.boolean("S3_FORCE_PATH_STYLE", c.S3.Endpoint != "")
	c.S3.StorageClass = e.str("S3_STORAGE_CLASS", "")

	c.Auth = Auth{
		JWTSecret:      e.secret("JWT_SECRET"),
		AllowedOrigins: e.list("WS_ALLOWED_ORIGINS"),
	}
	if n := len(c.Auth.JWTSecret); n > 0 && n < minJWTSecretBytes {
		e.fail("JWT_SECRET", fmt.Errorf("must be at least %d bytes, got %d", minJWTSecretBytes, n))
	}

	c.Treasury = loadTreasury(e)
	c.Backup = loadBackup(e)
	c.Forecast = loadForecast(e)
	c.PITR = loadPITR(e)
	c.SignIn = loadSignIn(e)
	if e.first != nil {
		return nil, e.first
	}
	return c, nil
}

// RequireDatabase reports a clear error when DATABASE_URL is unset.
func (c *Config) RequireDatabase() error {
	if c.DatabaseURL == "" {
		return errors.New("DATABASE_URL: not set (a PostgreSQL URL such as postgres://user@host:5432/db)")
	}
	return nil
}

// RequireJWTSecret reports a clear error when no JWT key is configured.
func (c *Config) RequireJWTSecret() error {
	if len(c.Auth.JWTSecret) == 0 {
		return fmt.Errorf("JWT_SECRET: not set (at least %d random bytes; or JWT_SECRET_FILE)", minJWTSecretBytes)
	}
	return nil
}

// Logger builds the process logger from LOG_LEVEL and LOG_FORMAT.
func (c *Config) Logger() *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

// env reads variables and keeps the first error, so loading reads like a list of fields.
type env struct {
	lookup func(string) (string, bool)
	first  error
}

func (e *env) fail(name string, err error) {
	if e.first == nil {
		e.first = fmt.Errorf("%s: %w", name, err)
	}
}

func (e *env) str(name, def string) string {
	if v, ok := e.lookup(name); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return def
}

func (e *env) list(name string) []string {
	var out []string
	for _, p := range strings.Split(e.str(name, ""), ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (e *env) oneOf(name, def string, allowed ...string) string {
	v := strings.ToLower(e.str(name, def))
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	e.fail(name, fmt.Errorf("want one of %s, got %q", strings.Join(allowed, ", "), v))
	return def
}

func (e *env) level(name string, def slog.Level) slog.Level {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(v)); err != nil {
		e.fail(name, fmt.Errorf("want debug, info, warn or error, got %q", v))
		return def
	}
	return l
}

func (e *env) boolean(name string, def bool) bool {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		e.fail(name, fmt.Errorf("want true or false, got %q", v))
		return def
	}
	return b
}

func (e *env) integer(name string, def, minimum int) int {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minimum {
		e.fail(name, fmt.Errorf("want a whole number of at least %d, got %q", minimum, v))
		return def
	}
	return n
}

func (e *env) duration(name string, def time.Duration) time.Duration {
	v := e.str(name, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		e.fail(name, fmt.Errorf("want a positive duration such as 30m or 336h, got %q", v))
		return def
	}
	return d
}

func (e *env) url(name string) string {
	v := e.str(name, "")
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme == "" || u.Host == "" {
		e.fail(name, fmt.Errorf("want an absolute URL such as http://127.0.0.1:9000, got %q", v))
		return ""
	}
	return v
}

// secret reads NAME, or the file named by NAME_FILE (the Docker secrets habit). The value
// itself never appears in an error.
func (e *env) secret(name string) []byte {
	if v, ok := e.lookup(name); ok && v != "" {
		return []byte(v)
	}
	path := e.str(name+"_FILE", "")
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		e.fail(name+"_FILE", fmt.Errorf("cannot read: %w", err))
		return nil
	}
	return []byte(strings.TrimSpace(string(b)))
}
