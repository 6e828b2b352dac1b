package api

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func cmSignToken(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	require.NoError(t, err)
	return tok
}

func cmClaims(id uuid.UUID, role Role, iat, exp time.Time) jwt.MapClaims {
	return jwt.MapClaims{"sub": id.String(), "role": string(role), "iat": iat.Unix(), "exp": exp.Unix()}
}

// TestParseTokenRefusesOtherAlgorithms: only HS256 with the configured key passes; public-key
// algorithms (whatever their key), none, and tokens from the future are refused.
func TestParseTokenRefusesOtherAlgorithms(t *testing.T) {
	id := uuid.New()
	now := time.Now()
	good := cmClaims(id, RoleFan, now, now.Add(time.Hour))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)

	p, err := ParseToken(testSecret, cmSignToken(t, jwt.SigningMethodHS256, testSecret, good))
	require.NoError(t, err)
	require.Equal(t, Principal{UserID: id, Role: RoleFan}, p)

	for name, tok := range map[string]string{
		"none":       cmSignToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"HS384":      cmSignToken(t, jwt.SigningMethodHS384, testSecret, good),
		"HS512":      cmSignToken(t, jwt.SigningMethodHS512, testSecret, good),
		"RS256":      cmSignToken(t, jwt.SigningMethodRS256, rsaKey, good),
		"PS256":      cmSignToken(t, jwt.SigningMethodPS256, rsaKey, good),
		"ES256":      cmSignToken(t, jwt.SigningMethodES256, ecKey, good),
		"future iat": cmSignToken(t, jwt.SigningMethodHS256, testSecret, cmClaims(id, RoleFan, now.Add(time.Hour), now.Add(2*time.Hour))),
		"no exp":     cmSignToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "role": "fan"}),
		"expired":    cmSignToken(t, jwt.SigningMethodHS256, testSecret, cmClaims(id, RoleFan, now.Add(-2*time.Hour), now.Add(-time.Hour))),
		"no sub":     cmSignToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"role": "fan", "exp": now.Add(time.Hour).Unix()}),
		"no role":    cmSignToken(t, jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "exp": now.Add(time.Hour).Unix()}),
	} {
		_, err := ParseToken(testSecret, tok)
		require.Error(t, err, name)
	}
}

// TestNoUserIDFromHeadersOrBodies: the caller is the token's subject, whatever a header or a
// body claims.
func TestNoUserIDFromHeadersOrBodies(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	id := cmID(e.postComment(p.fan, p.creator.ID, "mine", nil))

	for _, h := range []string{"X-User-ID", "X-User-Id", "X-Forwarded-User", "X-Auth-User", "X-Remote-User"} {
		for _, path := range []string{"/api/v1/comments/" + p.creator.ID.String()} {
			req := cmReq(http.MethodGet, path, p.outsider.Token)
			req.Header.Set(h, p.fan.ID.String())
			require.Equal(t, http.StatusForbidden, e.cmServe(req).Code, h)
		}
		req := cmReq(http.MethodDelete, "/api/v1/comments/"+id.String(), p.outsider.Token)
		req.Header.Set(h, p.fan.ID.String())
		require.Equal(t, http.StatusNotFound, e.cmServe(req).Code, h)
	}
	for _, field := range []string{"author_id", "user_id"} {
		r := e.do(http.MethodPost, "/api/v1/comments", p.outsider.Token,
			map[string]any{"creator_id": p.creator.ID, "content": "as someone else", field: p.fan.ID})
		require.Equal(t, http.StatusBadRequest, r.Code, field)
	}
	// Without a token no header helps.
	req := cmReq(http.MethodGet, "/api/v1/comments/"+p.creator.ID.String(), "")
	req.Header.Set("X-User-ID", p.fan.ID.String())
	require.Equal(t, http.StatusUnauthorized, e.cmServe(req).Code)
	require.Equal(t, 1, e.count(`SELECT count(*) FROM comments WHERE deleted_at IS NULL`))
}

