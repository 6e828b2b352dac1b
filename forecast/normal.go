package forecast

import (
	"math"
	"math/bits"
)

// The engine's random numbers: math/rand/v2's PCG stream, normals by the ziggurat, without an
// interface call per draw.
//
// The generator is PCG-DXSM (O'Neill's 128-bit linear congruential state with the "double
// xorshift multiply" output), the one rand.NewPCG gives, kept in a plain value (pcg) so that the
// engine's loop holds the state in registers; from the same seed it gives the same words as
// rand.NewPCG (TestPCGSameStream).
//
// The normals are Marsaglia and Tsang's ziggurat (J. Stat. Softw. 5(8), 2000) with 128
// strips, its tables built here at start-up from the paper's two constants, in the paper's
// layout (the width of strip i over 2³¹, the acceptance bound of its rectangle, the density at
// its edge, rounded to float32). It is the method and the layout math/rand/v2's NormFloat64
// uses, so from the same PCG it gives the same numbers (TestNormalSameStream checks millions
// of draws and the table's edges); what it saves is the interface call to the source and the
// call to NormFloat64 on every draw: the common case (over 98% of draws, a point inside a
// strip's rectangle) is inlined into the engine's loop, the rest is normalSlow. So a forecast
// for a seed is the same as before the engine drew its own numbers.

const (
	zigStrips = 128
	zigR      = 3.442619855899      // where the base strip's tail starts
	zigV      = 9.91256303526217e-3 // the area of each strip
	zigScale  = 2147483648.0        // 2³¹: the draw's low 32 bits as a signed fraction
)

// zig holds the ziggurat's tables.
var zig = *newZiggurat()

type ziggurat struct {
	k [zigStrips]uint32  // |j| < k[i]: the point is inside strip i's rectangle, accept
	w [zigStrips]float64 // x = j·w[i] (float32 values, kept as float64 for the multiply)
	f [zigStrips]float32 // the density e^(−x²/2) at strip i's outer edge
	// Lines below and above the density over strip i's wedge (|x| between its rectangle's
	// edge and its outer edge): a point under the lower one is accepted, one over the upper
	// one rejected, without the exponential; only points between them compute it.
	below, above [zigStrips][2]float64
}

// zigMargin keeps the lines' decisions exact: the density is compared after rounding to
// float32 (an error below 6·10⁻⁸ for values ≤ 1), so a point decided by a line is at least
// this much from the rounded density and the exponential would decide it the same way.
const zigMargin = 1e-6

func newZiggurat() *ziggurat {
	z := &ziggurat{}
	// The strips' outer edges x[127] = R > x[126] > … > x[1], each strip of area V: the
	// rectangle under the curve from x[i] out to x[i+1] has area x[i+1]·(f(x[i]) − f(x[i+1])).
	// The base strip (0) is a rectangle of width V/f(R) plus the tail beyond R.
	x := zigR
	base := zigV / math.Exp(-0.5*x*x)
	z.k[0] = uint32(x / base * zigScale)
	z.k[1] = 0
	z.w[0] = float64(float32(base / zigScale))
	z.w[zigStrips-1] = float64(float32(x / zigScale))
	z.f[0] = 1
	z.f[zigStrips-1] = float32(math.Exp(-0.5 * x * x))
	outer := x
	for i := zigStrips - 2; i >= 1; i-- {
		x = math.Sqrt(-2 * math.Log(zigV/x+math.Exp(-0.5*x*x)))
		z.k[i+1] = uint32(x / outer * zigScale)
		outer = x
		z.f[i] = float32(math.Exp(-0.5 * x * x))
		z.w[i] = float64(float32(x / zigScale))
	}
	for i := 1; i < zigStrips; i++ {
		z.below[i], z.above[i] = wedgeLines(float64(z.k[i])*z.w[i], zigScale*z.w[i])
	}
	return z
}

// wedgeLines are a lower and an upper line (intercept, slope) for the density g = e^(−x²/2) on
// [a, b]: its chord and its tangent at the middle. g is concave below 1 (the chord is under
// it, the tangent over it) and convex above 1 (the other way round); on the one strip that
// holds 1 the lines are left undecided (the lower one below 0, the upper one above 1).
func wedgeLines(a, b float64) (below, above [2]float64) {
	g := func(x float64) float64 { return math.Exp(-0.5 * x * x) }
	slope := (g(b) - g(a)) / (b - a)
	chord := [2]float64{g(a) - slope*a, slope}
	m := (a + b) / 2
	tangent := [2]float64{g(m) + m*m*g(m), -m * g(m)}
	switch {
	case b <= 1:
		return chord, tangent
	case a >= 1:
		return tangent, chord
	}
	return [2]float64{-1, 0}, [2]float64{2, 0}
}

