package backup

import (
	"sort"
	"time"
)

// Candidate is a complete backup as retention sees it.
type Candidate struct {
	ID        string
	StartedAt time.Time
	Verified  bool
}

// Prunable returns the ids retention deletes: it keeps the newest keepNightly backups, the
// first backup of each of the newest keepMonthly months, and always the newest verified one.
func Prunable(all []Candidate, keepNightly, keepMonthly int) []string {
	c := append([]Candidate(nil), all...)
	sort.Slice(c, func(i, j int) bool {
		if !c[i].StartedAt.Equal(c[j].StartedAt) {
			return c[i].StartedAt.After(c[j].StartedAt)
		}
		return c[i].ID > c[j].ID
	})
	keep := map[string]bool{}
	for i := 0; i < len(c) && i < keepNightly; i++ {
		keep[c[i].ID] = true
	}
	// The first backup of each month: walking newest first, the last one seen in a month.
	firstOfMonth := map[string]string{}
	var months []string
	for _, b := range c {
		m := b.StartedAt.UTC().Format("2006-01")
		if _, ok := firstOfMonth[m]; !ok {
			months = append(months, m)
		}
		firstOfMonth[m] = b.ID
	}
	for i := 0; i < len(months) && i < keepMonthly; i++ {
		keep[firstOfMonth[months[i]]] = true
	}
	for _, b := range c {
		if b.Verified {
			keep[b.ID] = true
			break
		}
	}
	var out []string
	for _, b := range c {
		if !keep[b.ID] {
			out = append(out, b.ID)
		}
	}
	return out
}
