package api

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

// dmWorld is a creator with Silver (2) and Gold (3) tiers, a Gold fan, a Silver fan and a fan
// without subscription.
type dmWorld struct {
	creator, gold, silver, none user
}

func (e *env) dmWorld() dmWorld {
	e.t.Helper()
	creator := e.newCreator()
	silverTier := e.newTier(creator, 2)
	goldTier := e.newTier(creator, 3)
	gold := e.putUser(RoleFan, "")
	silver := e.putUser(RoleFan, "")
	none := e.putUser(RoleFan, "")
	e.subscribe(gold, creator, goldTier)
	e.subscribe(silver, creator, silverTier)
	u := func(id uuid.UUID, r Role) user { return user{ID: id, Role: r, Token: e.token(id, r)} }
	return dmWorld{creator: u(creator, RoleCreator), gold: u(gold, RoleFan), silver: u(silver, RoleFan), none: u(none, RoleFan)}
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func dm(to uuid.UUID) map[string]any {
	return map[string]any{"recipient_id": to.String(), "encrypted_content": randomB64(40), "nonce": randomB64(24)}
}

func TestKeys(t *testing.T) {
	e := newEnv(t)
	fan := e.putUser(RoleFan, "")
	tok := e.token(fan, RoleFan)
	key := randomB64(32)

	r := e.do(http.MethodPut, "/api/v1/keys", tok, map[string]any{"public_key": key})
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	r = e.do(http.MethodPut, "/api/v1/keys", tok, map[string]any{"public_key": key})
	require.Equal(t, http.StatusOK, r.Code)

	r = e.do(http.MethodGet, "/api/v1/keys/"+fan.String(), e.as(RoleCreator).Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Equal(t, key, r.JSON(t)["public_key"])
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/keys/"+uuid.NewString(), tok, nil).Code)
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/api/v1/keys/"+fan.String(), "", nil).Code)

	for name, body := range map[string]any{
		"short":     map[string]any{"public_key": randomB64(31)},
		"not b64":   map[string]any{"public_key": "@@@"},
		"unknown":   map[string]any{"public_key": key, "private_key": key},
		"wrong typ": map[string]any{"public_key": 7},
	} {
		r := e.do(http.MethodPut, "/api/v1/keys", tok, body)
		require.Equal(t, http.StatusBadRequest, r.Code, name)
	}
	require.Equal(t, 1, e.count(`SELECT count(*) FROM user_keys`))
}

func TestSendMessageRules(t *testing.T) {
	e := newEnv(t)
	w := e.dmWorld()

	// A Gold fan may write to the creator; Silver and unsubscribed fans may not.
	r := e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID))
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	first := r.JSON(t)
	require.Equal(t, w.gold.ID.String(), first["sender_id"])
	for _, u := range []user{w.silver, w.none} {
		r := e.do(http.MethodPost, "/api/v1/messages", u.Token, dm(w.creator.ID))
		require.Equal(t, http.StatusForbidden, r.Code)
		require.Equal(t, "messages_not_allowed", r.ErrorCode(t))
	}
	// A fan may not write to another fan.
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.none.ID)).Code)

	// The creator may reply to the fan who wrote, not to others.
	require.Equal(t, http.StatusCreated, e.do(http.MethodPost, "/api/v1/messages", w.creator.Token, dm(w.gold.ID)).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPost, "/api/v1/messages", w.creator.Token, dm(w.silver.ID)).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodPost, "/api/v1/messages", w.creator.Token, dm(uuid.New())).Code)

	// A cancelled subscription closes the door at once.
	sub := e.count(`SELECT count(*) FROM subscriptions WHERE fan_id = $1 AND status = 'active'`, w.gold.ID)
	require.Equal(t, 1, sub)
	_, err := e.pool.Exec(t.Context(), `UPDATE subscriptions SET status = 'cancelled', cancelled_at = now() WHERE fan_id = $1`, w.gold.ID)
	require.NoError(t, err)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID)).Code)
	require.Equal(t, 2, e.count(`SELECT count(*) FROM messages`))
	require.Equal(t, 2, e.count(`SELECT count(*) FROM access_log WHERE action = 'message.send'`))
}

