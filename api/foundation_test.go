package api

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestHealth(t *testing.T) {
	e := newEnvOn(t, testharness.Pool(t))
	r := e.do(http.MethodGet, "/health", "", nil)
	require.Equal(t, http.StatusOK, r.Code)
}

func TestReadyNamesTheFailingPart(t *testing.T) {
	// No Temporal reachable: 503, and the body says it is Temporal.
	lazy, err := client.NewLazyClient(client.Options{HostPort: "127.0.0.1:1"})
	require.NoError(t, err)
	defer lazy.Close()
	e := newEnvOn(t, testharness.Pool(t), withTemporal(lazy))
	r := e.do(http.MethodGet, "/ready", "", nil)
	require.Equal(t, http.StatusServiceUnavailable, r.Code)
	checks := r.JSON(t)["checks"].(map[string]any)
	require.Equal(t, "ok", checks["postgres"])
	require.NotEqual(t, "ok", checks["temporal"])

	// With the real embedded server both are ok.
	e = newEnvOn(t, testharness.Pool(t), withTemporal(testharness.Temporal(t)))
	r = e.do(http.MethodGet, "/ready", "", nil)
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
}

func TestMetrics(t *testing.T) {
	e := newEnvOn(t, testharness.Pool(t))
	e.do(http.MethodGet, "/health", "", nil)
	r := e.do(http.MethodGet, "/metrics", "", nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Contains(t, string(r.Body), `orchestrator_http_requests_total{code="200",method="GET",route="/health"}`)
}

// TestOpenAPIMatchesRouter: every route of the router is in the document and vice versa.
func TestOpenAPIMatchesRouter(t *testing.T) {
	e := newEnvOn(t, testharness.Pool(t))
	doc, err := OpenAPIDocument()
	require.NoError(t, err)
	var spec struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	require.NoError(t, json.Unmarshal(doc, &spec))
	documented := map[string]bool{}
	for path, ops := range spec.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented[strings.ToUpper(method)+" "+path] = true
		}
	}
	param := regexp.MustCompile(`:([a-z_]+)`)
	routed := map[string]bool{}
	for _, r := range e.router.Routes() {
		routed[r.Method+" "+param.ReplaceAllString(r.Path, "{$1}")] = true
	}
	require.Equal(t, sortedKeys(documented), sortedKeys(routed))

	r := e.do(http.MethodGet, "/openapi.json", "", nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Equal(t, "3.0.3", r.JSON(t)["openapi"])
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestAuthentication: the algorithm is pinned, exp is required, and every failure is a 401
// in the access log.
func TestAuthentication(t *testing.T) {
	e := newEnv(t)
	id := uuid.New()
	now := time.Now()
	sign := func(method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
		tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
		require.NoError(t, err)
		return tok
	}
	good := jwt.MapClaims{"sub": id.String(), "role": "admin", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	cases := map[string]string{
		"no token":        "",
		"garbage":         "not.a.token",
		"alg none":        sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"other algorithm": sign(jwt.SigningMethodHS512, testSecret, good),
		"wrong key":       sign(jwt.SigningMethodHS256, []byte("another-secret-another-secret-0123456"), good),
		"expired": sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "role": "admin",
			"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()}),
		"no exp":       sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "role": "admin", "iat": now.Unix()}),
		"unknown role": sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": id.String(), "role": "root", "exp": now.Add(time.Hour).Unix()}),
		"sub not uuid": sign(jwt.SigningMethodHS256, testSecret, jwt.MapClaims{"sub": "alice", "role": "admin", "exp": now.Add(time.Hour).Unix()}),
	}
	for name, tok := range cases {
		r := e.do(http.MethodGet, "/api/v1/users", tok, nil)
		require.Equal(t, http.StatusUnauthorized, r.Code, name)
		require.Equal(t, "unauthenticated", r.ErrorCode(t), name)
	}
	require.Equal(t, len(cases), e.count(`SELECT count(*) FROM access_log WHERE action = 'auth.failed'`))

	r := e.do(http.MethodGet, "/api/v1/users", sign(jwt.SigningMethodHS256, testSecret, good), nil)
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
}

func TestUnknownRouteAndMethod(t *testing.T) {
	e := newEnvOn(t, testharness.Pool(t))
	r := e.do(http.MethodGet, "/nope", "", nil)
	require.Equal(t, http.StatusNotFound, r.Code)
	require.Equal(t, "not_found", r.ErrorCode(t))
	r = e.do(http.MethodDelete, "/health", "", nil)
	require.Equal(t, http.StatusMethodNotAllowed, r.Code)
}

func TestIssueTokenRefusesBadInput(t *testing.T) {
	_, err := IssueToken([]byte("short"), uuid.New(), RoleFan, time.Hour, time.Now())
	require.Error(t, err)
	_, err = IssueToken(testSecret, uuid.New(), Role("root"), time.Hour, time.Now())
	require.Error(t, err)
}

// TestOpenAPIRefsResolve: every $ref in the merged document points at a defined component.
func TestOpenAPIRefsResolve(t *testing.T) {
	doc, err := OpenAPIDocument()
	require.NoError(t, err)
	var root map[string]any
	require.NoError(t, json.Unmarshal(doc, &root))
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if ref, ok := x["$ref"].(string); ok {
				parts := strings.Split(strings.TrimPrefix(ref, "#/"), "/")
				var cur any = root
				for _, p := range parts {
					m, ok := cur.(map[string]any)
					require.True(t, ok, "bad $ref %s", ref)
					cur, ok = m[p]
					require.True(t, ok, "dangling $ref %s", ref)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	walk(root)
}

// TestOpenAPIDocumentIsValid: the served document passes a real OpenAPI 3 validator
// (kin-openapi): no two paths that differ only by parameter names, every path parameter
// declared, schemas and examples well formed.
func TestOpenAPIDocumentIsValid(t *testing.T) {
	doc, err := OpenAPIDocument()
	require.NoError(t, err)
	loader := openapi3.NewLoader()
	spec, err := loader.LoadFromData(doc)
	require.NoError(t, err)
	require.NoError(t, spec.Validate(loader.Context, openapi3.EnableExamplesValidation()))
}
