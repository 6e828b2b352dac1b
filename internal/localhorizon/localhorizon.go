// Package localhorizon is a small stand-in for Stellar Horizon, for tests and `orchestrator
// dev`: it implements only what bailouts use (GET /accounts/{id}, GET /transactions/{hash},
// POST /transactions). A submitted envelope is decoded with the Stellar SDK and checked the way
// the network would for a 5-of-5 treasury: its source is a known account, its time bounds
// contain the stand-in's clock, its min-sequence precondition holds, and it carries a valid
// signature (over the hash under the network passphrase) from every required signer. It
// moves no money; it records the transaction and advances the account's sequence.
package localhorizon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/txnbuild"
)

// Server is the stand-in's state; it is an http.Handler.
type Server struct {
	passphrase string
	mu         sync.Mutex
	now        func() time.Time
	accounts   map[string]*account
	txs        map[string]record
	submits    int
	log        []string // hashes in ledger order (history.go)
}

type account struct {
	seq int64
	// balances by "XLM" or "CODE:ISSUER", in stroops; nil means not modelled (balances.go).
	balances map[string]int64
	signers  []string // required signers (5-of-5); empty means the account's own key
}

type record struct {
	Failed   bool // included but failed (balances.go)
	Hash     string
	Envelope string
	At       time.Time
	Source   string
	Seq      int64
}

// New returns a stand-in for the network with the given passphrase.
func New(passphrase string) *Server {
	return &Server{passphrase: passphrase, now: time.Now, accounts: map[string]*account{}, txs: map[string]record{}}
}

// SetClock replaces the clock time bounds are checked against.
func (s *Server) SetClock(now func() time.Time) { s.mu.Lock(); s.now = now; s.mu.Unlock() }

// AddAccount creates an account with a sequence number whose transactions need a signature
// from every one of signers (the treasury after `multisig-setup`).
func (s *Server) AddAccount(id string, seq int64, signers []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id] = &account{seq: seq, signers: append([]string(nil), signers...)}
}

// BumpSequence moves an account's sequence, as other transactions of the treasury would.
func (s *Server) BumpSequence(id string, by int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id].seq += by
}

// Submitted returns how many submissions were accepted.
func (s *Server) Submitted() int { s.mu.Lock(); defer s.mu.Unlock(); return s.submits }

// Transactions returns the accepted envelopes by hash.
func (s *Server) Transactions() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for h, r := range s.txs {
		out[h] = r.Envelope
	}
	return out
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id, ok := accountSubpath(r.URL.Path); ok && r.Method == http.MethodGet {
		s.accountTransactions(w, r, id)
		return
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/accounts/"):
		s.getAccount(w, strings.TrimPrefix(r.URL.Path, "/accounts/"))
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/transactions/"):
		s.getTx(w, strings.TrimPrefix(r.URL.Path, "/transactions/"))
	case r.Method == http.MethodPost && r.URL.Path == "/transactions":
		s.submit(w, r)
	default:
		problem(w, http.StatusNotFound, "not_found", "Resource Missing", nil)
	}
}

func problem(w http.ResponseWriter, status int, typ, title string, extras map[string]any) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"type": "https://stellar.org/horizon-errors/" + typ, "title": title, "status": status, "extras": extras,
	})
}

func txFailed(w http.ResponseWriter, code, detail string) {
	problem(w, http.StatusBadRequest, "transaction_failed", "Transaction Failed", map[string]any{
		"result_codes": map[string]any{"transaction": code}, "detail": detail,
	})
}

func (s *Server) getAccount(w http.ResponseWriter, id string) {
	s.mu.Lock()
	a, ok := s.accounts[id]
	var seq int64
	if ok {
		seq = a.seq
	}
	s.mu.Unlock()
	if !ok {
		problem(w, http.StatusNotFound, "not_found", "Resource Missing", nil)
		return
	}
	w.Header().Set("Content-Type", "application/hal+json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "account_id": id, "sequence": strconv.FormatInt(seq, 10),
		"balances": s.balancesJSON(id)})
}

