package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// page is a creator's page with the people around it.
type cmPage struct {
	creator     user
	fan         user // active subscription
	subID       uuid.UUID
	outsider    user // a fan without a subscription
	admin       user
	otherCreate user // another creator
}

func (e *env) newCommentPage() cmPage {
	e.t.Helper()
	creator := e.newCreator()
	tier := e.newTier(creator, 1)
	fan := e.putUser(RoleFan, "")
	sub := e.subscribe(fan, creator, tier)
	outsider := e.putUser(RoleFan, "")
	other := e.newCreator()
	return cmPage{
		creator:     user{ID: creator, Role: RoleCreator, Token: e.token(creator, RoleCreator)},
		fan:         user{ID: fan, Role: RoleFan, Token: e.token(fan, RoleFan)},
		subID:       sub,
		outsider:    user{ID: outsider, Role: RoleFan, Token: e.token(outsider, RoleFan)},
		admin:       e.as(RoleAdmin),
		otherCreate: user{ID: other, Role: RoleCreator, Token: e.token(other, RoleCreator)},
	}
}

// cmSubscribeFan adds a fan with an active subscription to p's creator.
func (e *env) cmSubscribeFan(p cmPage) user {
	e.t.Helper()
	fan := e.putUser(RoleFan, "")
	var tier uuid.UUID
	require.NoError(e.t, e.pool.QueryRow(e.t.Context(), `SELECT id FROM subscription_tiers WHERE creator_id = $1 LIMIT 1`, p.creator.ID).Scan(&tier))
	e.subscribe(fan, p.creator.ID, tier)
	return user{ID: fan, Role: RoleFan, Token: e.token(fan, RoleFan)}
}

// comment posts a comment and requires a 201.
func (e *env) postComment(u user, creator uuid.UUID, content string, parent *uuid.UUID) map[string]any {
	e.t.Helper()
	body := map[string]any{"creator_id": creator, "content": content}
	if parent != nil {
		body["parent_id"] = parent
	}
	r := e.do(http.MethodPost, "/api/v1/comments", u.Token, body)
	require.Equal(e.t, http.StatusCreated, r.Code, string(r.Body))
	return r.JSON(e.t)
}

func cmID(m map[string]any) uuid.UUID { return uuid.MustParse(m["id"].(string)) }

func TestCommentNeedsAnActiveSubscription(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()

	// A subscriber and the creator comment; the body comes back as written.
	got := e.postComment(p.fan, p.creator.ID, "Loved the new track 🎶", nil)
	require.Equal(t, "Loved the new track 🎶", got["content"])
	require.Equal(t, p.fan.ID.String(), got["author_id"])
	require.EqualValues(t, 0, got["depth"])
	require.Nil(t, got["parent_id"])
	e.postComment(p.creator, p.creator.ID, "Thanks all!", nil)

	// Nobody else: a fan without a subscription, another creator, an admin, council, service.
	for name, u := range map[string]user{"no subscription": p.outsider, "other creator": p.otherCreate,
		"admin": p.admin, "council": e.as(RoleCouncil), "service": e.service()} {
		r := e.do(http.MethodPost, "/api/v1/comments", u.Token, map[string]any{"creator_id": p.creator.ID, "content": "hi"})
		require.Equal(t, http.StatusForbidden, r.Code, name)
		require.Equal(t, "no_subscription", r.ErrorCode(t), name)
	}
	require.Equal(t, 2, e.count(`SELECT count(*) FROM comments`))
	require.Equal(t, 2, e.count(`SELECT count(*) FROM access_log WHERE action = 'comment.create'`))

	// An unknown creator is a 404.
	r := e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, map[string]any{"creator_id": uuid.New(), "content": "hi"})
	require.Equal(t, http.StatusNotFound, r.Code)

	// The author id in a body is not trusted: there is no such field.
	r = e.do(http.MethodPost, "/api/v1/comments", p.outsider.Token,
		map[string]any{"creator_id": p.creator.ID, "content": "hi", "author_id": p.fan.ID})
	require.Equal(t, http.StatusBadRequest, r.Code)
	require.Equal(t, "unknown_field", r.ErrorCode(t))
}

