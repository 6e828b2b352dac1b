package testharness

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	"google.golang.org/protobuf/encoding/protojson"
)

// WriteHistory saves a workflow's history as workflows/testdata/<name> for the replay tests,
// when UPDATE_HISTORY is set (otherwise it does nothing).
func WriteHistory(tb testing.TB, c client.Client, workflowID, name string) {
	tb.Helper()
	if os.Getenv("UPDATE_HISTORY") == "" {
		return
	}
	iter := c.GetWorkflowHistory(context.Background(), workflowID, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	h := &historypb.History{}
	for iter.HasNext() {
		ev, err := iter.Next()
		if err != nil {
			tb.Fatalf("history of %s: %v", workflowID, err)
		}
		h.Events = append(h.Events, ev)
	}
	b, err := protojson.MarshalOptions{Indent: "  "}.Marshal(h)
	if err != nil {
		tb.Fatalf("history of %s: %v", workflowID, err)
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "workflows", "testdata")
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		tb.Fatalf("history of %s: %v", workflowID, err)
	}
}
