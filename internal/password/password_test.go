package password

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestArgon2idParametersAndRehash(t *testing.T) {
	t.Parallel()
	_, err := NewHasher(Params{MemoryKiB: 4096, Iterations: 1, Parallelism: 1})
	require.ErrorContains(t, err, "below OWASP's minimum")
	for _, m := range Minimums {
		require.NoError(t, m.Check())
	}

	old, err := NewHasher(Default)
	require.NoError(t, err)
	h, err := old.Hash("correct horse battery staple")
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), h)
	p, err := ParamsOf(h)
	require.NoError(t, err)
	require.Equal(t, Default, p)

	require.True(t, old.Verify(h, "correct horse battery staple"))
	require.False(t, old.Verify(h, "correct horse battery stapl"))
	require.False(t, old.NeedsRehash(h))
	h2, err := old.Hash("correct horse battery staple")
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "a fresh salt each time")

	// Raised parameters: the old hash still verifies (its own parameters are in it) and is
	// flagged for a rehash; the new hash carries the new parameters.
	raised, err := NewHasher(Params{MemoryKiB: 47104, Iterations: 2, Parallelism: 1})
	require.NoError(t, err)
	require.True(t, raised.Verify(h, "correct horse battery staple"))
	require.True(t, raised.NeedsRehash(h))
	nh, err := raised.Hash("correct horse battery staple")
	require.NoError(t, err)
	require.Contains(t, nh, "$m=47104,t=2,p=1$")
	require.False(t, raised.NeedsRehash(nh))

	// Malformed hashes never match and are flagged.
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", strings.Replace(h, "v=19", "v=16", 1)} {
		require.False(t, raised.Verify(bad, "x"), bad)
		require.True(t, raised.NeedsRehash(bad), bad)
	}
	require.False(t, raised.Verify(raised.Dummy(), ""))
}
