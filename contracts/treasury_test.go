package contracts

import (
	"math"
	"math/rand/v2"
	"testing"
	"testing/quick"
	"time"

	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/require"
)

const issuer = "GA5ZSEJYB37JRC5AVCIA5MOP4RHTM335X2KGX3IHOJAPP5RE34K4KZVN"

func TestParseAsset(t *testing.T) {
	a, err := ParseAsset("XLM", "")
	require.NoError(t, err)
	require.True(t, a.Native())
	a, err = ParseAsset("USDC", issuer)
	require.NoError(t, err)
	require.Equal(t, issuer, a.Issuer)
	for _, bad := range []string{"", "usdc", "BTC", "EURC", "XLM "} {
		_, err := ParseAsset(bad, issuer)
		require.ErrorIs(t, err, ErrUnsupportedAsset, bad)
	}
	_, err = ParseAsset("USDC", "")
	require.Error(t, err, "USDC without a configured issuer")
}

func TestSplitYieldExamples(t *testing.T) {
	for gross, want := range map[int64]int64{1: 0, 99: 0, 100: 1, 199: 1, 10_000_000: 100_000, math.MaxInt64: 92233720368547758} {
		fee, net, err := SplitYield(gross)
		require.NoError(t, err)
		require.Equal(t, want, fee, "gross %d", gross)
		require.Equal(t, gross, fee+net)
	}
	for _, bad := range []int64{0, -1, math.MinInt64} {
		_, _, err := SplitYield(bad)
		require.Error(t, err)
	}
}

// The fee split never creates or loses a stroop, the fee is never negative, and it is
// exactly floor(gross/100).
func TestSplitYieldProperty(t *testing.T) {
	prop := func(g int64) bool {
		if g <= 0 {
			g = -(g + 1) // map to the non-negative range
		}
		if g == 0 {
			g = 1
		}
		fee, net, err := SplitYield(g)
		return err == nil && fee >= 0 && net >= 0 && fee+net == g && fee == g/100 && fee <= net
	}
	require.NoError(t, quick.Check(prop, &quick.Config{MaxCount: 100_000}))
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		require.True(t, prop(r.Int64N(1_000_000_000)+1))
	}
}

func TestBailoutRequestAndID(t *testing.T) {
	dest := keypair.MustRandom().Address()
	r := BailoutRequest{Asset: "USDC", AmountStroops: 10, Destination: dest, Reason: "exploit"}
	require.NoError(t, r.Validate(issuer))
	require.Equal(t, BailoutID(r), BailoutID(r))
	r2 := r
	r2.AmountStroops = 11
	require.NotEqual(t, BailoutID(r), BailoutID(r2))

	for name, bad := range map[string]BailoutRequest{
		"asset":       {Asset: "BTC", AmountStroops: 1, Destination: dest, Reason: "x"},
		"zero":        {Asset: "XLM", AmountStroops: 0, Destination: dest, Reason: "x"},
		"negative":    {Asset: "XLM", AmountStroops: -5, Destination: dest, Reason: "x"},
		"destination": {Asset: "XLM", AmountStroops: 1, Destination: "GABC", Reason: "x"},
		"reason":      {Asset: "XLM", AmountStroops: 1, Destination: dest, Reason: " "},
	} {
		require.Error(t, bad.Validate(issuer), name)
	}
}

func TestCouncilSignatures(t *testing.T) {
	var council []string
	var kps []*keypair.Full
	for range 5 {
		kp := keypair.MustRandom()
		kps = append(kps, kp)
		council = append(council, kp.Address())
	}
	require.NoError(t, ValidateCouncil(council))
	require.Error(t, ValidateCouncil(council[:4]))
	require.Error(t, ValidateCouncil(append(council[:4:4], council[0])))

	hash := make([]byte, 32)
	hash[0] = 7
	sig, err := kps[0].Sign(hash)
	require.NoError(t, err)
	require.NoError(t, VerifyCouncilSignature(council, council[0], hash, sig))
	require.ErrorIs(t, VerifyCouncilSignature(council, council[1], hash, sig), ErrBadSignature)
	other := keypair.MustRandom()
	osig, _ := other.Sign(hash)
	require.ErrorIs(t, VerifyCouncilSignature(council, other.Address(), hash, osig), ErrNotMember)
	hash2 := make([]byte, 32)
	require.ErrorIs(t, VerifyCouncilSignature(council, council[0], hash2, sig), ErrBadSignature)
	require.ErrorIs(t, VerifyCouncilSignature(council, council[0], hash, sig[:10]), ErrBadSignature)
}

func TestWindow(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 500, time.UTC)
	w := BailoutWindow(at, 14*24*time.Hour, 7*24*time.Hour)
	require.Equal(t, time.Date(2026, 1, 15, 12, 0, 1, 0, time.UTC), w.Unlock, "rounded up: never early")
	require.Equal(t, time.Date(2026, 1, 22, 12, 0, 1, 0, time.UTC), w.Expiry)
	exact := BailoutWindow(time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), 14*24*time.Hour, 7*24*time.Hour)
	require.Equal(t, time.Date(2026, 1, 15, 12, 0, 0, 0, time.UTC), exact.Unlock)
	require.False(t, ReadyToExecute(5, w.Unlock.Add(-time.Second), w))
	require.False(t, ReadyToExecute(4, w.Unlock, w))
	require.True(t, ReadyToExecute(5, w.Unlock, w))
	require.False(t, ReadyToExecute(5, at.Add(14*24*time.Hour), w))
	require.False(t, ReadyToExecute(5, w.Expiry, w))
}
