package api

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
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

// TestCommentGateChecksShareStatements: listings served from kept pages that arrive while a
// check is in flight are checked together, by one statement for their distinct readers, and
// that statement starts after they arrived: a cancellation committed while they waited is
// seen by every one of them, and the others get the kept answer byte for byte.
func TestCommentGateChecksShareStatements(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	fan2 := e.cmSubscribeFan(p)
	e.postComment(p.fan, p.creator.ID, "first", nil)
	path := "/api/v1/comments/" + p.creator.ID.String()
	kept := map[uuid.UUID][]byte{}
	for _, u := range []user{p.fan, fan2} {
		r := e.do(http.MethodGet, path, u.Token, nil)
		require.Equal(t, http.StatusOK, r.Code, string(r.Body))
		kept[u.ID] = r.Body
	}

	gates := &e.server.comments.gates
	var mu sync.Mutex
	var batches [][]db.CommentGateKey
	entered, release := make(chan struct{}), make(chan struct{})
	gates.probe = func(ctx context.Context, q db.Querier, keys []db.CommentGateKey) ([]db.CommentGateState, error) {
		mu.Lock()
		batches = append(batches, keys)
		n := len(batches)
		mu.Unlock()
		if n == 1 {
			close(entered)
			<-release
		}
		return db.ProbeCommentGates(ctx, q, keys)
	}
	get := func(u user) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Authorization", "Bearer "+u.Token)
		w := httptest.NewRecorder()
		e.router.ServeHTTP(w, req)
		return w
	}
	queued := func() int {
		gates.mu.Lock()
		defer gates.mu.Unlock()
		return len(gates.queue)
	}

	first := make(chan *httptest.ResponseRecorder, 1)
	go func() { first <- get(p.fan) }()
	<-entered // the first listing's check is in flight
	const each = 8
	var wg sync.WaitGroup
	answers := make([]*httptest.ResponseRecorder, 2*each)
	for i := range answers {
		u := p.fan
		if i%2 == 1 {
			u = fan2
		}
		wg.Go(func() { answers[i] = get(u) })
	}
	require.Eventually(t, func() bool { return queued() == 2*each }, 10*time.Second, time.Millisecond, "the others wait")
	// Committed after they arrived, before their statement: they must see it.
	_, err := e.pool.Exec(t.Context(), `UPDATE subscriptions SET status = 'cancelled', cancelled_at = now() WHERE fan_id = $1`, fan2.ID)
	require.NoError(t, err)
	close(release)
	wg.Wait()
	r := <-first
	require.Equal(t, http.StatusOK, r.Code)
	require.Equal(t, string(kept[p.fan.ID]), r.Body.String())
	for i, r := range answers {
		if i%2 == 1 {
			require.Equal(t, http.StatusForbidden, r.Code, r.Body.String())
			continue
		}
		require.Equal(t, http.StatusOK, r.Code)
		require.Equal(t, string(kept[p.fan.ID]), r.Body.String())
	}
	require.Len(t, batches, 2, "the waiting listings shared one statement")
	require.ElementsMatch(t, []db.CommentGateKey{{Creator: p.creator.ID, Reader: p.fan.ID}, {Creator: p.creator.ID, Reader: fan2.ID}}, batches[1],
		"one row per distinct reader")
	require.Equal(t, int64(1+each), e.server.comments.kept.Load(), "the fan's listings, all from the kept answer")
}
