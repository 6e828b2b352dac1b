package contracts

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/strkey"
)

// The assets the insurance fund holds. Anything else is rejected.
const (
	AssetUSDC = "USDC"
	AssetXLM  = "XLM"
)

// Asset is an asset the treasury accepts: native XLM, or USDC from the configured issuer.
type Asset struct {
	// Code is "XLM" or "USDC".
	Code string
	// Issuer is the USDC issuer (G...); empty for XLM.
	Issuer string
}

// Native reports whether the asset is lumens.
func (a Asset) Native() bool { return a.Code == AssetXLM }

// ErrUnsupportedAsset is returned for any asset other than XLM or the configured USDC.
var ErrUnsupportedAsset = errors.New("asset must be USDC or XLM")

// ParseAsset resolves an asset code against the configuration: "XLM" is native, "USDC" is the
// credit asset of usdcIssuer (which must be a valid account). Anything else is rejected.
func ParseAsset(code, usdcIssuer string) (Asset, error) {
	switch code {
	case AssetXLM:
		return Asset{Code: AssetXLM}, nil
	case AssetUSDC:
		if !strkey.IsValidEd25519PublicKey(usdcIssuer) {
			return Asset{}, errors.New("USDC is not available: USDC_ISSUER is not a valid Stellar account")
		}
		return Asset{Code: AssetUSDC, Issuer: usdcIssuer}, nil
	default:
		return Asset{}, fmt.Errorf("%w (got %q)", ErrUnsupportedAsset, code)
	}
}

// YieldFeeBasisPoints is the insurance fund's share of DeFi yield: 100 bp = 1%.
const YieldFeeBasisPoints = 100

// SplitYield splits a gross yield into the insurance fee and the net. Rounding rule: the fee
// is 1% of gross rounded DOWN to the stroop (floor), and net = gross - fee, so fee + net ==
// gross exactly and the fund never takes more than 1%. Gross must be positive.
func SplitYield(gross int64) (fee, net int64, err error) {
	if gross <= 0 {
		return 0, 0, errors.New("gross yield must be a positive number of stroops")
	}
	// gross/10000*100 + (gross%10000)*100/10000 avoids overflow of gross*100.
	fee = gross/10_000*YieldFeeBasisPoints + (gross%10_000)*YieldFeeBasisPoints/10_000
	return fee, gross - fee, nil
}

// ValidAccount reports whether s is a Stellar account id (G...).
func ValidAccount(s string) bool { return strkey.IsValidEd25519PublicKey(s) }

// CouncilSize is how many council members exist and how many must sign: 5-of-5.
const CouncilSize = 5

// ValidateCouncil checks the configured council: exactly five distinct valid accounts.
func ValidateCouncil(keys []string) error {
	if len(keys) != CouncilSize {
		return fmt.Errorf("COUNCIL_PUBLIC_KEYS: want %d keys, have %d", CouncilSize, len(keys))
	}
	seen := map[string]bool{}
	for _, k := range keys {
		if !ValidAccount(k) {
			return fmt.Errorf("COUNCIL_PUBLIC_KEYS: %q is not a Stellar account", k)
		}
		if seen[k] {
			return fmt.Errorf("COUNCIL_PUBLIC_KEYS: %s is listed twice", k)
		}
		seen[k] = true
	}
	return nil
}

// BailoutRequest is what a council member or admin asks for.
type BailoutRequest struct {
	Asset         string `json:"asset"`
	AmountStroops int64  `json:"amount_stroops"`
	Destination   string `json:"destination"`
	Reason        string `json:"reason"`
}

// Validate checks the request's own fields (the available balance is checked by the
// reservation, under a lock).
func (r BailoutRequest) Validate(usdcIssuer string) error {
	if _, err := ParseAsset(r.Asset, usdcIssuer); err != nil {
		return err
	}
	if r.AmountStroops <= 0 {
		return errors.New("amount_stroops must be positive")
	}
	if !ValidAccount(r.Destination) {
		return errors.New("destination must be a Stellar account (G...)")
	}
	if !utf8.ValidString(r.Reason) || strings.ContainsRune(r.Reason, 0) {
		return errors.New("reason must be valid UTF-8 without NUL characters")
	}
	if strings.TrimSpace(r.Reason) == "" || utf8.RuneCountInString(r.Reason) > 500 {
		return errors.New("reason must be 1 to 500 characters")
	}
	return nil
}

// BailoutID derives the bailout's id from a hash of the request (asset, amount, destination,
// reason), so the same request twice has the same id and its workflow id clashes.
func BailoutID(r BailoutRequest) uuid.UUID {
	b, _ := json.Marshal(r) // struct: field order is fixed, the encoding canonical
	sum := sha256.Sum256(append([]byte("creatorvault-bailout-request\n"), b...))
	var id uuid.UUID
	copy(id[:], sum[:16])
	id[6] = (id[6] & 0x0f) | 0x80 // version 8 (custom)
	id[8] = (id[8] & 0x3f) | 0x80 // RFC 4122 variant
	return id
}

// BailoutWorkflowID is the workflow id of a bailout.
func BailoutWorkflowID(id uuid.UUID) string { return "bailout-" + id.String() }

// Window is when a bailout may execute: from Unlock (request time + timelock) until Expiry
// (Unlock + grace). These are also the payment transaction's time bounds.
type Window struct {
	Unlock time.Time
	Expiry time.Time
}

// BailoutWindow computes the window of a bailout requested at t, in whole seconds as
// Stellar time bounds are. The unlock rounds up, so the timelock is never shorter than asked.
func BailoutWindow(requestedAt time.Time, timelock, grace time.Duration) Window {
	end := requestedAt.Add(timelock).UTC()
	u := end.Truncate(time.Second)
	if u.Before(end) {
		u = u.Add(time.Second)
	}
	return Window{Unlock: u, Expiry: u.Add(grace).UTC()}
}

// CancelMessage is what a council member signs to cancel the bailout whose transaction hash
// is txHash (hex).
func CancelMessage(txHash string) []byte {
	return []byte("creatorvault-bailout-cancel:" + txHash)
}

// Approval errors, each a clear reason for the refusal.
var (
	ErrNotMember     = errors.New("signer is not a council member")
	ErrBadSignature  = errors.New("signature does not verify against the transaction hash")
	ErrDuplicate     = errors.New("this council member has already approved")
	ErrMalformedHash = errors.New("transaction hash is not 32 bytes of hex")
)

// VerifyCouncilSignature checks that signer is in council and that sig is signer's ed25519
// signature over msg. It uses the Stellar SDK's keypair.Verify.
func VerifyCouncilSignature(council []string, signer string, msg, sig []byte) error {
	member := false
	for _, k := range council {
		if k == signer {
			member = true
		}
	}
	if !member {
		return ErrNotMember
	}
	kp, err := keypair.ParseAddress(signer)
	if err != nil {
		return ErrNotMember
	}
	if len(sig) != 64 || kp.Verify(msg, sig) != nil {
		return ErrBadSignature
	}
	return nil
}

// TxHashBytes decodes a hex transaction hash.
func TxHashBytes(txHash string) ([]byte, error) {
	b, err := hex.DecodeString(txHash)
	if err != nil || len(b) != 32 {
		return nil, ErrMalformedHash
	}
	return b, nil
}

// ReadyToExecute is the 5-of-5 + timelock rule: every council member approved and the
// unlock time has passed, and the window has not closed.
func ReadyToExecute(approvals int, now time.Time, w Window) bool {
	return approvals >= CouncilSize && !now.Before(w.Unlock) && now.Before(w.Expiry)
}
