package localhorizon

import (
	"strings"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/txnbuild"
)

// SetBalance gives an account a balance of asset ("XLM" or "CODE:ISSUER") in stroops. From
// then on the account's balances are modelled: a payment it cannot cover is included and
// fails (op_underfunded), as on the network, and the fee of its transactions is charged.
func (s *Server) SetBalance(id, asset string, stroops int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.accounts[id]
	if a.balances == nil {
		a.balances = map[string]int64{}
	}
	a.balances[asset] = stroops
}

func assetKey(a txnbuild.Asset) string {
	if a == nil || a.IsNative() {
		return "XLM"
	}
	return a.GetCode() + ":" + a.GetIssuer()
}

// applyLocked applies an accepted transaction's payments between modelled accounts; false
// means it is included but failed (a source could not cover a payment): nothing moves but
// the fee.
func (s *Server) applyLocked(tx *txnbuild.Transaction) bool {
	if src := s.accounts[tx.SourceAccount().AccountID]; src != nil && src.balances != nil {
		src.balances["XLM"] -= tx.MaxFee()
	}
	type move struct {
		from, to *account
		asset    string
		stroops  int64
	}
	var moves []move
	need := map[*account]map[string]int64{}
	for _, op := range tx.Operations() {
		p, ok := op.(*txnbuild.Payment)
		if !ok {
			continue
		}
		from := p.SourceAccount
		if from == "" {
			from = tx.SourceAccount().AccountID
		}
		v, err := amount.ParseInt64(p.Amount)
		if err != nil {
			return false
		}
		m := move{from: s.accounts[from], to: s.accounts[p.Destination], asset: assetKey(p.Asset), stroops: v}
		if m.from != nil && m.from.balances != nil {
			if need[m.from] == nil {
				need[m.from] = map[string]int64{}
			}
			need[m.from][m.asset] += v
			if m.from.balances[m.asset] < need[m.from][m.asset] {
				return false // op_underfunded
			}
		}
		moves = append(moves, m)
	}
	for _, m := range moves {
		if m.from != nil && m.from.balances != nil {
			m.from.balances[m.asset] -= m.stroops
		}
		if m.to != nil && m.to.balances != nil {
			m.to.balances[m.asset] += m.stroops
		}
	}
	return true
}

// balancesJSON renders an account's balances the way Horizon does.
func (s *Server) balancesJSON(id string) []map[string]any {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []map[string]any{}
	a := s.accounts[id]
	if a == nil {
		return out
	}
	for asset, v := range a.balances {
		b := map[string]any{"balance": amount.StringFromInt64(v)}
		if asset == "XLM" {
			b["asset_type"] = "native"
		} else {
			code, issuer, _ := strings.Cut(asset, ":")
			b["asset_type"], b["asset_code"], b["asset_issuer"] = "credit_alphanum4", code, issuer
		}
		out = append(out, b)
	}
	return out
}
