package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/legacy"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// checkAgainstOpenAPI returns how many calls it has checked so far, and makes e.do validate each request it sends (when the API accepted it:
// refused requests are often invalid on purpose) and every answer, refusals included, against
// /openapi.json with kin-openapi: paths, parameters, bodies, status codes and schemas.
func checkAgainstOpenAPI(t *testing.T, e *env) (checked func() int) {
	doc, err := OpenAPIDocument()
	require.NoError(t, err)
	spec, err := openapi3.NewLoader().LoadFromData(doc)
	require.NoError(t, err)
	spec.Servers = nil // the requests go to the router directly
	router, err := legacy.NewRouter(spec)
	require.NoError(t, err)
	n := 0
	e.conform = func(method, path string, header http.Header, body []byte, code int, respHeader http.Header, resp []byte) {
		t.Helper()
		n++
		req := httptest.NewRequest(method, path, bytes.NewReader(body))
		req.Header = header
		route, params, err := router.FindRoute(req)
		require.NoError(t, err, "%s %s is not in the document", method, path)
		opts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}
		in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: opts}
		if code < 400 {
			require.NoError(t, openapi3filter.ValidateRequest(context.Background(), in), "request %s %s (%d)", method, path, code)
		}
		out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: code, Header: respHeader,
			Body: io.NopCloser(bytes.NewReader(resp)), Options: opts}
		require.NoError(t, openapi3filter.ValidateResponse(context.Background(), out), "answer to %s %s: %d %s", method, path, code, resp)
	}
	return func() int { return n }
}

// A client's day through the API, every request and answer checked against the document:
// accounts, tiers and subscriptions, comments with replies and likes, keys and messages,
// revenue, and the refusals a client meets (400, 401, 403, 404).
func TestRequestsAndAnswersMatchOpenAPI(t *testing.T) {
	e := newEnv(t)
	checked := checkAgainstOpenAPI(t, e)
	svc := e.service().Token
	admin := e.as(RoleAdmin).Token

	p := e.newCommentPage()
	w := e.dmWorld()
	e.do(http.MethodGet, "/api/v1/users/"+p.fan.ID.String(), svc, nil)
	e.do(http.MethodGet, "/api/v1/users?role=fan&limit=2", admin, nil)
	e.do(http.MethodGet, "/api/v1/creators", p.fan.Token, nil)
	e.do(http.MethodGet, "/api/v1/creators/"+p.creator.ID.String(), p.fan.Token, nil)
	e.do(http.MethodGet, "/api/v1/creators/"+p.creator.ID.String()+"/tiers", p.fan.Token, nil)
	e.do(http.MethodGet, "/api/v1/subscriptions", p.fan.Token, nil)
	e.do(http.MethodGet, "/api/v1/subscriptions/"+p.subID.String(), p.fan.Token, nil)

	top := cmID(e.postComment(p.fan, p.creator.ID, "first!", nil))
	reply := cmID(e.postComment(p.creator, p.creator.ID, "thanks", &top))
	e.do(http.MethodPost, "/api/v1/comments/"+reply.String()+"/like", p.fan.Token, nil)
	e.do(http.MethodPut, "/api/v1/comments/"+top.String(), p.fan.Token, map[string]any{"content": "first! (edited)"})
	e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String()+"?limit=10", p.fan.Token, nil)
	e.do(http.MethodGet, "/api/v1/comments/"+top.String()+"/replies", p.fan.Token, nil)
	e.do(http.MethodDelete, "/api/v1/comments/"+reply.String()+"/like", p.fan.Token, nil)
	e.do(http.MethodDelete, "/api/v1/comments/"+reply.String(), p.creator.Token, nil)

	for _, u := range []user{w.gold, w.creator} {
		e.do(http.MethodPut, "/api/v1/keys", u.Token, map[string]any{"public_key": randomB64(32)})
	}
	e.do(http.MethodGet, "/api/v1/keys/"+w.creator.ID.String(), w.gold.Token, nil)
	r := e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID))
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	msg := r.JSON(t)["id"].(string)
	e.do(http.MethodGet, "/api/v1/messages/conversations", w.creator.Token, nil)
	e.do(http.MethodGet, "/api/v1/messages/"+w.gold.ID.String(), w.creator.Token, nil)
	e.do(http.MethodPost, "/api/v1/messages/"+msg+"/read", w.creator.Token, nil)
	e.do(http.MethodDelete, "/api/v1/messages/"+msg, w.gold.Token, nil)

	ev := map[string]any{"external_id": "tx-" + uuid.NewString(), "creator_id": p.creator.ID, "kind": "tip",
		"amount_stroops": 10_000_000, "asset": "XLM", "occurred_at": e.clock.Now().Add(-1e9)}
	r = e.do(http.MethodPost, "/api/v1/revenue-events", svc, ev)
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	e.do(http.MethodGet, "/api/v1/revenue-events", p.creator.Token, nil)
	e.do(http.MethodGet, fmt.Sprintf("/api/v1/revenue-events/%s", r.JSON(t)["id"]), p.creator.Token, nil)

	// Refusals have the documented error shape and status.
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodPost, "/api/v1/comments", p.fan.Token, `{"creator_id":`).Code)
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/api/v1/creators", "", nil).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String(), p.outsider.Token, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/keys/"+uuid.NewString(), w.gold.Token, nil).Code)
	e.do(http.MethodGet, "/health", "", nil)
	require.GreaterOrEqual(t, checked(), 40, "the helpers' calls are checked too")
}
