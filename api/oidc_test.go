package api

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/internal/config"
)

// testIssuer is a local OpenID Connect provider: discovery and a JWKS endpoint over real
// HTTP, with signing keys the test generates and rotates.
type testIssuer struct {
	t        *testing.T
	srv      *httptest.Server
	mu       sync.Mutex
	keys     []jose.JSONWebKey
	jwksHits atomic.Int64
}

type issuerKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv any
}

func newTestIssuer(t *testing.T) *testIssuer {
	i := &testIssuer{t: t}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": i.srv.URL, "jwks_uri": i.srv.URL + "/jwks",
			"authorization_endpoint": i.srv.URL + "/auth", "token_endpoint": i.srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, _ *http.Request) {
		i.jwksHits.Add(1)
		i.mu.Lock()
		set := jose.JSONWebKeySet{Keys: append([]jose.JSONWebKey(nil), i.keys...)}
		i.mu.Unlock()
		_ = json.NewEncoder(w).Encode(set)
	})
	i.srv = httptest.NewServer(mux)
	t.Cleanup(i.srv.Close)
	return i
}

// newKey generates a key of alg; publish puts its public half in the JWKS.
func (i *testIssuer) newKey(alg jose.SignatureAlgorithm) issuerKey {
	i.t.Helper()
	k := issuerKey{kid: uuid.NewString(), alg: alg}
	var err error
	switch alg {
	case jose.RS256, jose.RS512:
		k.priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		k.priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k.priv, err = ed25519.GenerateKey(rand.Reader)
	}
	require.NoError(i.t, err)
	return k
}

func publicOf(priv any) any {
	switch k := priv.(type) {
	case *rsa.PrivateKey:
		return &k.PublicKey
	case *ecdsa.PrivateKey:
		return &k.PublicKey
	case ed25519.PrivateKey:
		return k.Public()
	}
	return nil
}