// TestCommentAuthorizationMatrix: every comment endpoint against every kind of caller.
func TestCommentAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	p := e.newCommentPage()
	now := time.Now()
	expired := cmSignToken(t, jwt.SigningMethodHS256, testSecret, cmClaims(p.fan.ID, RoleFan, now.Add(-2*time.Hour), now.Add(-time.Hour)))
	wrongAlg := cmSignToken(t, jwt.SigningMethodHS512, testSecret, cmClaims(p.fan.ID, RoleFan, now, now.Add(time.Hour)))
	callers := []struct {
		name  string
		token string
	}{
		{"owner", p.fan.Token},
		{"other fan", p.outsider.Token},
		{"creator", p.creator.Token},
		{"admin", p.admin.Token},
		{"no token", ""},
		{"expired token", expired},
		{"wrong algorithm", wrongAlg},
	}
	type endpoint struct {
		method, path string // %s is the comment id
		body         any
		want         []int // by caller, in the order above
	}
	creator := p.creator.ID.String()
	endpoints := []endpoint{
		{http.MethodPost, "/api/v1/comments", map[string]any{"creator_id": creator, "content": "hi"}, []int{201, 403, 201, 403, 401, 401, 401}},
		{http.MethodGet, "/api/v1/comments/" + creator, nil, []int{200, 403, 200, 200, 401, 401, 401}},
		{http.MethodPut, "/api/v1/comments/%s", map[string]any{"content": "edited"}, []int{200, 404, 403, 403, 401, 401, 401}},
		{http.MethodDelete, "/api/v1/comments/%s", nil, []int{204, 404, 204, 204, 401, 401, 401}},
		{http.MethodPost, "/api/v1/comments/%s/like", nil, []int{200, 404, 200, 403, 401, 401, 401}},
		{http.MethodDelete, "/api/v1/comments/%s/like", nil, []int{200, 404, 200, 200, 401, 401, 401}},
	}
	for _, ep := range endpoints {
		for i, c := range callers {
			// A fresh comment by the owner for every cell, so deletes do not leak across.
			id := cmID(e.postComment(p.fan, p.creator.ID, "target", nil))
			before := e.count(`SELECT count(*) FROM comments WHERE deleted_at IS NULL`)
			path := strings.ReplaceAll(ep.path, "%s", id.String())
			r := e.do(ep.method, path, c.token, ep.body)
			require.Equal(t, ep.want[i], r.Code, "%s %s as %s: %s", ep.method, ep.path, c.name, r.Body)
			if r.Code >= 400 {
				r.ErrorCode(t)
				require.Equal(t, before, e.count(`SELECT count(*) FROM comments WHERE deleted_at IS NULL`), "a refused request wrote")
				require.Equal(t, 1, e.count(`SELECT count(*) FROM comments WHERE id = $1 AND content = 'target'`, id), "a refused request changed the comment")
			}
		}
	}
}

func cmReq(method, path, token string) *http.Request {
	req := httptest.NewRequest(method, path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

func (e *env) cmServe(req *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.router.ServeHTTP(w, req)
	return w
}

// An accepted token is remembered by its exact text and served from memory only until the
// parser would refuse it; any other text (a changed signature, another key's signature) is
// verified in full, a refused token is not remembered, and the set stays bounded.
func TestVerifiedTokensServeOnlyTheExactTokenUntilItExpires(t *testing.T) {
	e := newEnv(t)
	s := e.server
	id := uuid.New()
	now := time.Now()
	tok := cmSignToken(t, jwt.SigningMethodHS256, testSecret, cmClaims(id, RoleAdmin, now, now.Add(time.Hour)))
	p, err := s.verifyToken(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, Principal{UserID: id, Role: RoleAdmin}, p)
	cached, ok := s.verified.get(tok, now)
	require.True(t, ok, "an accepted token is remembered")
	require.Equal(t, p, cached)
	exp := time.Unix(now.Add(time.Hour).Unix(), 0)
	_, ok = s.verified.get(tok, exp.Add(tokenLeeway-time.Second))
	require.True(t, ok, "served until exp plus the leeway")
	_, ok = s.verified.get(tok, exp.Add(tokenLeeway))
	require.False(t, ok, "not served once the parser would refuse it")

	// Same header and claims, another signature (its first character changed: all six of its
	// bits count): verified in full, refused.
	dot := strings.LastIndexByte(tok, '.')
	first := byte('A')
	if tok[dot+1] == 'A' {
		first = 'B'
	}
	tampered := tok[:dot+1] + string(first) + tok[dot+2:]
	require.NotEqual(t, tok, tampered)
	_, err = s.verifyToken(t.Context(), tampered)
	require.Error(t, err, "a changed signature is refused though the claims were accepted before")
	other := cmSignToken(t, jwt.SigningMethodHS256, []byte("another key of thirty-two bytes!!"), cmClaims(id, RoleAdmin, now, now.Add(time.Hour)))
	_, err = s.verifyToken(t.Context(), other)
	require.Error(t, err, "another key's signature is refused")
	expired := cmSignToken(t, jwt.SigningMethodHS256, testSecret, cmClaims(id, RoleAdmin, now.Add(-2*time.Hour), now.Add(-time.Hour)))
	_, err = s.verifyToken(t.Context(), expired)
	require.Error(t, err)
	for _, raw := range []string{tampered, other, expired} {
		_, ok := s.verified.get(raw, now)
		require.False(t, ok, "a refused token is not remembered")
	}

	var v verifiedTokens
	for i := range maxVerifiedTokens + 10 {
		v.put(strconv.Itoa(i), p, now.Add(time.Hour))
	}
	require.LessOrEqual(t, len(v.m), maxVerifiedTokens, "bounded")
}
