package contracts

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/txnbuild"
)

// EnvelopeSummary is what a council member should read before signing a bailout's
// transaction: every field is decoded from the envelope itself, and the hash is recomputed
// from it under the network passphrase, so nothing rests on what a server claims.
type EnvelopeSummary struct {
	// Network is the passphrase the hash was computed under.
	Network string `json:"network"`
	// Source is the account the money leaves: the payment operation's source, or the
	// transaction's when the operation has none.
	Source string `json:"source"`
	// Channel is the transaction's source account when it differs from Source: the channel
	// account whose sequence number (ChannelSequence) this envelope consumes and which pays
	// its fee. Empty for an envelope sourced by the treasury itself.
	Channel  string `json:"channel,omitempty"`
	Sequence int64  `json:"sequence"`
	// FeeStroops is the most the transaction's source pays in fees.
	FeeStroops  int64  `json:"fee_stroops"`
	Destination string `json:"destination"`
	// Asset is "XLM" or "CODE:ISSUER".
	Asset         string `json:"asset"`
	AssetCode     string `json:"asset_code"`
	AmountStroops int64  `json:"amount_stroops"`
	// Unlock and Expiry are the time bounds (zero when unbounded).
	Unlock time.Time `json:"unlock"`
	Expiry time.Time `json:"expiry"`
	// Memo is "none", "text:...", "id:...", "hash:<hex>" or "return:<hex>".
	Memo string `json:"memo"`
	// Hash is the transaction hash recomputed from the envelope, hex: what the council signs.
	Hash string `json:"hash"`
	// Signatures counts the signatures already attached.
	Signatures int `json:"signatures"`
}

// ErrNotBailoutEnvelope means the envelope is not a single payment, so it is not a bailout
// and must not be signed as one.
var ErrNotBailoutEnvelope = errors.New("not a bailout envelope: want a transaction with exactly one payment operation")

// DecodeBailoutEnvelope decodes a base64 transaction envelope locally and summarizes it. It
// refuses anything but a plain transaction carrying exactly one payment operation.
func DecodeBailoutEnvelope(envelope, passphrase string) (EnvelopeSummary, error) {
	if passphrase == "" {
		return EnvelopeSummary{}, errors.New("no network passphrase to compute the hash under")
	}
	gtx, err := txnbuild.TransactionFromXDR(strings.TrimSpace(envelope))
	if err != nil {
		return EnvelopeSummary{}, fmt.Errorf("envelope does not decode: %w", err)
	}
	tx, ok := gtx.Transaction()
	if !ok {
		return EnvelopeSummary{}, fmt.Errorf("%w (got a fee-bump transaction)", ErrNotBailoutEnvelope)
	}
	ops := tx.Operations()
	if len(ops) != 1 {
		return EnvelopeSummary{}, fmt.Errorf("%w (got %d operations)", ErrNotBailoutEnvelope, len(ops))
	}
	pay, ok := ops[0].(*txnbuild.Payment)
	if !ok {
		return EnvelopeSummary{}, fmt.Errorf("%w (got %T)", ErrNotBailoutEnvelope, ops[0])
	}
	amt, err := ParseAmount(pay.Amount)
	if err != nil {
		return EnvelopeSummary{}, fmt.Errorf("payment amount: %w", err)
	}
	hash, err := tx.HashHex(passphrase)
	if err != nil {
		return EnvelopeSummary{}, fmt.Errorf("hash: %w", err)
	}
	s := EnvelopeSummary{
		Network: passphrase, Source: pay.SourceAccount, Sequence: tx.SequenceNumber(), FeeStroops: tx.MaxFee(),
		Destination: pay.Destination, AmountStroops: amt, Hash: hash, Signatures: len(tx.Signatures()),
		Memo: memoString(tx.Memo()),
	}
	txSource := tx.SourceAccount().AccountID
	if s.Source == "" || s.Source == txSource {
		s.Source = txSource
	} else {
		s.Channel = txSource
	}
	if pay.Asset == nil || pay.Asset.IsNative() {
		s.Asset, s.AssetCode = AssetXLM, AssetXLM
	} else {
		s.AssetCode = pay.Asset.GetCode()
		s.Asset = s.AssetCode + ":" + pay.Asset.GetIssuer()
	}
	tb := tx.Timebounds()
	if tb.MinTime > 0 {
		s.Unlock = time.Unix(tb.MinTime, 0).UTC()
	}
	if tb.MaxTime > 0 {
		s.Expiry = time.Unix(tb.MaxTime, 0).UTC()
	}
	return s, nil
}

