package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// repoFile reads a file at the repository root.
func repoFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	require.NoError(t, err)
	return b
}

// awsChain are variables the AWS SDK's standard credential chain reads, not our loader.
var awsChain = []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"}

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
	ours := 0
	for name, svc := range compose.Services {
		if svc.Build == nil {
			require.NotEmpty(t, svc.Image, "service %s has neither build nor image", name)
			continue
		}
		ours++
		cmd, ok := svc.Command.([]any)
		require.True(t, ok && len(cmd) > 0, "service %s needs a command list", name)
		require.Contains(t, []any{"api", "worker", "migrate"}, cmd[0], "service %s runs an unknown subcommand", name)
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
