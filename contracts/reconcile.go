package contracts

import (
	"fmt"
	"sort"
)

// BaseReserveStroops is the network's base reserve (0.5 XLM): an account must keep
// (2 + subentries + sponsoring - sponsored) of them, so that much of the treasury's XLM is
// not the fund's to pay out.
const BaseReserveStroops = 5_000_000

// FundAsset is one asset of the fund as the database books it. Balance includes what pending
// bailouts reserve: that money has not left the account yet.
type FundAsset struct {
	Asset    string `json:"asset"`
	Balance  int64  `json:"balance_stroops"`
	Reserved int64  `json:"reserved_stroops"`
}

// ChainAccount is the treasury account as Horizon reports it.
type ChainAccount struct {
	// Native is the XLM balance; Credit the other balances by "CODE:ISSUER"; all in stroops.
	Native int64
	Credit map[string]int64
	// Subentries, Sponsoring and Sponsored set the minimum balance the account must keep.
	Subentries, Sponsoring, Sponsored int64
}

// MinimumBalance is the XLM the account must keep: not spendable, so not part of the fund.
func (c ChainAccount) MinimumBalance() int64 {
	return (2 + c.Subentries + c.Sponsoring - c.Sponsored) * BaseReserveStroops
}

// ChainTx is what Horizon knows of a transaction.
type ChainTx struct {
	Found      bool
	Successful bool
	// Envelope is the transaction as submitted (base64), to read what it paid.
	Envelope string
}

// BookedBailout is a bailout the database books as executed.
type BookedBailout struct {
	ID            string `json:"id"`
	Asset         string `json:"asset"`
	AmountStroops int64  `json:"amount_stroops"`
	Destination   string `json:"destination"`
	TxHash        string `json:"tx_hash"`
}

// Difference is one way the books and the chain disagree.
type Difference struct {
	// Subject is the asset or "bailout <id>".
	Subject string `json:"subject"`
	Detail  string `json:"detail"`
}

// ReconcileReport is the outcome of comparing the books with the chain.
type ReconcileReport struct {
	Assets      []AssetLine  `json:"assets"`
	Bailouts    int          `json:"bailouts_checked"`
	Differences []Difference `json:"differences"`
}

// AssetLine is one asset's comparison.
type AssetLine struct {
	Asset    string `json:"asset"`
	Balance  int64  `json:"balance_stroops"`
	Reserved int64  `json:"reserved_stroops"`
	// Chain is what the account holds of the asset and may spend (XLM: above its minimum).
	Chain int64 `json:"chain_stroops"`
}

// Drift reports whether anything disagrees.
func (r ReconcileReport) Drift() bool { return len(r.Differences) > 0 }

// Reconcile compares the fund with the treasury account on chain (per asset, the booked
// balance, reserved included, against what the account holds: its XLM above the minimum
// balance, its USDC trustline) and every executed bailout with its transaction (found,
// successful, paying the booked amount of the booked asset to the booked destination from
// the treasury). It is pure: the caller fetched everything.
func Reconcile(fund []FundAsset, acct ChainAccount, usdcIssuer, treasury, passphrase string,
	bailouts []BookedBailout, txs map[string]ChainTx) ReconcileReport {
	r := ReconcileReport{Assets: []AssetLine{}, Differences: []Difference{}, Bailouts: len(bailouts)}
	sort.Slice(fund, func(i, j int) bool { return fund[i].Asset < fund[j].Asset })
	for _, f := range fund {
		line := AssetLine{Asset: f.Asset, Balance: f.Balance, Reserved: f.Reserved}
		switch f.Asset {
		case AssetXLM:
			line.Chain = acct.Native - acct.MinimumBalance()
		default:
			held, ok := acct.Credit[f.Asset+":"+usdcIssuer]
			if !ok && f.Balance != 0 {
				r.Differences = append(r.Differences, Difference{f.Asset, "the treasury account has no " + f.Asset + " trustline for issuer " + usdcIssuer})
			}
			line.Chain = held
		}
		if line.Chain != f.Balance {
			r.Differences = append(r.Differences, Difference{f.Asset, fmt.Sprintf(
				"the books hold %s (%s reserved), the chain %s: off by %s",
				FormatStroops(f.Balance), FormatStroops(f.Reserved), FormatStroops(line.Chain), FormatStroops(line.Chain-f.Balance))})
		}
		r.Assets = append(r.Assets, line)
	}
	for _, b := range bailouts {
		subject := "bailout " + b.ID
		tx := txs[b.TxHash]
		switch {
		case !tx.Found:
			r.Differences = append(r.Differences, Difference{subject, "booked as executed by " + b.TxHash + ", which the network does not have"})
			continue
		case !tx.Successful:
			r.Differences = append(r.Differences, Difference{subject, "booked as executed, but its transaction " + b.TxHash + " failed on chain: nothing was paid"})
			continue
		}
		s, err := DecodeBailoutEnvelope(tx.Envelope, passphrase)
		if err != nil {
			r.Differences = append(r.Differences, Difference{subject, "transaction " + b.TxHash + ": " + err.Error()})
			continue
		}
		for _, m := range s.Mismatches(ExpectedBailout{Asset: b.Asset, AmountStroops: b.AmountStroops, Destination: b.Destination, TxHash: b.TxHash, Treasury: treasury}) {
			r.Differences = append(r.Differences, Difference{subject, m})
		}
	}
	return r
}
