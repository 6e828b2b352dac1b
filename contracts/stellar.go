package contracts

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/txnbuild"
	"github.com/stellar/go-stellar-sdk/xdr"
)

// The Stellar side of bailouts. Every bailout's payment is its own envelope: the transaction
// source is a channel account allocated to that bailout alone (so its sequence number belongs
// to it), and the payment operation's source is the treasury account, which the network only
// lets move money with the council's five signatures (its medium threshold). The channel's
// own signature (the transaction source's low threshold) is the orchestrator's; it can pay
// fees and consume its own sequence numbers, nothing more.

// Signature is a council member's ed25519 signature over a transaction hash.
type Signature struct {
	Signer    string
	Signature []byte
}

// SignatureBase64 renders a signature for the API and CLI.
func SignatureBase64(sig []byte) string { return base64.StdEncoding.EncodeToString(sig) }

// ParseSignature reads a base64 signature (64 bytes).
func ParseSignature(s string) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != 64 {
		return nil, errors.New("signature must be 64 bytes, base64")
	}
	return b, nil
}

// ErrMalformedEnvelope is returned for an envelope that does not decode to a transaction.
var ErrMalformedEnvelope = errors.New("envelope is not a base64 Stellar transaction")

// PaymentParams is everything a bailout's payment envelope is built from.
type PaymentParams struct {
	Passphrase string
	// Treasury is the payment operation's source (the 5-of-5 account).
	Treasury string
	// Channel is the transaction source; ChannelSequence its current sequence number.
	Channel         string
	ChannelSequence int64
	BailoutID       uuid.UUID
	Asset           Asset
	AmountStroops   int64
	Destination     string
	Window          Window
}

// Envelope is an unsigned bailout payment and the hash the council signs.
type Envelope struct {
	// XDR is the unsigned envelope, base64.
	XDR string
	// Hash is the transaction hash under the network passphrase, hex.
	Hash string
	// Sequence is the channel sequence number the envelope uses.
	Sequence int64
	// Channel is the transaction source.
	Channel string
}

// BailoutMemo is the memo hash every bailout payment carries: SHA-256 of its id.
func BailoutMemo(id uuid.UUID) [32]byte {
	return sha256.Sum256([]byte("creatorvault-bailout:" + id.String()))
}

// PaymentFee is the fee per operation a bailout's transactions bid (the network minimum).
const PaymentFee = txnbuild.MinBaseFee

// BuildPayment builds the bailout's envelope: channel as transaction source at its next
// sequence number, one Payment whose source is the treasury, time bounds = the bailout window.
func BuildPayment(p PaymentParams) (Envelope, error) {
	if !ValidAccount(p.Treasury) || !ValidAccount(p.Channel) || !ValidAccount(p.Destination) {
		return Envelope{}, errors.New("treasury, channel and destination must be Stellar accounts")
	}
	if p.Channel == p.Treasury {
		return Envelope{}, errors.New("the channel account cannot be the treasury")
	}
	if p.AmountStroops <= 0 {
		return Envelope{}, errors.New("amount must be positive")
	}
	var asset txnbuild.Asset = txnbuild.NativeAsset{}
	if !p.Asset.Native() {
		asset = txnbuild.CreditAsset{Code: p.Asset.Code, Issuer: p.Asset.Issuer}
	}
	tx, err := txnbuild.NewTransaction(txnbuild.TransactionParams{
		SourceAccount:        &txnbuild.SimpleAccount{AccountID: p.Channel, Sequence: p.ChannelSequence},
		IncrementSequenceNum: true,
		Operations: []txnbuild.Operation{&txnbuild.Payment{
			Destination: p.Destination, Amount: amount.StringFromInt64(p.AmountStroops), Asset: asset,
			SourceAccount: p.Treasury,
		}},
		BaseFee: PaymentFee,
		Memo:    txnbuild.MemoHash(BailoutMemo(p.BailoutID)),
		Preconditions: txnbuild.Preconditions{
			TimeBounds: txnbuild.NewTimebounds(p.Window.Unlock.Unix(), p.Window.Expiry.Unix()),
		},
	})
	if err != nil {
		return Envelope{}, fmt.Errorf("build payment: %w", err)
	}
	env, err := tx.Base64()
	if err != nil {
		return Envelope{}, err
	}
	hash, err := tx.HashHex(p.Passphrase)
	if err != nil {
		return Envelope{}, err
	}
	return Envelope{XDR: env, Hash: hash, Sequence: tx.SequenceNumber(), Channel: p.Channel}, nil
}

// DecodeEnvelope decodes a base64 envelope into a (non fee-bump) transaction.
func DecodeEnvelope(env string) (*txnbuild.Transaction, error) {
	gtx, err := txnbuild.TransactionFromXDR(env)
	if err != nil {
		return nil, ErrMalformedEnvelope
	}
	tx, ok := gtx.Transaction()
	if !ok {
		return nil, ErrMalformedEnvelope
	}
	return tx, nil
}