func TestCommentAfterTheSubscriptionEnds(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	e.postComment(p.fan, p.creator.ID, "while subscribed", nil)

	// The period runs out without renewal: the status still says active, but it opens nothing.
	start := e.clock.Now()
	e.clock.Set(start.Add(31 * 24 * time.Hour))
	r := e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, map[string]any{"creator_id": p.creator.ID, "content": "late"})
	require.Equal(t, http.StatusForbidden, r.Code, string(r.Body))
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String(), p.fan.Token, nil).Code)
	// The creator always may.
	e.postComment(p.creator, p.creator.ID, "still here", nil)

	// Cancelled: refused at once.
	e.clock.Set(start)
	fan2 := e.cmSubscribeFan(p)
	e.postComment(fan2, p.creator.ID, "hello", nil)
	var sub uuid.UUID
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT id FROM subscriptions WHERE fan_id = $1`, fan2.ID).Scan(&sub))
	require.Equal(t, http.StatusOK, e.do(http.MethodPost, "/api/v1/subscriptions/"+sub.String()+"/cancel", fan2.Token, nil).Code)
	r = e.do(http.MethodPost, "/api/v1/comments", fan2.Token, map[string]any{"creator_id": p.creator.ID, "content": "after cancel"})
	require.Equal(t, http.StatusForbidden, r.Code)
	require.Equal(t, 3, e.count(`SELECT count(*) FROM comments`))
}

func TestCommentBadInput(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	other := e.newCommentPage()
	otherComment := cmID(e.postComment(other.creator, other.creator.ID, "elsewhere", nil))
	c := p.creator.ID.String()

	cases := map[string]struct {
		body   any
		status int
		code   string
	}{
		"empty":              {map[string]any{"creator_id": c, "content": ""}, 400, "invalid_content"},
		"blank":              {map[string]any{"creator_id": c, "content": " \n\t "}, 400, "invalid_content"},
		"too long":           {map[string]any{"creator_id": c, "content": strings.Repeat("a", 10_001)}, 400, "invalid_content"},
		"too long runes":     {map[string]any{"creator_id": c, "content": strings.Repeat("é", 10_001)}, 400, "invalid_content"},
		"invalid utf-8":      {"{\"creator_id\":\"" + c + "\",\"content\":\"bad \xff\xfe byte\"}", 400, "invalid_utf8"},
		"lone surrogate":     {`{"creator_id":"` + c + `","content":"half \ud800 a pair"}`, 400, "invalid_utf8"},
		"lone low surrogate": {`{"creator_id":"` + c + `","content":"\udc00"}`, 400, "invalid_utf8"},
		"nul":                {`{"creator_id":"` + c + `","content":"a\u0000b"}`, 400, "invalid_content"},
		"missing content":    {map[string]any{"creator_id": c}, 400, "missing_field"},
		"null content":       {map[string]any{"creator_id": c, "content": nil}, 400, "missing_field"},
		"content number":     {map[string]any{"creator_id": c, "content": 7}, 400, "wrong_type"},
		"missing creator":    {map[string]any{"content": "x"}, 400, "missing_field"},
		"creator not uuid":   {map[string]any{"creator_id": "aurora", "content": "x"}, 400, "invalid_id"},
		"creator number":     {map[string]any{"creator_id": 5, "content": "x"}, 400, "wrong_type"},
		"parent not uuid":    {map[string]any{"creator_id": c, "content": "x", "parent_id": "p"}, 400, "invalid_id"},
		"unknown field":      {map[string]any{"creator_id": c, "content": "x", "pinned": true}, 400, "unknown_field"},
		"not json":           {`{"creator_id":`, 400, "invalid_json"},
		"two values":         {`{"creator_id":"` + c + `","content":"x"}{}`, 400, "invalid_json"},
		"array":              {`[]`, 400, "wrong_type"},
		"unknown parent":     {map[string]any{"creator_id": c, "content": "x", "parent_id": uuid.New()}, 422, "parent_not_found"},
		"parent elsewhere":   {map[string]any{"creator_id": c, "content": "x", "parent_id": otherComment}, 422, "parent_not_found"},
	}
	for name, tc := range cases {
		r := e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, tc.body)
		require.Equal(t, tc.status, r.Code, "%s: %s", name, r.Body)
		require.Equal(t, tc.code, r.ErrorCode(t), name)
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM comments`), "nothing written")

	// The edges are fine: exactly 10,000 characters, and a surrogate pair.
	e.postComment(p.fan, p.creator.ID, strings.Repeat("é", 10_000), nil)
	r := e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, `{"creator_id":"`+c+`","content":"pair \ud83c\udfb6"}`)
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	require.Equal(t, "pair 🎶", r.JSON(t)["content"])
}

