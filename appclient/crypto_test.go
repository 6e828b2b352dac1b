package appclient

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"
)

func TestSharedKeyAgreesAndSealOpens(t *testing.T) {
	a, err := GenerateKey()
	require.NoError(t, err)
	b, err := GenerateKey()
	require.NoError(t, err)
	kab, err := a.SharedKey(b.PublicKey())
	require.NoError(t, err)
	kba, err := b.SharedKey(a.PublicKey())
	require.NoError(t, err)
	require.Equal(t, kab, kba)

	alice, bob := uuid.New(), uuid.New()
	ct, nonce, err := Seal(kab, alice, bob, []byte("hello Bob"))
	require.NoError(t, err)
	require.Len(t, nonce, 24)
	require.NotContains(t, string(ct), "hello")
	pt, err := Open(kba, alice, bob, ct, nonce)
	require.NoError(t, err)
	require.Equal(t, "hello Bob", string(pt))

	// Tampering, the wrong direction, the wrong key: all refused.
	bad := append([]byte(nil), ct...)
	bad[0] ^= 1
	_, err = Open(kba, alice, bob, bad, nonce)
	require.ErrorIs(t, err, ErrDecrypt)
	_, err = Open(kba, bob, alice, ct, nonce)
	require.ErrorIs(t, err, ErrDecrypt)
	c, err := GenerateKey()
	require.NoError(t, err)
	kac, err := a.SharedKey(c.PublicKey())
	require.NoError(t, err)
	_, err = Open(kac, alice, bob, ct, nonce)
	require.ErrorIs(t, err, ErrDecrypt)

	// Keys round-trip.
	a2, err := LoadKey(a.PrivateKey())
	require.NoError(t, err)
	require.Equal(t, a.PublicKey(), a2.PublicKey())
}