func memoString(m txnbuild.Memo) string {
	switch v := m.(type) {
	case nil:
		return "none"
	case txnbuild.MemoText:
		return "text:" + string(v)
	case txnbuild.MemoID:
		return fmt.Sprintf("id:%d", uint64(v))
	case txnbuild.MemoHash:
		return "hash:" + hex.EncodeToString(v[:])
	case txnbuild.MemoReturn:
		return "return:" + hex.EncodeToString(v[:])
	default:
		return fmt.Sprintf("%T", m)
	}
}

// BailoutMemoString is BailoutMemo as EnvelopeSummary.Memo renders it.
func BailoutMemoString(id uuid.UUID) string {
	m := BailoutMemo(id)
	return "hash:" + hex.EncodeToString(m[:])
}

func timeOrUnbounded(t time.Time) string {
	if t.IsZero() {
		return "(unbounded)"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// Write prints the summary for a person, one field a line, the recomputed hash last.
func (s EnvelopeSummary) Write(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	channel := "(none: the treasury is the transaction source)"
	if s.Channel != "" {
		channel = fmt.Sprintf("%s (transaction source, sequence %d, pays the fee of at most %d stroops)", s.Channel, s.Sequence, s.FeeStroops)
	}
	rows := [][2]string{
		{"network", s.Network},
		{"source", s.Source + " (pays the amount)"},
		{"channel", channel},
		{"destination", s.Destination},
		{"asset", s.Asset},
		{"amount", fmt.Sprintf("%s %s (%d stroops)", FormatStroops(s.AmountStroops), s.AssetCode, s.AmountStroops)},
		{"unlock", timeOrUnbounded(s.Unlock)},
		{"expiry", timeOrUnbounded(s.Expiry)},
		{"memo", s.Memo},
		{"signatures", fmt.Sprintf("%d attached", s.Signatures)},
		{"hash", s.Hash + " (recomputed from the envelope)"},
	}
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// ExpectedBailout is what the treasury's records say a bailout pays; an envelope is checked
// against it before anyone signs.
type ExpectedBailout struct {
	ID            string
	Asset         string
	AmountStroops int64
	Destination   string
	Unlock        time.Time
	Expiry        time.Time
	// TxHash is the hash a server claims for the envelope; empty skips the check.
	TxHash string
	// Treasury is the configured treasury account; empty skips the check.
	Treasury string
}

// Mismatches lists every way the envelope differs from what the bailout should pay; empty
// means they agree.
func (s EnvelopeSummary) Mismatches(e ExpectedBailout) []string {
	var out []string
	add := func(field, got, want string) {
		if got != want {
			out = append(out, fmt.Sprintf("%s: envelope has %s, the bailout says %s", field, got, want))
		}
	}
	if e.TxHash != "" {
		add("hash", s.Hash, strings.ToLower(e.TxHash))
	}
	if e.Treasury != "" {
		add("source", s.Source, e.Treasury)
	}
	add("destination", s.Destination, e.Destination)
	add("asset", s.AssetCode, e.Asset)
	add("amount", FormatStroops(s.AmountStroops), FormatStroops(e.AmountStroops))
	if !e.Unlock.IsZero() {
		add("unlock", timeOrUnbounded(s.Unlock), timeOrUnbounded(e.Unlock.Truncate(time.Second)))
	}
	if !e.Expiry.IsZero() {
		add("expiry", timeOrUnbounded(s.Expiry), timeOrUnbounded(e.Expiry.Truncate(time.Second)))
	}
	if e.ID != "" {
		want := "(not a bailout id: " + e.ID + ")"
		if id, err := uuid.Parse(e.ID); err == nil {
			want = BailoutMemoString(id)
		}
		add("memo", s.Memo, want)
	}
	return out
}