// publish makes keys the JWKS (a rotation replaces the set).
func (i *testIssuer) publish(keys ...issuerKey) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = nil
	for _, k := range keys {
		i.keys = append(i.keys, jose.JSONWebKey{Key: publicOf(k.priv), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"})
	}
}

// sign makes a token with k; claims get iss (this issuer), aud, sub, iat and exp unless set.
func (i *testIssuer) sign(k issuerKey, claims map[string]any) string {
	i.t.Helper()
	now := time.Now()
	full := map[string]any{"iss": i.srv.URL, "aud": "orchestrator-api", "sub": "kc-user-1",
		"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for key, v := range claims {
		if v == nil {
			delete(full, key)
			continue
		}
		full[key] = v
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(i.t, err)
	payload, err := json.Marshal(full)
	require.NoError(i.t, err)
	obj, err := signer.Sign(payload)
	require.NoError(i.t, err)
	tok, err := obj.CompactSerialize()
	require.NoError(i.t, err)
	return tok
}

func withOIDC(o config.OIDC) envOption {
	return func(d *Deps) { d.Config.SignIn.OIDC = o }
}

// An outside identity provider's access tokens are accepted next to the built-in sign-in:
// verified against the provider's published keys (discovery + JWKS, refetched on an unknown
// kid), algorithms pinned, issuer, audience and expiry checked, the role mapped from a claim.
func TestOIDCProviderTokens(t *testing.T) {
	iss := newTestIssuer(t)
	other := newTestIssuer(t)
	e := newEnv(t, withOIDC(config.OIDC{Issuer: iss.srv.URL, Audience: "orchestrator-api",
		RoleClaim: "realm_access.roles", RoleMap: map[string]string{"platform-admin": "admin"}}))
	rsaKey, ecKey, edKey := iss.newKey(jose.RS256), iss.newKey(jose.ES256), iss.newKey(jose.EdDSA)
	iss.publish(rsaKey, ecKey, edKey)
	otherKey := other.newKey(jose.RS256)
	other.publish(otherKey)

	admin := map[string]any{"realm_access": map[string]any{"roles": []string{"offline_access", "platform-admin"}}}
	fan := map[string]any{"realm_access": map[string]any{"roles": []string{"fan"}}}
	get := func(tok string) response { return e.do(http.MethodGet, "/api/v1/users", tok, nil) }
	refused := func(tok, why string) {
		t.Helper()
		r := get(tok)
		require.Equal(t, http.StatusUnauthorized, r.Code, "%s: %s", why, r.Body)
		require.Equal(t, "unauthenticated", r.ErrorCode(t), why)
	}

	// Every pinned algorithm; the role comes from the claim through the map.
	for _, k := range []issuerKey{rsaKey, ecKey, edKey} {
		r := get(iss.sign(k, admin))
		require.Equal(t, http.StatusOK, r.Code, "%s: %s", k.alg, r.Body)
	}
	r := get(iss.sign(ecKey, fan))
	require.Equal(t, http.StatusForbidden, r.Code, "a provider fan is authenticated, not an admin: %s", r.Body)
	require.EqualValues(t, 1, iss.jwksHits.Load(), "the key set is cached")
	// The built-in sign-in stays: the API's own tokens still work.
	require.Equal(t, http.StatusOK, get(e.as(RoleAdmin).Token).Code)

	// Expired, wrong audience, wrong issuer, no role: refused.
	r = get(iss.sign(rsaKey, map[string]any{"exp": time.Now().Add(-time.Minute).Unix(), "realm_access": admin["realm_access"]}))
	require.Equal(t, http.StatusUnauthorized, r.Code)
	require.Contains(t, string(r.Body), "expired")
	refused(iss.sign(rsaKey, map[string]any{"aud": "someone-else", "realm_access": admin["realm_access"]}), "audience")
	refused(iss.sign(rsaKey, map[string]any{"aud": nil, "realm_access": admin["realm_access"]}), "no audience")
	refused(iss.sign(rsaKey, map[string]any{"iss": other.srv.URL, "realm_access": admin["realm_access"]}), "issuer claim")
	refused(iss.sign(rsaKey, map[string]any{"exp": nil, "realm_access": admin["realm_access"]}), "no expiry")
	r = get(iss.sign(rsaKey, map[string]any{"realm_access": map[string]any{"roles": []string{"staff"}}}))
	require.Equal(t, http.StatusUnauthorized, r.Code)
	require.Contains(t, string(r.Body), "maps to no role")

	// A token of another issuer (its own keys, its own iss): refused.
	refused(other.sign(otherKey, admin), "another issuer")
	// Our issuer's name on a token signed with a key it never published: refused.
	refused(iss.sign(otherKey, admin), "foreign key")
	// An algorithm outside the pinned ones, with a published key: refused.
	rs512 := iss.newKey(jose.RS512)
	iss.publish(rsaKey, ecKey, edKey, rs512)
	refused(iss.sign(rs512, admin), "RS512 is not pinned")
	// HS256 with a guessed key (the alg-confusion attempt): refused by the own-token parser.
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": iss.srv.URL, "aud": "orchestrator-api",
		"sub": uuid.NewString(), "role": "admin", "exp": time.Now().Add(time.Minute).Unix()}).SignedString([]byte("a guessed key a guessed key 0123"))
	require.NoError(t, err)
	refused(hs, "HS256 with another key")

	// Key rotation: the provider publishes a new key and drops the old one. A token with the
	// new kid makes the API fetch the key set again and is accepted; the old key's tokens
	// stop working.
	rotated := iss.newKey(jose.RS256)
	iss.publish(rotated, ecKey, edKey)
	hits := iss.jwksHits.Load()
	require.Equal(t, http.StatusOK, get(iss.sign(rotated, admin)).Code)
	require.Greater(t, iss.jwksHits.Load(), hits, "an unknown kid refetches the key set")
	// go-oidc hands the refetched set to the request that asked for it a moment before it
	// stores the set for later requests (seen in CI: the next request still verified with the
	// retired key), so the old key's tokens stop working once the new set is stored.
	retired := iss.sign(rsaKey, admin)
	require.Eventually(t, func() bool { return get(retired).Code == http.StatusUnauthorized },
		time.Second, 5*time.Millisecond, "the retired key's tokens stop working")
	refused(retired, "retired key")

	// Every refusal is in the access log.
	require.GreaterOrEqual(t, e.count(`SELECT count(*) FROM access_log WHERE action = 'auth.failed'`), 10)
}
