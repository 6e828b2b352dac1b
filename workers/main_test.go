package workers

import (
	"testing"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestMain(m *testing.M) { testharness.Main(m) }