func (s *Server) txJSON(r record) map[string]any {
	return map[string]any{"id": r.Hash, "hash": r.Hash, "successful": !r.Failed, "ledger": 1,
		"created_at": r.At.UTC().Format(time.RFC3339), "source_account": r.Source,
		"source_account_sequence": strconv.FormatInt(r.Seq, 10), "envelope_xdr": r.Envelope}
}

func (s *Server) getTx(w http.ResponseWriter, hash string) {
	s.mu.Lock()
	rec, ok := s.txs[hash]
	s.mu.Unlock()
	if !ok {
		problem(w, http.StatusNotFound, "not_found", "Resource Missing", nil)
		return
	}
	w.Header().Set("Content-Type", "application/hal+json")
	_ = json.NewEncoder(w).Encode(s.txJSON(rec))
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		problem(w, http.StatusBadRequest, "bad_request", "Bad Request", nil)
		return
	}
	env := r.PostForm.Get("tx")
	gtx, err := txnbuild.TransactionFromXDR(env)
	if err != nil {
		txFailed(w, "tx_malformed", err.Error())
		return
	}
	tx, ok := gtx.Transaction()
	if !ok {
		txFailed(w, "tx_malformed", "fee bump transactions are not supported here")
		return
	}
	hash, err := tx.HashHex(s.passphrase)
	if err != nil {
		txFailed(w, "tx_malformed", err.Error())
		return
	}
	rawHash, _ := tx.Hash(s.passphrase)

	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, dup := s.txs[hash]; dup {
		// Horizon answers a resubmission of an applied transaction with its record too.
		w.Header().Set("Content-Type", "application/hal+json")
		_ = json.NewEncoder(w).Encode(s.txJSON(rec))
		return
	}
	src := tx.SourceAccount().AccountID
	acct, ok := s.accounts[src]
	if !ok {
		txFailed(w, "tx_no_source_account", src)
		return
	}
	now := s.now().Unix()
	tb := tx.Timebounds()
	if tb.MinTime != 0 && now < tb.MinTime {
		txFailed(w, "tx_too_early", fmt.Sprintf("min time %d, now %d", tb.MinTime, now))
		return
	}
	if tb.MaxTime != 0 && now > tb.MaxTime {
		txFailed(w, "tx_too_late", fmt.Sprintf("max time %d, now %d", tb.MaxTime, now))
		return
	}
	seq := tx.SequenceNumber()
	if min := tx.ToXDR().MinSeqNum(); min != nil {
		if acct.seq < int64(*min) || acct.seq >= seq {
			txFailed(w, "tx_bad_seq", fmt.Sprintf("account sequence %d outside [%d, %d)", acct.seq, *min, seq))
			return
		}
	} else if seq != acct.seq+1 {
		txFailed(w, "tx_bad_seq", fmt.Sprintf("sequence %d, want %d", seq, acct.seq+1))
		return
	}
	required := acct.signers
	if len(required) == 0 {
		required = []string{src}
	}
	for _, signer := range required {
		kp, err := keypair.ParseAddress(signer)
		if err != nil {
			txFailed(w, "tx_bad_auth", "bad signer "+signer)
			return
		}
		found := false
		for _, sig := range tx.Signatures() {
			if sig.Hint == kp.Hint() && kp.Verify(rawHash[:], sig.Signature) == nil {
				found = true
				break
			}
		}
		if !found {
			txFailed(w, "tx_bad_auth", "no valid signature from "+signer)
			return
		}
	}
	if len(tx.Signatures()) != len(required) {
		txFailed(w, "tx_bad_auth_extra", "signatures beyond the required signers")
		return
	}
	acct.seq = seq
	rec := record{Hash: hash, Envelope: env, At: s.now(), Source: src, Seq: seq, Failed: !s.applyLocked(tx)}
	s.txs[hash] = rec
	s.log = append(s.log, hash)
	s.submits++
	w.Header().Set("Content-Type", "application/hal+json")
	_ = json.NewEncoder(w).Encode(s.txJSON(rec))
}
