package demo

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// commentSpec is one demo comment on the tour creator's page: who writes (an index into the
// authors), what, which earlier comment it answers (-1 for none) and how many hours before the
// anchor.
type commentSpec struct {
	author  int
	content string
	parent  int
	hours   int
}

// The authors of demo comments: 0 is the tour's Gold fan, 1 the creator, 2.. other fans with
// a subscription active at the anchor.
var demoComments = []commentSpec{
	{0, "The live set last night was unreal. Any chance of a recording?", -1, 40},
	{1, "Yes! Mixing it this week, Gold members get it first.", 0, 38},
	{2, "Seconding this, the second half especially.", 0, 37},
	{0, "Can't wait. Thanks for doing these.", 1, 36},
	{3, "What synth is on the intro of the new track?", -1, 20},
	{1, "An old Juno-106 through a tape delay.", 4, 19},
	{2, "Welcome to all the new Bronze folks this month!", -1, 6},
}

// demoLikes are (comment, author index) pairs.
var demoLikes = [][2]int{{0, 1}, {0, 2}, {0, 3}, {1, 0}, {1, 2}, {4, 0}, {5, 3}, {6, 1}}

// CommentID is the fixed id of demo comment i (the first is the tour's COMMENT_ID).
func CommentID(i int) uuid.UUID { return ID(fmt.Sprintf("comment:%d", i)) }

// commentAuthors picks the authors: the Gold fan, the creator, then the first fans (in seeding
// order) whose subscription to the tour creator is active at the anchor.
func (d *Dataset) commentAuthors(r rows) []uuid.UUID {
	c := d.Creators[0]
	authors := []uuid.UUID{d.GoldFan, c.ID}
	for _, s := range r.subscriptions {
		fan, creator, status, end := s[1].(uuid.UUID), s[2].(uuid.UUID), s[4].(string), s[6].(time.Time)
		if creator == c.ID && fan != d.GoldFan && status == "active" && end.After(d.Anchor) {
			authors = append(authors, fan)
		}
		if len(authors) == 4 {
			break
		}
	}
	return authors
}

// seedComments writes a few threaded comments and likes on the tour creator's page.
func (d *Dataset) seedComments(ctx context.Context, tx pgx.Tx, r rows) error {
	authors := d.commentAuthors(r)
	if len(authors) < 4 {
		return fmt.Errorf("demo comments: only %d authors with an active subscription", len(authors))
	}
	creator := d.Creators[0].ID
	b := &pgx.Batch{}
	for i, s := range demoComments {
		id := CommentID(i)
		var parent *uuid.UUID
		root, depth := id, 0
		if s.parent >= 0 {
			p := CommentID(s.parent)
			parent = &p
			root = CommentID(rootOf(s.parent))
			depth = depthOf(s.parent) + 1
		}
		b.Queue(`INSERT INTO comments (id, creator_id, author_id, parent_id, root_id, depth, content, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
			id, creator, authors[s.author], parent, root, depth, s.content, d.Anchor.Add(-time.Duration(s.hours)*time.Hour))
	}
	for _, l := range demoLikes {
		b.Queue(`INSERT INTO comment_likes (comment_id, user_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			CommentID(l[0]), authors[l[1]], d.Anchor.Add(-time.Duration(demoComments[l[0]].hours-1)*time.Hour))
	}
	return tx.SendBatch(ctx, b).Close()
}

func rootOf(i int) int {
	for demoComments[i].parent >= 0 {
		i = demoComments[i].parent
	}
	return i
}

func depthOf(i int) int {
	n := 0
	for demoComments[i].parent >= 0 {
		i = demoComments[i].parent
		n++
	}
	return n
}

// writeCommentTour prints the comment requests of the tour.
func writeCommentTour(w io.Writer, apiURL string) {
	fmt.Fprintf(w, `Comments (subscribers and the creator only):
  curl -s -H "Authorization: Bearer $GOLD_TOKEN" %[1]s/api/v1/comments/$CREATOR_ID
  curl -s -H "Authorization: Bearer $FAN_TOKEN" %[1]s/api/v1/comments/$CREATOR_ID      # 403: no subscription
  curl -s -X POST -H "Authorization: Bearer $GOLD_TOKEN" -H 'Content-Type: application/json' -d "{\"creator_id\":\"$CREATOR_ID\",\"content\":\"Hello from the tour\"}" %[1]s/api/v1/comments
  curl -s -X POST -H "Authorization: Bearer $GOLD_TOKEN" %[1]s/api/v1/comments/$COMMENT_ID/like

`, apiURL)
}
