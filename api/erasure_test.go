package api

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workers"
	"github.com/creatorvault/orchestrator/workflows"
)

// erasureWorld is a user with everything the issue lists (credentials, a session, a key,
// comments and replies, likes given and received, messages both ways, a subscription and a
// payment) and a bystander with the same kinds of data.
type erasureWorld struct {
	creator, victim, bystander          user
	victimSession                       tokenPair
	victimComment, victimReply, byReply uuid.UUID
	sentMsg, receivedMsg, bystanderMsg  uuid.UUID
	subscription                        uuid.UUID
}

func (e *env) erasureWorld() erasureWorld {
	e.t.Helper()
	w := e.dmWorld()
	var gold uuid.UUID
	require.NoError(e.t, e.pool.QueryRow(e.t.Context(), `SELECT id FROM subscription_tiers WHERE creator_id = $1 AND level = 3`, w.creator.ID).Scan(&gold))
	by := e.putUser(RoleFan, "")
	e.subscribe(by, w.creator.ID, gold)
	x := erasureWorld{creator: w.creator, victim: w.gold, bystander: user{ID: by, Role: RoleFan, Token: e.token(by, RoleFan)}}
	r := e.do(http.MethodPost, "/api/v1/auth/register", e.as(RoleAdmin).Token,
		map[string]any{"user_id": x.victim.ID.String(), "email": "victim@example.com", "password": "correct horse battery"})
	require.Equal(e.t, http.StatusCreated, r.Code, "%s", r.Body)
	r = e.do(http.MethodPost, "/api/v1/auth/register", e.as(RoleAdmin).Token,
		map[string]any{"user_id": x.bystander.ID.String(), "email": "bystander@example.com", "password": "correct horse battery"})
	require.Equal(e.t, http.StatusCreated, r.Code, "%s", r.Body)
	x.victimSession = e.login("victim@example.com", "correct horse battery")
	e.login("bystander@example.com", "correct horse battery")
	for _, u := range []user{x.victim, x.bystander, x.creator} {
		r := e.do(http.MethodPut, "/api/v1/keys", u.Token, map[string]any{"public_key": randomB64(32)})
		require.Equal(e.t, http.StatusCreated, r.Code, "%s", r.Body)
	}
	post := func(u user, content string, parent *uuid.UUID) uuid.UUID {
		return cmID(e.postComment(u, x.creator.ID, content, parent))
	}
	x.victimComment = post(x.victim, "VICTIM-COMMENT top level", nil)
	x.byReply = post(x.bystander, "BYSTANDER-REPLY under the victim", &x.victimComment)
	x.victimReply = post(x.victim, "VICTIM-REPLY under the bystander", &x.byReply)
	for _, like := range []struct {
		u  user
		on uuid.UUID
	}{{x.victim, x.byReply}, {x.bystander, x.victimComment}} {
		r := e.do(http.MethodPost, "/api/v1/comments/"+like.on.String()+"/like", like.u.Token, nil)
		require.Equal(e.t, http.StatusOK, r.Code, "%s", r.Body)
	}
	send := func(from user, to uuid.UUID) uuid.UUID {
		r := e.do(http.MethodPost, "/api/v1/messages", from.Token, dm(to))
		require.Equal(e.t, http.StatusCreated, r.Code, "%s", r.Body)
		return uuid.MustParse(r.JSON(e.t)["id"].(string))
	}
	x.sentMsg = send(x.victim, x.creator.ID)
	x.receivedMsg = send(x.creator, x.victim.ID)
	x.bystanderMsg = send(x.bystander, x.creator.ID)
	send(x.creator, x.bystander.ID)
	require.NoError(e.t, e.pool.QueryRow(e.t.Context(), `SELECT id FROM subscriptions WHERE fan_id = $1`, x.victim.ID).Scan(&x.subscription))
	r = e.do(http.MethodPost, "/api/v1/revenue-events", e.service().Token, map[string]any{"external_id": "tx-victim",
		"creator_id": x.creator.ID, "subscription_id": x.subscription, "kind": "subscription_payment",
		"amount_stroops": 150_000_000, "asset": "USDC", "occurred_at": time.Now().Add(-time.Hour).UTC()})
	require.Equal(e.t, http.StatusCreated, r.Code, "%s", r.Body)
	return x
}