// AttachSignatures checks that env hashes to wantHash under passphrase, verifies every council
// signature against the council and the hash, adds them in council order, then signs with the
// channel's key (the transaction source). It returns the envelope ready to submit.
func AttachSignatures(env, passphrase, wantHash string, council []string, sigs []Signature, channel *keypair.Full) (string, error) {
	tx, err := DecodeEnvelope(env)
	if err != nil {
		return "", err
	}
	hash, err := tx.HashHex(passphrase)
	if err != nil {
		return "", err
	}
	if hash != wantHash {
		return "", errors.New("envelope hash differs from the approved hash")
	}
	if tx.SourceAccount().AccountID != channel.Address() {
		return "", errors.New("the envelope's source is not the bailout's channel account")
	}
	raw, _ := TxHashBytes(hash)
	by := map[string][]byte{}
	for _, s := range sigs {
		if err := VerifyCouncilSignature(council, s.Signer, raw, s.Signature); err != nil {
			return "", fmt.Errorf("%s: %w", s.Signer, err)
		}
		by[s.Signer] = s.Signature
	}
	for _, k := range council {
		s, ok := by[k]
		if !ok {
			continue
		}
		kp, _ := keypair.ParseAddress(k)
		if tx, err = tx.AddSignatureDecorated(xdr.DecoratedSignature{Hint: xdr.SignatureHint(kp.Hint()), Signature: s}); err != nil {
			return "", err
		}
	}
	if tx, err = tx.Sign(passphrase, channel); err != nil {
		return "", err
	}
	return tx.Base64()
}

// BuildInvalidation builds and signs the channel transaction that makes a bailout's envelope
// permanently invalid: a BumpSequence of the channel to the envelope's sequence number, so
// the envelope's sequence is consumed (the network answers it tx_bad_seq from then on).
// channelSeq is the channel's current sequence number (below envelopeSeq); the transaction
// is valid until validUntil.
func BuildInvalidation(passphrase string, channel *keypair.Full, channelSeq, envelopeSeq int64, validUntil time.Time) (string, string, error) {
	tx, err := txnbuild.NewTransaction(txnbuild.TransactionParams{
		SourceAccount:        &txnbuild.SimpleAccount{AccountID: channel.Address(), Sequence: channelSeq},
		IncrementSequenceNum: true,
		Operations:           []txnbuild.Operation{&txnbuild.BumpSequence{BumpTo: envelopeSeq}},
		BaseFee:              PaymentFee,
		Preconditions:        txnbuild.Preconditions{TimeBounds: txnbuild.NewTimebounds(0, validUntil.Unix())},
	})
	if err != nil {
		return "", "", err
	}
	if tx, err = tx.Sign(passphrase, channel); err != nil {
		return "", "", err
	}
	hash, err := tx.HashHex(passphrase)
	if err != nil {
		return "", "", err
	}
	env, err := tx.Base64()
	return env, hash, err
}

// MultisigSetupTx builds the SetOptions transaction that makes account 5-of-5 over the
// council: the five keys as signers of weight 1, master weight 0, thresholds 5/5/5.
func MultisigSetupTx(account string, seq int64, council []string, passphrase string) (string, error) {
	if err := ValidateCouncil(council); err != nil {
		return "", err
	}
	w0, w1, five := txnbuild.Threshold(0), txnbuild.Threshold(1), txnbuild.Threshold(CouncilSize)
	var ops []txnbuild.Operation
	for _, k := range council { // signers first, then thresholds and the master key off
		ops = append(ops, &txnbuild.SetOptions{Signer: &txnbuild.Signer{Address: k, Weight: w1}})
	}
	ops = append(ops, &txnbuild.SetOptions{MasterWeight: &w0, LowThreshold: &five, MediumThreshold: &five, HighThreshold: &five})
	return setupTx(account, seq, ops, passphrase)
}

// ChannelStartingBalance is what channels-setup funds each channel with by default: the
// minimum balance of an account without subentries (2 base reserves, 1 XLM) plus 1 XLM of
// fees (10,000 transactions at the minimum fee).
const ChannelStartingBalance = 2 * StroopsPerUnit

// ChannelSetupTx builds the transaction in which funder creates each channel account with
// startingBalance stroops of XLM.
func ChannelSetupTx(funder string, seq int64, channels []string, startingBalance int64, passphrase string) (string, error) {
	if !ValidAccount(funder) {
		return "", errors.New("the funding account is not a Stellar account")
	}
	if len(channels) == 0 || len(channels) > 100 {
		return "", errors.New("create 1 to 100 channel accounts per transaction")
	}
	if startingBalance < StroopsPerUnit {
		return "", errors.New("a channel needs a starting balance of at least 1 XLM (the minimum balance)")
	}
	var ops []txnbuild.Operation
	for _, c := range channels {
		if !ValidAccount(c) {
			return "", fmt.Errorf("channel %q is not a Stellar account", c)
		}
		ops = append(ops, &txnbuild.CreateAccount{Destination: c, Amount: amount.StringFromInt64(startingBalance)})
	}
	return setupTx(funder, seq, ops, passphrase)
}

func setupTx(account string, seq int64, ops []txnbuild.Operation, passphrase string) (string, error) {
	tx, err := txnbuild.NewTransaction(txnbuild.TransactionParams{
		SourceAccount: &txnbuild.SimpleAccount{AccountID: account, Sequence: seq}, IncrementSequenceNum: true,
		Operations: ops, BaseFee: txnbuild.MinBaseFee,
		Preconditions: txnbuild.Preconditions{TimeBounds: txnbuild.NewTimeout(24 * 3600)},
	})
	if err != nil {
		return "", err
	}
	if _, err := tx.HashHex(passphrase); err != nil {
		return "", err
	}
	return tx.Base64()
}

// ParseChannelSeeds reads channel account secret seeds, one a line (blank lines and lines
// starting with # are skipped). Errors never echo a seed.
func ParseChannelSeeds(text string) (map[string]*keypair.Full, error) {
	out := map[string]*keypair.Full{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		kp, err := keypair.ParseFull(line)
		if err != nil {
			return nil, fmt.Errorf("line %d is not a Stellar secret seed (S...)", i+1)
		}
		out[kp.Address()] = kp
	}
	return out, nil
}
