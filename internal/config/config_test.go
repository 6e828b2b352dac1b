package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	t.Parallel()
	c, err := LoadFrom(lookup(nil))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:7233", c.TemporalAddress)
	require.Equal(t, "default", c.TemporalNamespace)
	require.Equal(t, "127.0.0.1:8080", c.HTTPAddr)
	require.Equal(t, "orchestrator-backups", c.S3.Bucket)
	require.Equal(t, "us-east-1", c.S3.Region)
	require.False(t, c.S3.PathStyle)
	require.Equal(t, 14*24*time.Hour, c.Treasury.Timelock)
	require.Equal(t, 7*24*time.Hour, c.Treasury.GracePeriod)
	require.Equal(t, "0 2 * * *", c.Backup.Schedule)
	require.Equal(t, "0 3 1 1,4,7,10 *", c.Backup.DrillSchedule)
	require.Equal(t, 30*time.Minute, c.Backup.DrillRTOTarget)
	require.Equal(t, 1000, c.Forecast.Paths)
}

func TestEndpointImpliesPathStyle(t *testing.T) {
	t.Parallel()
	c, err := LoadFrom(lookup(map[string]string{"S3_ENDPOINT": "http://127.0.0.1:9000"}))
	require.NoError(t, err)
	require.True(t, c.S3.PathStyle)
}

func TestBadValuesNameTheVariable(t *testing.T) {
	t.Parallel()
	cases := map[string]map[string]string{
		"DATABASE_URL":        {"DATABASE_URL": "postgres://u:secretpw@host:notaport/db"},
		"TEMPORAL_ADDRESS":    {"TEMPORAL_ADDRESS": "no-port-here"},
		"HTTP_ADDR":           {"HTTP_ADDR": "8080"},
		"JWT_SECRET":          {"JWT_SECRET": "too-short"},
		"S3_ENDPOINT":         {"S3_ENDPOINT": "not a url"},
		"LOG_LEVEL":           {"LOG_LEVEL": "loud"},
		"LOG_FORMAT":          {"LOG_FORMAT": "xml"},
		"BAILOUT_TIMELOCK":    {"BAILOUT_TIMELOCK": "two weeks"},
		"BACKUP_KEEP_NIGHTLY": {"BACKUP_KEEP_NIGHTLY": "0"},
		"S3_FORCE_PATH_STYLE": {"S3_FORCE_PATH_STYLE": "maybe"},
		"JWT_SECRET_FILE":     {"JWT_SECRET_FILE": "/nonexistent/secret"},
		"ACCESS_TOKEN_TTL":    {"ACCESS_TOKEN_TTL": "2h"},
		"ARGON2_MEMORY_KIB":   {"ARGON2_MEMORY_KIB": "4096", "ARGON2_ITERATIONS": "1"},
		"OIDC_AUDIENCE":       {"OIDC_ISSUER": "https://id.example.com/realms/main"},
		"OIDC_ROLE_MAP":       {"OIDC_ISSUER": "https://id.example.com", "OIDC_AUDIENCE": "api", "OIDC_ROLE_MAP": "staff=superuser"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := LoadFrom(lookup(env))
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), name+": "), "error %q should start with %s", err, name)
			require.NotContains(t, err.Error(), "secretpw", "errors never show a password")
			require.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestSecretFromFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "jwt")
	require.NoError(t, os.WriteFile(path, []byte(strings.Repeat("k", 40)+"\n"), 0o600))
	c, err := LoadFrom(lookup(map[string]string{"JWT_SECRET_FILE": path}))
	require.NoError(t, err)
	require.Equal(t, strings.Repeat("k", 40), string(c.Auth.JWTSecret))
}

func TestListsAreTrimmed(t *testing.T) {
	t.Parallel()
	c, err := LoadFrom(lookup(map[string]string{"COUNCIL_PUBLIC_KEYS": " a, b ,,c ", "TASK_QUEUES": "backup"}))
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b", "c"}, c.Treasury.CouncilKeys)
	require.Equal(t, []string{"backup"}, c.TaskQueues)
}

func TestRequireHelpers(t *testing.T) {
	t.Parallel()
	c, err := LoadFrom(lookup(nil))
	require.NoError(t, err)
	require.ErrorContains(t, c.RequireDatabase(), "DATABASE_URL: not set")
	require.ErrorContains(t, c.RequireJWTSecret(), "JWT_SECRET: not set")
}

// TestVariablesListIsComplete: Load reads exactly the documented variables.
func TestVariablesListIsComplete(t *testing.T) {
	t.Parallel()
	read := map[string]bool{}
	_, err := LoadFrom(func(k string) (string, bool) { read[k] = true; return "", false })
	require.NoError(t, err)
	documented := map[string]bool{}
	for _, v := range Variables {
		require.False(t, documented[v.Name], "%s listed twice", v.Name)
		documented[v.Name] = true
	}
	require.Equal(t, documented, read)
}
