package stack

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestMain(m *testing.M) { testharness.Main(m) }

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