// pcg is the PCG-DXSM generator's state (hi, lo), seeded as rand.NewPCG(hi, lo).
type pcg struct{ hi, lo uint64 }

// The generator's constants: the 128-bit multiplier and increment of the LCG (PCG's defaults)
// and DXSM's 64-bit multiplier.
const (
	pcgMulHi = 0x2360ed051fc65da4
	pcgMulLo = 0x4385df649fccf645
	pcgIncHi = 0x5851f42d4c957f2d
	pcgIncLo = 0x14057b7ef767814f
	pcgDXSM  = 0xda942042e4dd58b5
)

// Uint64 advances the state and returns the next word.
func (g *pcg) Uint64() uint64 {
	var w uint64
	g.hi, g.lo, w = pcgStep(g.hi, g.lo)
	return w
}

// pcgStep is one step of the generator on a state held in locals: state ← state·mul + inc
// (mod 2¹²⁸), the word from the new state's high half (xorshift, multiply, xorshift, multiply
// by the low half, odd).
func pcgStep(hi, lo uint64) (nhi, nlo, word uint64) {
	h, l := bits.Mul64(lo, pcgMulLo)
	h += hi*pcgMulLo + lo*pcgMulHi
	l, carry := bits.Add64(l, pcgIncLo, 0)
	h, _ = bits.Add64(h, pcgIncHi, carry)
	w := h ^ h>>32
	w *= pcgDXSM
	w ^= w >> 48
	w *= l | 1
	return h, l, w
}

// source is a stream of random 64-bit words: the engine's *pcg, or a test's script.
type source interface{ Uint64() uint64 }

// zigAbs is |j| as an unsigned number (|−2³¹| = 2³¹, never below a bound).
func zigAbs(j int32) uint32 {
	s := j >> 31
	return uint32((j ^ s) - s)
}

// zigFast is the ziggurat's common case for the word u: the variate and true, or false when
// the point falls outside its strip's rectangle (then normalSlow finishes the draw).
func zigFast(u uint64) (float64, bool) {
	j := int32(u)
	i := u >> 32 & (zigStrips - 1)
	return float64(j) * zig.w[i], zigAbs(j) < zig.k[i]
}

// normal draws a standard normal variate from src.
func normal[S source](src S) float64 {
	u := src.Uint64()
	if x, ok := zigFast(u); ok {
		return x
	}
	return normalSlow(src, u)
}

// normal is normal(g) without the generic's dictionary (the engine's per-path draws).
func (g *pcg) normal() float64 {
	u := g.Uint64()
	if x, ok := zigFast(u); ok {
		return x
	}
	return normalSlow(g, u)
}

// uniform is uniform(g) without the generic's dictionary.
func (g *pcg) uniform() float64 {
	return float64(g.Uint64()&(1<<53-1)) / (1 << 53)
}

// normalSlow finishes a draw whose first 64 bits u fell outside its strip's rectangle: a
// point in the wedge between the rectangle and the curve is accepted by comparing with the
// density (most by the two lines of wedgeLines, the rest by the exponential), one in the base
// strip beyond R is drawn from the tail (Marsaglia's exponential method); otherwise a fresh
// 64 bits start over.
func normalSlow[S source](src S, u uint64) float64 {
	for {
		j := int32(u)
		i := u >> 32 & (zigStrips - 1)
		x := float64(j) * zig.w[i]
		switch {
		case zigAbs(j) < zig.k[i]:
			return x
		case i == 0:
			for {
				x = -math.Log(uniform(src)) * (1.0 / zigR)
				y := -math.Log(uniform(src))
				if y+y >= x*x {
					break
				}
			}
			if j > 0 {
				return zigR + x
			}
			return -zigR - x
		default:
			lo, hi := zig.f[i], zig.f[i-1]
			y := lo + float32(uniform(src))*(hi-lo)
			ax, yy := math.Abs(x), float64(y)
			switch {
			case yy < zig.below[i][0]+zig.below[i][1]*ax-zigMargin:
				return x
			case yy >= zig.above[i][0]+zig.above[i][1]*ax+zigMargin:
			case y < float32(math.Exp(-0.5*x*x)):
				return x
			}
		}
		u = src.Uint64()
	}
}

// uniform is a uniform variate in [0, 1): the low 53 bits of a draw over 2⁵³ (what
// rand.Rand's Float64 gives from the same source).
func uniform[S source](src S) float64 {
	return float64(src.Uint64()&(1<<53-1)) / (1 << 53)
}