func TestCommentThreadsAndDepthLimit(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	top := cmID(e.postComment(p.fan, p.creator.ID, "top", nil))
	parent := top
	for depth := 1; depth <= 4; depth++ {
		got := e.postComment(p.creator, p.creator.ID, fmt.Sprintf("depth %d", depth), &parent)
		require.EqualValues(t, depth, got["depth"])
		require.Equal(t, parent.String(), got["parent_id"])
		parent = cmID(got)
	}
	r := e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, map[string]any{"creator_id": p.creator.ID, "content": "too deep", "parent_id": parent})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code)
	require.Equal(t, "depth_limit", r.ErrorCode(t))

	// A second reply to the top comment, and a newer thread.
	e.clock.Set(e.clock.Now().Add(time.Second))
	e.postComment(p.fan, p.creator.ID, "second reply", &top)
	e.clock.Set(e.clock.Now().Add(time.Second))
	e.postComment(p.fan, p.creator.ID, "newer thread", nil)

	r = e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String(), p.fan.Token, nil)
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	var list struct {
		Items      []commentJSON `json:"items"`
		NextCursor *string       `json:"next_cursor"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &list))
	require.Nil(t, list.NextCursor)
	require.Len(t, list.Items, 2)
	require.Equal(t, "newer thread", *list.Items[0].Content, "newest first")
	thread := list.Items[1]
	require.Equal(t, "top", *thread.Content)
	require.Len(t, thread.Replies, 2)
	require.Equal(t, "depth 1", *thread.Replies[0].Content, "replies oldest first")
	require.Equal(t, "second reply", *thread.Replies[1].Content)
	node := thread.Replies[0]
	for depth := 2; depth <= 4; depth++ {
		require.Len(t, node.Replies, 1)
		node = node.Replies[0]
		require.Equal(t, fmt.Sprintf("depth %d", depth), *node.Content)
	}
	require.Empty(t, node.Replies)
}

func TestCommentReaders(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	e.postComment(p.fan, p.creator.ID, "hello", nil)
	path := "/api/v1/comments/" + p.creator.ID.String()
	for name, c := range map[string]struct {
		u      user
		status int
	}{
		"subscriber":      {p.fan, 200},
		"creator":         {p.creator, 200},
		"admin":           {p.admin, 200},
		"no subscription": {p.outsider, 403},
		"other creator":   {p.otherCreate, 403},
		"council":         {e.as(RoleCouncil), 403},
		"service":         {e.service(), 403},
		"no token":        {user{}, 401},
	} {
		r := e.do(http.MethodGet, path, c.u.Token, nil)
		require.Equal(t, c.status, r.Code, "%s: %s", name, r.Body)
	}
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/comments/"+uuid.NewString(), p.admin.Token, nil).Code)
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodGet, "/api/v1/comments/nope", p.admin.Token, nil).Code)
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodGet, path+"?limit=0", p.fan.Token, nil).Code)
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodGet, path+"?after=garbage", p.fan.Token, nil).Code)
}

func TestCommentPagination(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	base := e.clock.Now()
	var want []string
	for i := range 7 {
		// Two comments at the same instant: the id breaks the tie.
		e.clock.Set(base.Add(time.Duration(i/2) * time.Second))
		id := cmID(e.postComment(p.fan, p.creator.ID, "c"+strconv.Itoa(i), nil))
		e.postComment(p.creator, p.creator.ID, "reply", &id)
		want = append(want, id.String())
	}
	var got []string
	path := "/api/v1/comments/" + p.creator.ID.String() + "?limit=3"
	for pages := 0; ; pages++ {
		require.Less(t, pages, 4)
		r := e.do(http.MethodGet, path, p.fan.Token, nil)
		require.Equal(t, http.StatusOK, r.Code, string(r.Body))
		var list struct {
			Items      []commentJSON `json:"items"`
			NextCursor *string       `json:"next_cursor"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &list))
		require.LessOrEqual(t, len(list.Items), 3)
		for _, it := range list.Items {
			got = append(got, it.ID.String())
			require.Len(t, it.Replies, 1, "each thread comes whole")
		}
		if list.NextCursor == nil {
			break
		}
		path = "/api/v1/comments/" + p.creator.ID.String() + "?limit=3&after=" + *list.NextCursor
	}
	require.Len(t, got, 7)
	// Newest first: the reverse order of creation (ids are time-ordered within an instant).
	for i := range want {
		require.Equal(t, want[len(want)-1-i], got[i])
	}
}

