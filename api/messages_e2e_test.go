package api

import (
	"bytes"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/appclient"
)

// TestEndToEndEncryptedMessages: two Go clients exchange messages through the real API on a
// real database; the database holds no plaintext; tampered ciphertext does not decrypt.
func TestEndToEndEncryptedMessages(t *testing.T) {
	e := newEnv(t)
	w := e.dmWorld()
	srv := httptest.NewServer(e.router)
	t.Cleanup(srv.Close)
	ctx := t.Context()

	client := func(u user) *appclient.Client {
		k, err := appclient.GenerateKey()
		require.NoError(t, err)
		c := appclient.New(srv.URL, u.Token, u.ID, k)
		require.NoError(t, c.PublishKey(ctx))
		return c
	}
	fan, creator := client(w.gold), client(w.creator)

	secret := "meet me at the secret show, the password is swordfish"
	sent, err := fan.Send(ctx, w.creator.ID, []byte(secret))
	require.NoError(t, err)
	reply := "see you there"
	_, err = creator.Send(ctx, w.gold.ID, []byte(reply))
	require.NoError(t, err)

	msgs, next, err := creator.History(ctx, w.gold.ID, "", 10)
	require.NoError(t, err)
	require.Empty(t, next)
	require.Len(t, msgs, 2)
	got, err := creator.Decrypt(ctx, msgs[1])
	require.NoError(t, err)
	require.Equal(t, secret, string(got))
	got, err = fan.Decrypt(ctx, msgs[0])
	require.NoError(t, err)
	require.Equal(t, reply, string(got))
	require.NoError(t, creator.MarkRead(ctx, sent.ID))

	// The table holds no plaintext, in any column.
	rows, err := e.pool.Query(ctx, `SELECT ciphertext, nonce, messages::text FROM messages`)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		var ct, nonce []byte
		var all string
		require.NoError(t, rows.Scan(&ct, &nonce, &all))
		for _, p := range []string{secret, reply, "swordfish", "see you"} {
			require.False(t, bytes.Contains(ct, []byte(p)))
			require.NotContains(t, all, p)
		}
		n++
	}
	require.NoError(t, rows.Err())
	require.Equal(t, 2, n)

	// A ciphertext altered on the server does not decrypt.
	_, err = e.pool.Exec(ctx, `UPDATE messages SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) WHERE id = $1`, sent.ID)
	require.NoError(t, err)
	msgs, _, err = creator.History(ctx, w.gold.ID, "", 10)
	require.NoError(t, err)
	_, err = creator.Decrypt(ctx, msgs[1])
	require.ErrorIs(t, err, appclient.ErrDecrypt)

	// The tier rule holds for the client too.
	silver := client(w.silver)
	_, err = silver.Send(ctx, w.creator.ID, []byte("hi"))
	var apiErr *appclient.APIError
	require.ErrorAs(t, err, &apiErr)
	require.Equal(t, 403, apiErr.Status)
}