// export downloads a user's export and decodes it.
func (e *env) export(id uuid.UUID, token string) (map[string][]map[string]any, string) {
	e.t.Helper()
	r := e.do(http.MethodGet, "/api/v1/users/"+id.String()+"/export", token, nil)
	require.Equal(e.t, http.StatusOK, r.Code, "%s", r.Body)
	require.Contains(e.t, r.Header.Get("Content-Disposition"), "attachment")
	var raw map[string]json.RawMessage
	require.NoError(e.t, json.Unmarshal(r.Body, &raw), "the export is one JSON document")
	out := map[string][]map[string]any{}
	for k, v := range raw {
		var rows []map[string]any
		if json.Unmarshal(v, &rows) == nil {
			out[k] = rows
		}
	}
	return out, string(r.Body)
}

func ids(rows []map[string]any, key string) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r[key].(string))
	}
	return out
}

// The export holds everything of the user's and nothing of anyone else's; only the user and
// admins may download it.
func TestExportHasEverythingOfTheUserAndNothingElse(t *testing.T) {
	e := newEnv(t)
	x := e.erasureWorld()
	exp, body := e.export(x.victim.ID, x.victim.Token)

	require.Equal(t, "victim@example.com", exp["credentials"][0]["email"])
	require.NotContains(t, body, "argon2id", "no password hash")
	require.Len(t, exp["public_keys"], 1)
	require.Len(t, exp["sessions"], 1)
	require.ElementsMatch(t, []string{x.victimComment.String(), x.victimReply.String()}, ids(exp["comments"], "id"))
	require.ElementsMatch(t, []string{x.byReply.String()}, ids(exp["likes"], "comment_id"))
	require.ElementsMatch(t, []string{x.sentMsg.String(), x.receivedMsg.String()}, ids(exp["messages"], "id"))
	for _, m := range exp["messages"] {
		require.NotEmpty(t, m["ciphertext"], "messages as ciphertext (base64)")
	}
	require.ElementsMatch(t, []string{x.subscription.String()}, ids(exp["subscriptions"], "id"))
	require.Len(t, exp["payments"], 1)
	require.EqualValues(t, 150_000_000, exp["payments"][0]["amount_stroops"])
	require.NotEmpty(t, exp["access_log"], "the user's sign-in is in the access log")

	// Nothing of anyone else's: not the bystander's email, comment, message, key or session.
	require.NotContains(t, body, "bystander@example.com")
	require.NotContains(t, body, "BYSTANDER-REPLY")
	require.NotContains(t, body, x.bystanderMsg.String())
	require.NotContains(t, body, x.bystander.ID.String())

	// Someone else (not an admin) sees no such user; an admin may export.
	r := e.do(http.MethodGet, "/api/v1/users/"+x.victim.ID.String()+"/export", x.bystander.Token, nil)
	require.Equal(t, http.StatusNotFound, r.Code)
	e.export(x.victim.ID, e.as(RoleAdmin).Token)
	require.Equal(t, 2, e.count(`SELECT count(*) FROM access_log WHERE action = 'user.exported' AND target = $1`, x.victim.ID.String()))
}

