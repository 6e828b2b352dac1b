package config

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/creatorvault/orchestrator/pitr"
)

// repoFile reads a file at the repository root.
func repoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	require.NoError(t, err)
	return b
}

// awsChain are variables the AWS SDK reads itself (its credential chain, its CA bundle), not
// our loader.
var awsChain = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CA_BUNDLE"}

// TestComposeSetsOnlyWhatTheBinaryReads: docker-compose.yml parses, its orchestrator services
// run real subcommands, and every variable it sets for them is one the binary reads.
func TestComposeSetsOnlyWhatTheBinaryReads(t *testing.T) {
	var compose struct {
		Services map[string]struct {
			Build       any               `json:"build"`
			Image       string            `json:"image"`
			Command     any               `json:"command"`
			Environment map[string]string `json:"environment"`
		} `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal(repoFile(t, "docker-compose.yml"), &compose))
	for _, want := range []string{"postgres", "temporal", "temporal-ui", "minio", "worker", "api"} {
		require.Contains(t, compose.Services, want)
	}
	known := map[string]bool{}
	for _, v := range Variables {
		known[v.Name] = true
	}
	// Package pitr reads pgBackRest's settings (PITR_*, S3_*) itself, where it runs.
	_, _ = pitr.LoadConfig(func(k string) (string, bool) { known[k] = true; return "", false })
	ours := 0
	for name, svc := range compose.Services {
		if svc.Build != "." { // an image, or one built from deploy/ (postgres with pgBackRest)
			require.True(t, svc.Image != "" || svc.Build != nil, "service %s has neither build nor image", name)
			continue
		}
		ours++
		cmd, ok := svc.Command.([]any)
		require.True(t, ok && len(cmd) > 0, "service %s needs a command list", name)
		require.Contains(t, []any{"api", "worker", "migrate", "db"}, cmd[0], "service %s runs an unknown subcommand", name)
		require.NotEmpty(t, svc.Environment, name)
		for k := range svc.Environment {
			require.True(t, known[k] || slices.Contains(awsChain, k), "service %s sets %s, which the binary does not read", name, k)
		}
	}
	require.GreaterOrEqual(t, ours, 3)
}

// TestEveryVariableIsDocumented: the README's configuration table and .env.example name
// every variable.
func TestEveryVariableIsDocumented(t *testing.T) {
	readme := string(repoFile(t, "README.md"))
	example := string(repoFile(t, ".env.example"))
	for _, v := range Variables {
		require.Contains(t, readme, "`"+v.Name+"`", "README lacks %s", v.Name)
		require.True(t, strings.Contains(example, v.Name+"="), ".env.example lacks %s", v.Name)
	}
}

// TestComposeRequiresEverySecret: no password or key in docker-compose.yml falls back to a
// default (compose must refuse to start without it), and nothing but the API is published.
func TestComposeRequiresEverySecret(t *testing.T) {
	file := string(repoFile(t, "docker-compose.yml"))
	refs := regexp.MustCompile(`\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}`).FindAllStringSubmatch(file, -1)
	require.NotEmpty(t, refs)
	secret := regexp.MustCompile(`PASSWORD|SECRET|MINIO_ROOT_USER|_KEY`)
	required := 0
	for _, r := range refs {
		if !secret.MatchString(r[1]) {
			continue
		}
		require.Equal(t, ":?", r[2], "${%s} must be required (${%s:?...}), not defaulted", r[1], r[1])
		required++
	}
	for _, name := range []string{"POSTGRES_PASSWORD", "OWNER_DB_PASSWORD", "APP_DB_PASSWORD", "TREASURY_DB_PASSWORD",
		"BACKUP_DB_PASSWORD", "DRILL_DB_PASSWORD", "TEMPORAL_DB_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} {
		require.Contains(t, file, "${"+name+":?", "%s is required", name)
	}

	var compose struct {
		Services map[string]struct {
			Ports []any `json:"ports"`
		} `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(file), &compose))
	for name, svc := range compose.Services {
		if name == "api" {
			require.Len(t, svc.Ports, 1)
			continue
		}
		require.Empty(t, svc.Ports, "service %s must not be published (internal network only)", name)
	}
}