func TestCommentEdit(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	fan2 := e.cmSubscribeFan(p)
	id := cmID(e.postComment(p.fan, p.creator.ID, "first take", nil))
	path := "/api/v1/comments/" + id.String()

	e.clock.Set(e.clock.Now().Add(time.Minute))
	r := e.do(http.MethodPut, path, p.fan.Token, map[string]any{"content": "second take"})
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	got := r.JSON(t)
	require.Equal(t, "second take", got["content"])
	edited, err := time.Parse(time.RFC3339Nano, got["edited_at"].(string))
	require.NoError(t, err)
	require.True(t, edited.Equal(e.clock.Now()))

	// Someone else: 403 when they read the page, 404 when they do not.
	for name, c := range map[string]struct {
		u      user
		status int
	}{
		"other subscriber": {fan2, 403},
		"creator":          {p.creator, 403},
		"admin":            {p.admin, 403},
		"no subscription":  {p.outsider, 404},
		"other creator":    {p.otherCreate, 404},
	} {
		r := e.do(http.MethodPut, path, c.u.Token, map[string]any{"content": "hijack"})
		require.Equal(t, c.status, r.Code, "%s: %s", name, r.Body)
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM comments WHERE content = 'second take'`))

	require.Equal(t, http.StatusBadRequest, e.do(http.MethodPut, path, p.fan.Token, map[string]any{"content": ""}).Code)
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodPut, path, p.fan.Token, map[string]any{"content": "x", "creator_id": p.creator.ID}).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodPut, "/api/v1/comments/"+uuid.NewString(), p.fan.Token, map[string]any{"content": "x"}).Code)

	// A deleted comment is not edited.
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, path, p.fan.Token, nil).Code)
	r = e.do(http.MethodPut, path, p.fan.Token, map[string]any{"content": "back"})
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, "comment_deleted", r.ErrorCode(t))
}

func TestCommentDelete(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	fan2 := e.cmSubscribeFan(p)
	byAuthor := cmID(e.postComment(p.fan, p.creator.ID, "mine", nil))
	reply := cmID(e.postComment(fan2, p.creator.ID, "a reply", &byAuthor))
	byCreator := cmID(e.postComment(p.fan, p.creator.ID, "creator removes", nil))
	byAdmin := cmID(e.postComment(p.fan, p.creator.ID, "admin removes", nil))
	kept := cmID(e.postComment(p.fan, p.creator.ID, "stays", nil))
	del := func(id uuid.UUID, u user) response {
		return e.do(http.MethodDelete, "/api/v1/comments/"+id.String(), u.Token, nil)
	}

	// Not allowed: another subscriber (403), people who cannot read the page (404).
	require.Equal(t, http.StatusForbidden, del(kept, fan2).Code)
	require.Equal(t, http.StatusNotFound, del(kept, p.outsider).Code)
	require.Equal(t, http.StatusNotFound, del(kept, p.otherCreate).Code)
	require.Equal(t, http.StatusNotFound, del(uuid.New(), p.admin).Code)

	require.Equal(t, http.StatusNoContent, del(byAuthor, p.fan).Code)
	require.Equal(t, http.StatusNoContent, del(byAuthor, p.fan).Code, "deleting again changes nothing")
	require.Equal(t, http.StatusNoContent, del(byCreator, p.creator).Code)
	require.Equal(t, http.StatusNoContent, del(byAdmin, p.admin).Code)
	require.Equal(t, 4, e.count(`SELECT count(*) FROM access_log WHERE action = 'comment.delete'`), "every delete is logged, the repeated one too")
	require.Equal(t, 3, e.count(`SELECT count(*) FROM comments WHERE deleted_at IS NOT NULL AND content = ''`), "the body is erased")

	r := e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String(), p.fan.Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	var list struct {
		Items []commentJSON `json:"items"`
	}
	require.NoError(t, json.Unmarshal(r.Body, &list))
	require.Len(t, list.Items, 4, "deleted comments keep their place")
	byID := map[uuid.UUID]commentJSON{}
	for _, c := range list.Items {
		byID[c.ID] = c
	}
	gone := byID[byAuthor]
	require.True(t, gone.Deleted)
	require.Nil(t, gone.Content)
	require.NotNil(t, gone.DeletedAt)
	require.Len(t, gone.Replies, 1, "replies stay")
	require.Equal(t, reply, gone.Replies[0].ID)
	require.Equal(t, "a reply", *gone.Replies[0].Content)
	require.False(t, byID[kept].Deleted)

	// Nobody replies to a deleted comment.
	r = e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, map[string]any{"creator_id": p.creator.ID, "content": "x", "parent_id": byAuthor})
	require.Equal(t, http.StatusUnprocessableEntity, r.Code)
	require.Equal(t, "parent_deleted", r.ErrorCode(t))
}

func TestCommentLikes(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	fan2 := e.cmSubscribeFan(p)
	id := cmID(e.postComment(p.fan, p.creator.ID, "like me", nil))
	path := "/api/v1/comments/" + id.String() + "/like"
	likes := func(r response) (int, bool) {
		require.Equal(t, http.StatusOK, r.Code, string(r.Body))
		m := r.JSON(t)
		return int(m["like_count"].(float64)), m["liked_by_me"].(bool)
	}

	n, mine := likes(e.do(http.MethodPost, path, fan2.Token, nil))
	require.Equal(t, 1, n)
	require.True(t, mine)
	n, _ = likes(e.do(http.MethodPost, path, fan2.Token, nil))
	require.Equal(t, 1, n, "liking twice is one like")
	n, _ = likes(e.do(http.MethodPost, path, p.creator.Token, nil))
	require.Equal(t, 2, n)
	require.Equal(t, 2, e.count(`SELECT count(*) FROM comment_likes`))

	// The listing shows counts and the caller's own like.
	listed := func(u user) commentJSON {
		r := e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String(), u.Token, nil)
		require.Equal(t, http.StatusOK, r.Code)
		var list struct {
			Items []commentJSON `json:"items"`
		}
		require.NoError(t, json.Unmarshal(r.Body, &list))
		require.Len(t, list.Items, 1)
		return list.Items[0]
	}
	require.Equal(t, 2, listed(fan2).LikeCount)
	require.True(t, listed(fan2).LikedByMe)
	require.False(t, listed(p.fan).LikedByMe)

	// Outsiders: 404 when they cannot see the page; an admin reads but does not like.
	require.Equal(t, http.StatusNotFound, e.do(http.MethodPost, path, p.outsider.Token, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodDelete, path, p.outsider.Token, nil).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPost, path, p.admin.Token, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodPost, "/api/v1/comments/"+uuid.NewString()+"/like", fan2.Token, nil).Code)

	// Unlike, twice.
	n, mine = likes(e.do(http.MethodDelete, path, fan2.Token, nil))
	require.Equal(t, 1, n)
	require.False(t, mine)
	n, _ = likes(e.do(http.MethodDelete, path, fan2.Token, nil))
	require.Equal(t, 1, n)

	// A deleted comment keeps its likes but takes no new ones.
	require.Equal(t, http.StatusNoContent, e.do(http.MethodDelete, "/api/v1/comments/"+id.String(), p.creator.Token, nil).Code)
	r := e.do(http.MethodPost, path, fan2.Token, nil)
	require.Equal(t, http.StatusConflict, r.Code)
	require.Equal(t, 1, listed(fan2).LikeCount)
}

func TestCommentRateLimit(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	// Mid-window, so the sliding estimate has no previous window to weigh.
	e.clock.Set(e.clock.Now().Truncate(time.Minute).Add(10 * time.Second))
	for i := range 100 {
		r := e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, map[string]any{"creator_id": p.creator.ID, "content": "n" + strconv.Itoa(i)})
		require.Equal(t, http.StatusCreated, r.Code, "comment %d: %s", i, r.Body)
	}
	r := e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, map[string]any{"creator_id": p.creator.ID, "content": "one too many"})
	require.Equal(t, http.StatusTooManyRequests, r.Code)
	require.Equal(t, "rate_limited", r.ErrorCode(t))
	secs, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err)
	require.Positive(t, secs)
	require.Equal(t, 100, e.count(`SELECT count(*) FROM comments`))

	// The limit is per user: the creator still comments.
	e.postComment(p.creator, p.creator.ID, "mine", nil)
	// And it is over after the wait.
	e.clock.Set(e.clock.Now().Add(time.Duration(secs) * time.Second))
	e.postComment(p.fan, p.creator.ID, "later", nil)
}
