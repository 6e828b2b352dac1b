// Package contracts is the insurance treasury as code: allowed assets, amounts in exact integer
// stroops, the 1% yield fee, segregated fund balances, bailout request ids, the 5-of-5 +
// timelock rules as pure functions, and the Stellar side of bailouts.
package contracts

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// StroopsPerUnit is how many stroops make one unit of an asset: Stellar amounts have seven
// decimals.
const StroopsPerUnit = 10_000_000

// FormatStroops renders an amount Horizon's way: "12.3400000".
func FormatStroops(s int64) string {
	sign := ""
	u := uint64(s)
	if s < 0 {
		sign = "-"
		u = uint64(-(s + 1)) + 1 // safe for math.MinInt64
	}
	return fmt.Sprintf("%s%d.%07d", sign, u/StroopsPerUnit, u%StroopsPerUnit)
}

// ParseAmount reads a decimal amount with at most seven decimals ("12.34") into stroops,
// exactly: no floating point is involved.
func ParseAmount(s string) (int64, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, errors.New("amount is empty")
	}
	neg := strings.HasPrefix(s, "-")
	whole, frac, _ := strings.Cut(strings.TrimPrefix(s, "-"), ".")
	if whole == "" || len(frac) > 7 || strings.ContainsAny(whole+frac, "+-eE ") {
		return 0, fmt.Errorf("amount %q is not a decimal with at most 7 decimals", s)
	}
	w, err := strconv.ParseInt(whole, 10, 64)
	if err != nil || w > (1<<63-1)/StroopsPerUnit {
		return 0, fmt.Errorf("amount %q is not a decimal within range", s)
	}
	f := int64(0)
	if frac != "" {
		f, err = strconv.ParseInt(frac+strings.Repeat("0", 7-len(frac)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("amount %q is not a decimal with at most 7 decimals", s)
		}
	}
	total := w*StroopsPerUnit + f
	if total < 0 {
		return 0, fmt.Errorf("amount %q is out of range", s)
	}
	if neg {
		total = -total
	}
	return total, nil
}