func TestSendMessageBadInput(t *testing.T) {
	e := newEnv(t)
	w := e.dmWorld()
	to := w.creator.ID.String()
	cases := map[string]struct {
		body any
		code string
	}{
		"short nonce":     {map[string]any{"recipient_id": to, "encrypted_content": randomB64(10), "nonce": randomB64(12)}, "invalid_nonce"},
		"nonce not b64":   {map[string]any{"recipient_id": to, "encrypted_content": randomB64(10), "nonce": "!!" + randomB64(24)[2:]}, "invalid_nonce"},
		"content not b64": {map[string]any{"recipient_id": to, "encrypted_content": "not base64!", "nonce": randomB64(24)}, "invalid_encrypted_content"},
		"empty content":   {map[string]any{"recipient_id": to, "encrypted_content": "", "nonce": randomB64(24)}, "invalid_encrypted_content"},
		"too large":       {map[string]any{"recipient_id": to, "encrypted_content": randomB64(64<<10 + 1), "nonce": randomB64(24)}, "invalid_encrypted_content"},
		"bad recipient":   {map[string]any{"recipient_id": "x", "encrypted_content": randomB64(10), "nonce": randomB64(24)}, "invalid_id"},
		"no recipient":    {map[string]any{"encrypted_content": randomB64(10), "nonce": randomB64(24)}, "missing_field"},
		"unknown field":   {map[string]any{"recipient_id": to, "encrypted_content": randomB64(10), "nonce": randomB64(24), "plaintext": "hi"}, "unknown_field"},
		"wrong type":      {map[string]any{"recipient_id": to, "encrypted_content": 5, "nonce": randomB64(24)}, "wrong_type"},
		"not json":        {"{", "invalid_json"},
	}
	for name, c := range cases {
		r := e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, c.body)
		require.Equal(t, http.StatusBadRequest, r.Code, name)
		require.Equal(t, c.code, r.ErrorCode(t), name)
	}
	// Exactly 64 KiB is fine.
	r := e.do(http.MethodPost, "/api/v1/messages", w.gold.Token,
		map[string]any{"recipient_id": to, "encrypted_content": randomB64(64 << 10), "nonce": randomB64(24)})
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM messages`))
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodPost, "/api/v1/messages", "", dm(w.creator.ID)).Code)
}

func TestMessageRateLimit(t *testing.T) {
	e := newEnv(t)
	w := e.dmWorld()
	for i := range 20 {
		r := e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID))
		require.Equal(t, http.StatusCreated, r.Code, "message %d: %s", i, r.Body)
	}
	r := e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID))
	require.Equal(t, http.StatusTooManyRequests, r.Code)
	require.Equal(t, "rate_limited", r.ErrorCode(t))
	require.NotEmpty(t, r.Header.Get("Retry-After"))
	require.Equal(t, 20, e.count(`SELECT count(*) FROM messages`))
}

func TestConversationsHistoryReadDelete(t *testing.T) {
	e := newEnv(t)
	w := e.dmWorld()
	var ids []string
	for range 5 {
		r := e.do(http.MethodPost, "/api/v1/messages", w.gold.Token, dm(w.creator.ID))
		require.Equal(t, http.StatusCreated, r.Code)
		ids = append(ids, r.JSON(t)["id"].(string))
	}
	r := e.do(http.MethodPost, "/api/v1/messages", w.creator.Token, dm(w.gold.ID))
	require.Equal(t, http.StatusCreated, r.Code)
	reply := r.JSON(t)["id"].(string)

	// Conversations: the creator has 5 unread from the fan; the fan has 1 unread.
	r = e.do(http.MethodGet, "/api/v1/messages/conversations", w.creator.Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	items := r.JSON(t)["items"].([]any)
	require.Len(t, items, 1)
	conv := items[0].(map[string]any)
	require.Equal(t, w.gold.ID.String(), conv["user_id"])
	require.EqualValues(t, 5, conv["unread_count"])
	require.NotEmpty(t, conv["last_message_at"])
	r = e.do(http.MethodGet, "/api/v1/messages/conversations", w.gold.Token, nil)
	require.EqualValues(t, 1, r.JSON(t)["items"].([]any)[0].(map[string]any)["unread_count"])
	r = e.do(http.MethodGet, "/api/v1/messages/conversations", w.none.Token, nil)
	require.Empty(t, r.JSON(t)["items"])

	// History with cursor pagination, newest first, the same from both sides.
	var seen []string
	after := ""
	for {
		r := e.do(http.MethodGet, "/api/v1/messages/"+w.gold.ID.String()+"?limit=4"+after, w.creator.Token, nil)
		require.Equal(t, http.StatusOK, r.Code, string(r.Body))
		body := r.JSON(t)
		for _, it := range body["items"].([]any) {
			seen = append(seen, it.(map[string]any)["id"].(string))
		}
		if body["next_cursor"] == nil {
			break
		}
		after = "&after=" + body["next_cursor"].(string)
	}
	require.Equal(t, []string{reply, ids[4], ids[3], ids[2], ids[1], ids[0]}, seen)
	// A third user sees nothing of it.
	r = e.do(http.MethodGet, "/api/v1/messages/"+w.gold.ID.String(), w.none.Token, nil)
	require.Empty(t, r.JSON(t)["items"])
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodGet, "/api/v1/messages/x", w.none.Token, nil).Code)

	// Read receipts: recipient only; others get a 404.
	require.Equal(t, http.StatusNotFound, e.do(http.MethodPost, "/api/v1/messages/"+ids[0]+"/read", w.gold.Token, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodPost, "/api/v1/messages/"+ids[0]+"/read", w.none.Token, nil).Code)
	r = e.do(http.MethodPost, "/api/v1/messages/"+ids[0]+"/read", w.creator.Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.NotNil(t, r.JSON(t)["read_at"])
	r = e.do(http.MethodGet, "/api/v1/messages/conversations", w.creator.Token, nil)
	require.EqualValues(t, 4, r.JSON(t)["items"].([]any)[0].(map[string]any)["unread_count"])

	// Delete: sender only; the recipient gets 403, a stranger 404; the content is gone.
	require.Equal(t, http.StatusForbidden, e.do(http.MethodDelete, "/api/v1/messages/"+ids[1], w.creator.Token, nil).Code)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodDelete, "/api/v1/messages/"+ids[1], w.none.Token, nil).Code)
	r = e.do(http.MethodDelete, "/api/v1/messages/"+ids[1], w.gold.Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.Nil(t, r.JSON(t)["encrypted_content"])
	require.Equal(t, 1, e.count(`SELECT count(*) FROM access_log WHERE action = 'message.delete'`))
	r = e.do(http.MethodGet, "/api/v1/messages/"+w.creator.ID.String(), w.gold.Token, nil)
	require.True(t, strings.Contains(string(r.Body), `"encrypted_content":null`))
}

// TestMessagesAuthorizationMatrix: every endpoint refuses no token, an expired token and a
// wrong algorithm.
func TestMessagesAuthorizationMatrix(t *testing.T) {
	e := newEnv(t)
	w := e.dmWorld()
	expired, err := IssueToken(testSecret, w.gold.ID, RoleFan, -time.Hour, time.Now())
	require.NoError(t, err)
	wrongAlg := "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + base64.RawURLEncoding.EncodeToString(
		[]byte(fmt.Sprintf(`{"sub":%q,"role":"fan","exp":9999999999}`, w.gold.ID))) + "."
	id := uuid.NewString()
	endpoints := []struct{ method, path string }{
		{http.MethodPut, "/api/v1/keys"},
		{http.MethodGet, "/api/v1/keys/" + id},
		{http.MethodPost, "/api/v1/messages"},
		{http.MethodGet, "/api/v1/messages/conversations"},
		{http.MethodGet, "/api/v1/messages/" + id},
		{http.MethodPost, "/api/v1/messages/" + id + "/read"},
		{http.MethodDelete, "/api/v1/messages/" + id},
	}
	for _, ep := range endpoints {
		for name, tok := range map[string]string{"none": "", "expired": expired, "alg none": wrongAlg} {
			r := e.do(ep.method, ep.path, tok, nil)
			require.Equal(t, http.StatusUnauthorized, r.Code, "%s %s with %s", ep.method, ep.path, name)
		}
	}
	require.Zero(t, e.count(`SELECT count(*) FROM messages`))
}