// DELETE /api/v1/users/{id} runs the ErasureWorkflow on the embedded Temporal server: the
// user's identity, messages, comments' content, likes and sessions are gone, the thread keeps
// its shape, subscriptions and payments stay under the pseudonymous id, the access log no
// longer names the user, the register outside the database holds the erasure, and erasing
// again is a no-op success. Someone else erasing (not an admin) changes nothing.
func TestEraseUserEndToEnd(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	tc := testharness.Temporal(t)
	store := testharness.NewS3(t)
	var cfg *config.Config
	e := newEnv(t, withTemporal(tc), func(d *Deps) { d.Config.S3 = store.Config; cfg = d.Config })
	x := e.erasureWorld()
	path := "/api/v1/users/" + x.victim.ID.String()

	snapshot := func() string {
		var s string
		require.NoError(t, e.pool.QueryRow(ctx, `SELECT concat_ws('|',
			(SELECT count(*) FROM credentials), (SELECT count(*) FROM user_keys), (SELECT count(*) FROM comment_likes),
			(SELECT string_agg(content, ',' ORDER BY id) FROM comments), (SELECT string_agg(encode(ciphertext, 'hex'), ',' ORDER BY id) FROM messages),
			(SELECT string_agg(display_name, ',' ORDER BY id) FROM users), (SELECT count(*) FROM auth_sessions WHERE revoked_at IS NULL),
			(SELECT count(*) FROM erasures))`).Scan(&s))
		return s
	}
	before := snapshot()
	// Bad input: someone else (not an admin) sees no such user; an unknown user is 404.
	for _, tok := range []string{x.bystander.Token, x.creator.Token, e.as(RoleService).Token} {
		r := e.do(http.MethodDelete, path, tok, nil)
		require.Equal(t, http.StatusNotFound, r.Code, "%s", r.Body)
	}
	require.Equal(t, http.StatusNotFound, e.do(http.MethodDelete, "/api/v1/users/"+uuid.NewString(), e.as(RoleAdmin).Token, nil).Code)
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodDelete, "/api/v1/users/not-a-uuid", e.as(RoleAdmin).Token, nil).Code)
	require.Equal(t, before, snapshot(), "refused erasures change nothing")

	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- workers.Run(wctx, workers.Deps{Client: tc, Pool: e.pool, S3: store.Client, Config: cfg, Logger: testharness.Logger(t)},
			[]string{workflows.ErasureTaskQueue})
	}()
	defer func() { stop(); <-done }()

	// The user themself, signed in: 202, the workflow runs.
	r := e.do(http.MethodDelete, path, x.victimSession.Access, nil)
	require.Equal(t, http.StatusAccepted, r.Code, "%s", r.Body)
	require.Equal(t, workflows.ErasureWorkflowID(x.victim.ID), r.JSON(t)["workflow_id"])
	var res workflows.ErasureResult
	require.NoError(t, tc.GetWorkflow(ctx, workflows.ErasureWorkflowID(x.victim.ID), "").Get(ctx, &res))
	require.Equal(t, 1, res.Counts.SessionsRevoked)
	require.Equal(t, 2, res.Counts.MessagesWiped)
	require.Equal(t, 2, res.Counts.CommentsTombstoned)
	require.Equal(t, 1, res.Counts.LikesRemoved)

	v := x.victim.ID
	// Identity: credentials, key, display name gone; the session's token refused.
	require.Zero(t, e.count(`SELECT count(*) FROM credentials WHERE user_id = $1`, v))
	require.Zero(t, e.count(`SELECT count(*) FROM user_keys WHERE user_id = $1`, v))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM users WHERE id = $1 AND display_name = $2 AND erased_at IS NOT NULL`, v, db.ErasedDisplayName))
	require.Zero(t, e.count(`SELECT count(*) FROM auth_sessions WHERE user_id = $1 AND (revoked_at IS NULL OR ip <> '' OR user_agent <> '')`, v))
	require.Zero(t, e.count(`SELECT count(*) FROM refresh_tokens r JOIN auth_sessions s ON s.id = r.session_id WHERE s.user_id = $1`, v))
	e.eventually401(x.victimSession.Access, path)
	r = e.do(http.MethodPost, "/api/v1/auth/login", "", map[string]any{"email": "victim@example.com", "password": "correct horse battery"})
	require.Equal(t, http.StatusUnauthorized, r.Code)
	// Messages both ways: ciphertext wiped; the bystander's untouched.
	require.Equal(t, 2, e.count(`SELECT count(*) FROM messages WHERE id = ANY($1) AND ciphertext = '\x00'::bytea AND nonce = $2 AND deleted_at IS NOT NULL`,
		[]uuid.UUID{x.sentMsg, x.receivedMsg}, make([]byte, 24)))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM messages WHERE id = $1 AND length(ciphertext) > 1 AND deleted_at IS NULL`, x.bystanderMsg))
	// Comments: tombstones in place, the thread's shape kept, the bystander's reply intact.
	require.Equal(t, 2, e.count(`SELECT count(*) FROM comments WHERE author_id = $1 AND content = '' AND deleted_at IS NOT NULL`, v))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM comments WHERE id = $1 AND parent_id = $2 AND content LIKE 'BYSTANDER-REPLY%'`, x.byReply, x.victimComment))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM comments WHERE id = $1 AND parent_id = $2`, x.victimReply, x.byReply))
	r = e.do(http.MethodGet, "/api/v1/comments/"+x.creator.ID.String(), x.bystander.Token, nil)
	require.Equal(t, http.StatusOK, r.Code)
	require.NotContains(t, string(r.Body), "VICTIM-")
	require.Contains(t, string(r.Body), "BYSTANDER-REPLY")
	// Likes: the user's gone, others' on the user's comment kept.
	require.Zero(t, e.count(`SELECT count(*) FROM comment_likes WHERE user_id = $1`, v))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM comment_likes WHERE user_id = $1 AND comment_id = $2`, x.bystander.ID, x.victimComment))
	// Accounting keeps the subscription and the payment under the pseudonymous id.
	require.Equal(t, 1, e.count(`SELECT count(*) FROM subscriptions WHERE fan_id = $1`, v))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM revenue_events WHERE fan_id = $1 AND amount_stroops = 150000000`, v))
	// The access log no longer names the user (as actor or target), and keeps no IP of theirs.
	var named []string
	rows, err := e.pool.Query(ctx, `SELECT concat_ws(' ', action, target, detail) FROM access_log WHERE user_id = $1 OR strpos(target, $2) > 0 OR strpos(detail, $2) > 0`, v, v.String())
	require.NoError(t, err)
	for rows.Next() {
		var line string
		require.NoError(t, rows.Scan(&line))
		named = append(named, line)
	}
	require.NoError(t, rows.Err())
	require.Empty(t, named, "access-log rows that still name the user")
	// The bystander is untouched.
	require.Equal(t, 1, e.count(`SELECT count(*) FROM credentials WHERE user_id = $1`, x.bystander.ID))
	require.Equal(t, 1, e.count(`SELECT count(*) FROM user_keys WHERE user_id = $1`, x.bystander.ID))
	// The result is recorded, in the database and in the register outside it.
	require.Equal(t, 1, e.count(`SELECT count(*) FROM erasures WHERE user_id = $1 AND completed_at IS NOT NULL AND (result->>'messages_wiped')::int = 2`, v))
	obj, err := store.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(store.Bucket), Key: aws.String(db.ErasureRegisterPrefix + v.String() + ".json")})
	require.NoError(t, err)
	var entry db.RegisteredErasure
	require.NoError(t, json.NewDecoder(obj.Body).Decode(&entry))
	obj.Body.Close()
	require.Equal(t, v, entry.UserID)

	// The export no longer holds the person: no email, key, display name or message.
	exp, body := e.export(v, e.as(RoleAdmin).Token)
	require.Empty(t, exp["credentials"])
	require.Empty(t, exp["public_keys"])
	require.Empty(t, exp["access_log"])
	require.Equal(t, db.ErasedDisplayName, exp["user"][0]["display_name"])
	require.NotContains(t, body, "victim@example.com")
	require.NotContains(t, body, "VICTIM-")
	for _, m := range exp["messages"] {
		require.Equal(t, "AA==", m["ciphertext"])
	}

	// Erasing twice: a no-op success.
	after := snapshot()
	r = e.do(http.MethodDelete, path, e.as(RoleAdmin).Token, nil)
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	require.Equal(t, "erased", r.JSON(t)["status"])
	require.Equal(t, after, snapshot())
	require.False(t, strings.Contains(after, "VICTIM-"))
	testharness.WriteHistory(t, tc, workflows.ErasureWorkflowID(v), "erasure_history.json")
}
