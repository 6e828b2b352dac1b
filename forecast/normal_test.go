package forecast

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPCGSameStream: the engine's generator gives rand.NewPCG's words from the same seed.
func TestPCGSameStream(t *testing.T) {
	for _, seed := range [][2]uint64{{0, 0}, {1, 2}, {math.MaxUint64, 7}, Seed(testCreator, "USDC", day0)} {
		ours, theirs := &pcg{hi: seed[0], lo: seed[1]}, rand.NewPCG(seed[0], seed[1])
		for i := range 100_000 {
			if a, b := ours.Uint64(), theirs.Uint64(); a != b {
				t.Fatalf("seed %v word %d: %#x, rand.PCG %#x", seed, i, a, b)
			}
		}
	}
}

// TestNormalSameStream: the engine's normals and uniforms are rand.Rand's NormFloat64 and
// Float64 over the same generator, draw for draw (5 million normals: tens of thousands go
// through the wedge test, about 2,900 land beyond R, in the tail).
func TestNormalSameStream(t *testing.T) {
	seed := Seed(testCreator, "XLM", day0)
	ours, theirs := &pcg{hi: seed[0], lo: seed[1]}, rand.New(rand.NewPCG(seed[0], seed[1]))
	var tail int
	for i := range 5_000_000 {
		if i%97 == 0 {
			if a, b := uniform(ours), theirs.Float64(); a != b {
				t.Fatalf("uniform %d: %v, rand %v", i, a, b)
			}
		}
		a, b := normal(ours), theirs.NormFloat64()
		if a != b {
			t.Fatalf("normal %d: %v, rand %v", i, a, b)
		}
		if math.Abs(a) > zigR {
			tail++
		}
	}
	require.Greater(t, tail, 1000)
}

// script is a source that gives its words, then a PCG's.
type script struct {
	words []uint64
	used  int
	rest  *pcg
}

func (s *script) Uint64() uint64 {
	s.used++
	if s.used <= len(s.words) {
		return s.words[s.used-1]
	}
	return s.rest.Uint64()
}

// TestZigguratEdges: at the edge of every strip's rectangle (|j| = k − 1, inside; k, outside)
// the engine's normal takes the same branch as rand.Rand's: the same value from the same
// number of words. A table entry off by one would show here, where millions of random draws
// would rarely land on it.
func TestZigguratEdges(t *testing.T) {
	for strip := range zigStrips {
		k := int64(zig.k[strip])
		for _, j := range []int64{k - 1, k, k + 1, -(k - 1), -k, -(k + 1), math.MaxInt32, math.MinInt32} {
			if j > math.MaxInt32 || j < math.MinInt32 {
				continue
			}
			word := uint64(strip)<<32 | uint64(uint32(int32(j)))
			ours := &script{words: []uint64{word}, rest: &pcg{hi: uint64(strip), lo: uint64(j)}}
			theirs := &script{words: []uint64{word}, rest: &pcg{hi: uint64(strip), lo: uint64(j)}}
			a, b := normal(ours), rand.New(theirs).NormFloat64()
			require.Equal(t, b, a, "strip %d j %d", strip, j)
			require.Equal(t, theirs.used, ours.used, "strip %d j %d: words used", strip, j)
		}
	}
}

// TestSameForecastsAsBefore: the engine's own draws changed no number: these are the forecasts
// the engine gave for these inputs when it drew through rand.Rand (bit for bit).
func TestSameForecastsAsBefore(t *testing.T) {
	want := [][]uint64{
		{0x419582346cb99724, 0x4195fb1ed4a839c6, 0x418ba863adfb2e8c, 0x41a02c82dcfaeb4c},
		{0x419636e4414c7416, 0x4197c32c60c5400f, 0x41854f4e8b596a58, 0x41a7aa224826a70f},
		{0x419675a5ce2534d4, 0x419a3fe85bbaf989, 0x4180ed55ea0641c4, 0x41aea5a8d228b863},
		{0x41b87bcc84d0c5a8, 0x41b92881dd075191, 0x41ac05372323e794, 0x41c4bfe3a4f17280},
		{0x41c0b88db93e68d8, 0x41c2171ef7afd39a, 0x41aad0e87664b5ae, 0x41d30f0e3413d411},
		{0x41c7571fea2f6520, 0x41caeddcce5bf2fd, 0x41aa915c075ce4c4, 0x41e12e2cc8d6d38f},
		{0x41a75ad8d6c86558, 0x41b21e4dd63f5b92, 0x4184498c99faa44d, 0x41d1af356c0b5977},
		{0x41a557bb01dd2ca0, 0x41c43f40f877267b, 0x416a957ac8e9cf8e, 0x41e5b1efa33d9c49},
		{0x41a3ed577e4e1f2a, 0x41e1e39d585e4cf6, 0x4156fe476bee392e, 0x41f99f38652104ed},
	}
	var got [][]uint64
	for i, vol := range []float64{0.02, 0.05, 0.15} {
		f, err := Estimate(History{Revenue: modelSeries(rand.New(rand.NewPCG(uint64(i+1), 7)), HistoryDays, 15, 0.002, vol)}, SmoothingDays)
		require.NoError(t, err)
		preds, err := Simulate(f, Seed(testCreator, "USDC", day0.AddDate(0, 0, i+1)), DefaultPaths, Horizons)
		require.NoError(t, err)
		for _, p := range preds {
			got = append(got, []uint64{math.Float64bits(p.Median), math.Float64bits(p.Mean), math.Float64bits(p.Lower), math.Float64bits(p.Upper)})
		}
	}
	require.Equal(t, want, got)
}

// TestWedgeLinesBound: on every strip's wedge the lower line is below the density and the
// upper line above it, so a point they decide is decided as the exponential would.
func TestWedgeLinesBound(t *testing.T) {
	decided := 0
	for strip := 1; strip < zigStrips; strip++ {
		a, b := float64(zig.k[strip])*zig.w[strip], zigScale*zig.w[strip]
		for s := 0; s <= 1000; s++ {
			x := a + (b-a)*float64(s)/1000
			g := math.Exp(-0.5 * x * x)
			lo := zig.below[strip][0] + zig.below[strip][1]*x
			hi := zig.above[strip][0] + zig.above[strip][1]*x
			// (to rounding, far inside zigMargin: the chord meets the density at the ends)
			require.LessOrEqual(t, lo, g+1e-15, "strip %d x %v", strip, x)
			require.GreaterOrEqual(t, hi, g-1e-15, "strip %d x %v", strip, x)
		}
		if zig.below[strip][1] != 0 {
			decided++
		}
	}
	require.Equal(t, zigStrips-2, decided) // all strips but the one holding x = 1
}
