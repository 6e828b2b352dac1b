package backup

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestPrunable(t *testing.T) {
	// One backup a day from 2026-01-01 to 2026-03-10 (69 days), ids d000..d068.
	var all []Candidate
	t0 := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	for i := 0; i < 69; i++ {
		all = append(all, Candidate{ID: fmt.Sprintf("d%03d", i), StartedAt: t0.AddDate(0, 0, i)})
	}
	cases := []struct {
		name             string
		verified         string
		nightly, monthly int
		kept             []string
	}{
		{"nightly only", "", 3, 0, []string{"d066", "d067", "d068"}},
		{"nightly and monthly", "", 2, 2, []string{"d031", "d059", "d067", "d068"}},
		{"newest verified kept", "d010", 2, 1, []string{"d010", "d059", "d067", "d068"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := append([]Candidate(nil), all...)
			for i := range in {
				in[i].Verified = in[i].ID == tc.verified || (tc.verified != "" && in[i].ID == "d005")
			}
			del := Prunable(in, tc.nightly, tc.monthly)
			deleted := map[string]bool{}
			for _, id := range del {
				deleted[id] = true
			}
			var kept []string
			for _, b := range all {
				if !deleted[b.ID] {
					kept = append(kept, b.ID)
				}
			}
			require.Equal(t, tc.kept, kept)
		})
	}
}
