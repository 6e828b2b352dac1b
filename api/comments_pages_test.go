package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestCommentListingKeptPagesStayExact: a page an instance keeps is served again (one small
// statement) only while nothing it shows has changed, whoever changed it: another API
// instance, another process writing to the database, a rename of an author, a lapsed or
// cancelled subscription. Every answer is byte for byte what a fresh instance reads.
func TestCommentListingKeptPagesStayExact(t *testing.T) {
	e := newEnv(t)
	other := newEnvOn(t, e.pool) // a second instance on the same database
	p := e.newCommentPage()
	fan2 := e.cmSubscribeFan(p)
	top := cmID(e.postComment(p.fan, p.creator.ID, "first", nil))
	e.postComment(p.creator, p.creator.ID, "a reply", &top)
	path := "/api/v1/comments/" + p.creator.ID.String()
	pages := e.server.comments

	// list reads the page on e and requires exactly what a fresh instance reads.
	list := func(u user) string {
		t.Helper()
		r := e.do(http.MethodGet, path, u.Token, nil)
		require.Equal(t, http.StatusOK, r.Code, string(r.Body))
		fresh := newEnvOn(t, e.pool)
		fresh.clock.Set(e.clock.Now())
		want := fresh.do(http.MethodGet, path, u.Token, nil)
		require.Equal(t, string(want.Body), string(r.Body))
		return string(r.Body)
	}
	results := func() [3]int64 { return [3]int64{pages.kept.Load(), pages.liked.Load(), pages.read.Load()} }

	list(p.fan)
	require.Equal(t, [3]int64{0, 0, 1}, results())
	list(p.fan)
	require.Equal(t, [3]int64{1, 0, 1}, results(), "the same reader again: the kept answer")
	list(fan2)
	require.Equal(t, [3]int64{1, 1, 1}, results(), "another reader: the kept page with their likes")

	// A like through the other instance: the count and liked_by_me change here.
	r := other.do(http.MethodPost, "/api/v1/comments/"+top.String()+"/like", fan2.Token, nil)
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	require.Contains(t, list(fan2), `"like_count":1,"liked_by_me":true`)
	require.Contains(t, list(p.fan), `"like_count":1,"liked_by_me":false`)
	require.Equal(t, [3]int64{1, 2, 2}, results(), "a changed page is read again, once; the other reader gets it with their likes")

	// Changes made outside the API: content, an author's name.
	_, err := e.pool.Exec(t.Context(), `UPDATE comments SET content = 'changed in SQL' WHERE id = $1`, top)
	require.NoError(t, err)
	require.Contains(t, list(p.fan), "changed in SQL")
	_, err = e.pool.Exec(t.Context(), `UPDATE users SET display_name = 'Renamed Fan' WHERE id = $1`, p.fan.ID)
	require.NoError(t, err)
	require.Contains(t, list(p.creator), "Renamed Fan")

	// The gate is checked on every request, kept page or not.
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, path, p.outsider.Token, nil).Code)
	_, err = e.pool.Exec(t.Context(), `UPDATE subscriptions SET status = 'cancelled', cancelled_at = now() WHERE fan_id = $1`, fan2.ID)
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, path, fan2.Token, nil).Code)
	list(p.fan)
	e.clock.Set(e.clock.Now().Add(31 * 24 * time.Hour)) // past the period's end
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, path, p.fan.Token, nil).Code)
	require.Contains(t, list(p.creator), "changed in SQL")
}

// TestCommentPagesBounded: the kept pages and answers stay within the size limit.
func TestCommentPagesBounded(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	for i := 0; i < 3; i++ {
		e.postComment(p.fan, p.creator.ID, "a comment of some length to fill the page", nil)
	}
	r := e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String(), p.fan.Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	e.server.comments = newCommentPages(3 * len(r.Body)) // room for about one page and its answer
	for _, limit := range []string{"1", "2", "3", "4", "5", "6"} {
		r := e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String()+"?limit="+limit, p.fan.Token, nil)
		require.Equal(t, http.StatusOK, r.Code)
		cp := e.server.comments
		cp.mu.Lock()
		require.LessOrEqual(t, cp.size, cp.limit)
		require.LessOrEqual(t, len(cp.pages), 2)
		cp.mu.Unlock()
	}
}
