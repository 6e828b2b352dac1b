package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// devOnly are packages only `orchestrator dev` needs: the embedded Temporal server and the
// dev package that starts it.
var devOnly = regexp.MustCompile(`(?m)^(go\.temporal\.io/server(/.*)?|github\.com/creatorvault/orchestrator/internal/devserver)$`)

// TestNoDevBuild: the production image's binary (-tags nodev, as the Dockerfile builds it)
// links neither the embedded Temporal server nor the dev package, still builds, and its
// `dev` refuses in one line whatever follows; the full binary (make build) still has both.
func TestNoDevBuild(t *testing.T) {
	deps := func(tags ...string) string {
		out, err := exec.Command("go", append(append([]string{"list", "-deps"}, tags...), ".")...).CombinedOutput()
		require.NoError(t, err, "%s", out)
		return string(out)
	}
	require.NotEmpty(t, devOnly.FindAllString(deps(), -1), "the full binary links the dev server")
	require.Empty(t, devOnly.FindAllString(deps("-tags", "nodev"), -1), "-tags nodev leaves the dev server out")

	docker, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	require.Regexp(t, `(?m)^RUN .*go build -tags nodev .*\./cmd/orchestrator$`, string(docker), "the production image is built with -tags nodev")

	bin := filepath.Join(t.TempDir(), "orchestrator")
	out, err := exec.Command("go", "build", "-tags", "nodev", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, args := range [][]string{{"dev"}, {"dev", "--data-dir", "x", "--ui-port", "0"}} {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		cmd.Dir = t.TempDir()
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "%s", out)
		require.Equal(t, 1, exit.ExitCode())
		require.Equal(t, "orchestrator: dev: this binary was built without dev (-tags nodev, the production image); "+
			"build the full binary with `make build` for `orchestrator dev`\n", string(out))
		entries, err := os.ReadDir(cmd.Dir)
		require.NoError(t, err)
		require.Empty(t, entries, "nothing made")
	}
	// The rest of the binary is there.
	out, err = exec.Command(bin, "worker", "--help").CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.True(t, strings.Contains(string(out), "Run the Temporal workers"), "%s", out)
}
