package pgcluster

import (
	"os"
	"os/exec"
	"testing"
)

// execSelf runs this test binary again for one test, with extra environment.
func execSelf(t *testing.T, test string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$")
	cmd.Env = append(os.Environ(), env...)
	return cmd
}
