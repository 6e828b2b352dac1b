package contracts

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/txnbuild"
)

// AnchorDataName is the ManageData entry an anchor transaction sets: its value is the
// sequence number of the event whose hash the memo carries, so an anchor names exactly which
// event it pins.
const AnchorDataName = "creatorvault-treasury-head"

// ChainHead is the treasury event chain's newest event: its sequence number and hash.
type ChainHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}

// Anchor is a chain head published on Stellar by the anchor account.
type Anchor struct {
	ChainHead
	// TxHash is the anchoring transaction; At its ledger close time.
	TxHash string    `json:"tx_hash"`
	At     time.Time `json:"at"`
}

// BuildAnchorTx builds the anchor account's transaction that publishes head: memo hash = the
// head's hash, one ManageData op (AnchorDataName = the head's sequence number), valid until
// validUntil. accountSeq is the anchor account's current sequence number.
func BuildAnchorTx(account string, accountSeq int64, head ChainHead, validUntil time.Time) (*txnbuild.Transaction, error) {
	raw, err := hex.DecodeString(head.Hash)
	if err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("chain head %q is not a SHA-256 hex hash", head.Hash)
	}
	if head.Seq <= 0 {
		return nil, errors.New("the chain is empty: nothing to anchor")
	}
	var memo txnbuild.MemoHash
	copy(memo[:], raw)
	return txnbuild.NewTransaction(txnbuild.TransactionParams{
		SourceAccount:        &txnbuild.SimpleAccount{AccountID: account, Sequence: accountSeq},
		IncrementSequenceNum: true,
		Operations:           []txnbuild.Operation{&txnbuild.ManageData{Name: AnchorDataName, Value: []byte(strconv.FormatInt(head.Seq, 10))}},
		BaseFee:              txnbuild.MinBaseFee,
		Memo:                 memo,
		Preconditions:        txnbuild.Preconditions{TimeBounds: txnbuild.NewTimebounds(0, validUntil.Unix())},
	})
}

// ParseAnchorTx reads an anchor out of a transaction envelope; ok is false when the envelope
// is not an anchor (another memo or operation).
func ParseAnchorTx(envelope string) (head ChainHead, ok bool) {
	gtx, err := txnbuild.TransactionFromXDR(envelope)
	if err != nil {
		return head, false
	}
	tx, isTx := gtx.Transaction()
	if !isTx {
		return head, false
	}
	memo, isHash := tx.Memo().(txnbuild.MemoHash)
	if !isHash {
		return head, false
	}
	for _, op := range tx.Operations() {
		if md, isMD := op.(*txnbuild.ManageData); isMD && md.Name == AnchorDataName {
			seq, err := strconv.ParseInt(string(md.Value), 10, 64)
			if err != nil || seq <= 0 {
				return head, false
			}
			return ChainHead{Seq: seq, Hash: hex.EncodeToString(memo[:])}, true
		}
	}
	return head, false
}

// CheckAnchors compares the event chain as the database holds it (hashAt answers an event's
// hash by sequence number, found false when there is no such event) with the anchors
// published on chain. Each returned line is one anchor the database no longer agrees with:
// an event rewritten (and the chain re-hashed), or events removed.
func CheckAnchors(anchors []Anchor, hashAt func(seq int64) (hash string, found bool)) []string {
	var bad []string
	for _, a := range anchors {
		got, found := hashAt(a.Seq)
		switch {
		case !found:
			bad = append(bad, fmt.Sprintf("anchor %s (%s) pins event %d, which the database does not have: events were removed",
				short(a.TxHash), a.At.UTC().Format(time.RFC3339), a.Seq))
		case got != strings.ToLower(a.Hash):
			bad = append(bad, fmt.Sprintf("anchor %s (%s) pins event %d at hash %s, the database has %s: the chain was rewritten",
				short(a.TxHash), a.At.UTC().Format(time.RFC3339), a.Seq, short(a.Hash), short(got)))
		}
	}
	return bad
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}
