package api

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
)

// A thread carries at most db.RepliesPerThread replies in a page of threads (breadth first, so
// each kept reply's parent is kept); more_replies pages the rest through
// /comments/{id}/replies, each reply exactly once and after its parent.
func TestCommentRepliesCappedPerThread(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	top := cmID(e.postComment(p.fan, p.creator.ID, "busy thread", nil))
	first := cmID(e.postComment(p.creator, p.creator.ID, "first reply", &top))
	quiet := cmID(e.postComment(p.fan, p.creator.ID, "quiet thread", nil))
	e.postComment(p.creator, p.creator.ID, "one reply", &quiet)
	// 79 more direct replies and 50 replies to the first one (seeded in SQL: the API's rate
	// limit would make this slow), all at one instant: the id orders them.
	_, err := e.pool.Exec(t.Context(), `
		INSERT INTO comments (id, creator_id, author_id, parent_id, root_id, depth, content, created_at)
		SELECT gen_random_uuid(), $1, $1, CASE WHEN i <= 79 THEN $2::uuid ELSE $3::uuid END, $2::uuid,
		       CASE WHEN i <= 79 THEN 1 ELSE 2 END, 'r' || i, $4
		  FROM generate_series(1, 129) i`, p.creator.ID, top, first, e.clock.Now())
	require.NoError(t, err)
	const total = 130

	type page struct {
		Items      []commentJSON `json:"items"`
		NextCursor *string       `json:"next_cursor"`
	}
	r := e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String(), p.fan.Token, nil)
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	var threads page
	require.NoError(t, json.Unmarshal(r.Body, &threads))
	require.Len(t, threads.Items, 2)
	var busy, calm commentJSON
	for _, it := range threads.Items {
		if it.ID == top {
			busy = it
		} else {
			calm = it
		}
	}
	require.Nil(t, calm.MoreReplies, "a short thread comes whole")
	require.Len(t, calm.Replies, 1)
	require.NotNil(t, busy.MoreReplies)

	seen := map[uuid.UUID]bool{top: true}
	var walk func(c commentJSON)
	walk = func(c commentJSON) {
		for _, r := range c.Replies {
			require.False(t, seen[r.ID], "reply %s twice", r.ID)
			seen[r.ID] = true
			walk(r)
		}
	}
	walk(busy)
	require.Len(t, seen, 1+db.RepliesPerThread, "the page holds the cap, no more")

	path := "/api/v1/comments/" + top.String() + "/replies?limit=30&after=" + *busy.MoreReplies
	for pages := 0; ; pages++ {
		require.Less(t, pages, 5)
		r := e.do(http.MethodGet, path, p.fan.Token, nil)
		require.Equal(t, http.StatusOK, r.Code, string(r.Body))
		var replies page
		require.NoError(t, json.Unmarshal(r.Body, &replies))
		require.LessOrEqual(t, len(replies.Items), 30)
		for _, it := range replies.Items {
			require.False(t, seen[it.ID], "reply %s twice", it.ID)
			require.NotNil(t, it.ParentID)
			require.True(t, seen[*it.ParentID], "reply %s before its parent", it.ID)
			seen[it.ID] = true
		}
		if replies.NextCursor == nil {
			break
		}
		path = "/api/v1/comments/" + first.String() + "/replies?limit=30&after=" + *replies.NextCursor // any comment of the thread names it
	}
	require.Len(t, seen, 1+total, "every reply exactly once")

	// Without after, from the first reply; readers only.
	r = e.do(http.MethodGet, "/api/v1/comments/"+top.String()+"/replies?limit=1", p.creator.Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/api/v1/comments/"+top.String()+"/replies", p.outsider.Token, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/comments/"+uuid.NewString()+"/replies", p.admin.Token, nil).Code)
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodGet, "/api/v1/comments/"+top.String()+"/replies?after=junk", p.fan.Token, nil).Code)
}
