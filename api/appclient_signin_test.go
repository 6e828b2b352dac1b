package api

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/appclient"
)

// appclient signs in with a password and keeps itself signed in: it refreshes ahead of the
// access token's expiry, and after a 401 (a role change) it refreshes once and retries.
func TestAppClientSignsInAndRefreshes(t *testing.T) {
	pool := mustFresh(t)
	short := func(d *Deps) { d.Config.SignIn.AccessTokenTTL = 20 * time.Second }
	in := serve(t, newEnvOn(t, pool, withContext(t.Context()), short))
	id := in.signInUser(RoleFan, "ap@example.com", "correct horse battery")
	ctx := t.Context()

	_, err := appclient.SignIn(ctx, in.srv.URL, "ap@example.com", "wrong password", nil)
	var apiErr *appclient.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, "invalid_credentials", apiErr.Code)

	keys, err := appclient.GenerateKey()
	require.NoError(t, err)
	c, err := appclient.SignIn(ctx, in.srv.URL, "ap@example.com", "correct horse battery", keys)
	require.NoError(t, err)
	require.Equal(t, id, c.UserID)
	require.Equal(t, "fan", c.Role())
	// The token lives 20 s, less than the client's refresh margin: the next call refreshes.
	require.NoError(t, c.PublishKey(ctx))
	require.Equal(t, 2, in.count(`SELECT count(*) FROM refresh_tokens WHERE session_id = $1`, c.SessionID))

	// A long-lived access token whose role changes: refused once, refreshed, retried.
	long := serve(t, newEnvOn(t, pool, withContext(t.Context())))
	c2, err := appclient.SignIn(ctx, long.srv.URL, "ap@example.com", "correct horse battery", keys)
	require.NoError(t, err)
	r := long.do(http.MethodPut, "/api/v1/users/"+id.String(), long.as(RoleAdmin).Token, map[string]any{"role": "council", "display_name": "Ap"})
	require.Equal(t, http.StatusOK, r.Code, "%s", r.Body)
	long.eventually401(c2.Token, "/api/v1/users/"+id.String())
	require.NoError(t, c2.PublishKey(ctx))
	require.Equal(t, "council", c2.Role())

	// Logout ends the session: the client cannot refresh its way back in.
	require.NoError(t, c2.Logout(ctx))
	long.eventually401(c2.Token, "/api/v1/users/"+id.String())
	err = c2.PublishKey(ctx)
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, http.StatusUnauthorized, apiErr.Status)
}
