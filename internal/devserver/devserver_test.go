package devserver

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
)

func freeTestPort(t *testing.T) int {
	t.Helper()
	p, err := freePort("127.0.0.1")
	require.NoError(t, err)
	return p
}

// TestStateSurvivesRestart starts the server on a file, starts a workflow, restarts the
// server on the same file and finds the workflow again; the Web UI serves its page.
func TestStateSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "temporal.db")
	opts := Options{DatabaseFile: file, FrontendPort: freeTestPort(t), UIPort: freeTestPort(t)}

	srv, err := Start(ctx, opts)
	require.NoError(t, err)
	c, err := client.Dial(client.Options{HostPort: srv.FrontendAddr(), Logger: quietLogger{}})
	require.NoError(t, err)
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "kept-across-restarts", TaskQueue: "nobody-polls"}, "SomeWorkflow")
	require.NoError(t, err)

	resp, err := http.Get(srv.UIURL())
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, strings.ToLower(string(body)), "<html")

	c.Close()
	require.NoError(t, srv.Stop())

	srv, err = Start(ctx, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Stop() })
	c, err = client.Dial(client.Options{HostPort: srv.FrontendAddr(), Logger: quietLogger{}})
	require.NoError(t, err)
	defer c.Close()
	desc, err := c.DescribeWorkflowExecution(ctx, "kept-across-restarts", run.GetRunID())
	require.NoError(t, err)
	require.Equal(t, "SomeWorkflow", desc.GetWorkflowExecutionInfo().GetType().GetName())
}

func TestPortInUseIsAClearError(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	_, err = Start(context.Background(), Options{FrontendPort: port})
	require.ErrorContains(t, err, "already in use")
}
