package api

import (
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// NUL characters cannot be stored in PostgreSQL text: every text field and query answers 400
// with the field named, and nothing is written (before, display names, revenue external ids
// and a drill's backup_id gave 500).
func TestNULCharactersRefused(t *testing.T) {
	e := newEnv(t)
	svc := e.service().Token
	admin := e.as(RoleAdmin).Token
	creator := e.newCreator()
	at := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	tip := func(id string) map[string]any {
		return map[string]any{"external_id": id, "creator_id": creator, "kind": "tip",
			"amount_stroops": 10_000_000, "asset": "XLM", "occurred_at": at}
	}
	users := e.count(`SELECT count(*) FROM users`)

	cases := map[string]struct {
		method, path string
		body         any
		code, field  string
	}{
		"display name": {http.MethodPut, "/api/v1/users/" + uuid.NewString(),
			map[string]any{"role": "fan", "display_name": "Ada\x00"}, "invalid_display_name", "display_name"},
		"display name escaped": {http.MethodPut, "/api/v1/users/" + uuid.NewString(),
			`{"role":"fan","display_name":"A\u0000da"}`, "invalid_display_name", "display_name"},
		"external id": {http.MethodPost, "/api/v1/revenue-events", tip("tx\x001"), "invalid_external_id", "external_id"},
		"external id in a batch": {http.MethodPost, "/api/v1/revenue-events/batch",
			map[string]any{"events": []any{tip("ok-1"), tip("bad\x00")}}, "invalid_external_id", "events[1].external_id"},
		"drill backup id": {http.MethodPost, "/api/v1/ops/drills", map[string]any{"backup_id": "b\x00"}, "invalid_backup_id", "backup_id"},
		"query":           {http.MethodGet, "/api/v1/users?role=fan%00", nil, "invalid_query", ""},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			token := svc
			if tc.path == "/api/v1/ops/drills" || tc.method == http.MethodGet {
				token = admin
			}
			r := e.do(tc.method, tc.path, token, tc.body)
			require.Equal(t, http.StatusBadRequest, r.Code, string(r.Body))
			require.Equal(t, tc.code, r.ErrorCode(t))
			require.Contains(t, r.JSON(t)["error"].(map[string]any)["message"], tc.field)
		})
	}
	require.Equal(t, users, e.count(`SELECT count(*) FROM users`))
	require.Zero(t, e.count(`SELECT count(*) FROM revenue_events`))
	require.Zero(t, e.count(`SELECT count(*) FROM access_log WHERE action = 'drill.start'`))
}

// All-zero and other low-order X25519 points (the published list of RFC 7748's small-order
// u-coordinates and their non-canonical encodings) are refused: any secret agreed with them is
// all zero. A real key is still accepted.
func TestKeysRefuseLowOrderPoints(t *testing.T) {
	e := newEnv(t)
	fan := e.putUser(RoleFan, "")
	tok := e.token(fan, RoleFan)
	for _, h := range []string{
		"0000000000000000000000000000000000000000000000000000000000000000", // 0
		"0100000000000000000000000000000000000000000000000000000000000000", // 1
		"e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800", // order 8
		"5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157", // order 8
		"ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p-1
		"edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p (= 0)
		"eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", // p+1 (= 1)
	} {
		raw, err := hex.DecodeString(h)
		require.NoError(t, err)
		r := e.do(http.MethodPut, "/api/v1/keys", tok, map[string]any{"public_key": base64.StdEncoding.EncodeToString(raw)})
		require.Equal(t, http.StatusBadRequest, r.Code, h)
		require.Equal(t, "invalid_public_key", r.ErrorCode(t))
	}
	require.Zero(t, e.count(`SELECT count(*) FROM user_keys`))
	r := e.do(http.MethodPut, "/api/v1/keys", tok, map[string]any{"public_key": randomB64(32)})
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
}
