// Package localhorizon is a small stand-in for Stellar Horizon, for tests and `orchestrator
// dev`: it implements what bailouts use (GET /accounts/{id}, GET /transactions/{hash},
// POST /transactions) and judges a submitted envelope the way the network does, per account:
//
//   - the transaction source exists and its sequence number is next (or, with a CAP-21
//     minSeqNum precondition, the account's sequence is in [minSeqNum, seq));
//   - the time bounds contain the stand-in's clock; the fee is at least 100 stroops per
//     operation and the source can pay it above its minimum balance;
//   - signatures: the low threshold of the transaction source, the threshold of each
//     operation's source for that operation (medium for payments and account creation, low
//     for BumpSequence), weights summed over distinct valid signers; no unused signature;
//   - balances: the operations are applied in order; a payment larger than what the source
//     holds above its minimum balance FAILS with op_underfunded (likewise op_no_destination,
//     op_no_trust, op_src_no_trust), and the transaction is still included with
//     successful=false, its sequence number and fee consumed.
//
// It accepts only what the network would; it knows Payment, CreateAccount, BumpSequence and
// ManageData (the chain anchors; its reserve is not modelled) and refuses other operations
// rather than pretend to apply them.
package localhorizon

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/txnbuild"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/creatorvault/orchestrator/contracts"
)

// BaseReserve is the network's base reserve in stroops (0.5 XLM); an account's minimum
// balance is (2 + subentries) base reserves.
const BaseReserve = 5_000_000

// Native is the balance key of lumens.
const Native = "XLM"

// Server is the stand-in's state; it is an http.Handler.
type Server struct {
	passphrase string
	mu         sync.Mutex
	now        func() time.Time
	accounts   map[string]*account
	txs        map[string]record
	submits    int
	log        []string // hashes in ledger order (history.go)
	attempts   int
	ledger     int32
	// SubmitHook, when set, runs after a submission was judged and before the answer is
	// written: a test can stop the client there (a worker dying after submit).
	SubmitHook func(hash string)
}

type account struct {
	seq          int64
	masterWeight int
	signers      map[string]int
	low, med     int
	balances     map[string]int64 // Native or "CODE:ISSUER"; a credit key is a trustline
}

func (a *account) minBalance() int64 {
	sub := len(a.signers)
	for k := range a.balances {
		if k != Native {
			sub++
		}
	}
	return int64(2+sub) * BaseReserve
}

type record struct {
	Hash       string
	Envelope   string
	Result     string
	Successful bool
	Ledger     int32
	Fee        int64
	At         time.Time
	Source     string
	Seq        int64
}

// New returns a stand-in for the network with the given passphrase.
func New(passphrase string) *Server {
	return &Server{passphrase: passphrase, now: time.Now, accounts: map[string]*account{}, txs: map[string]record{}, ledger: 1}
}

// SetClock replaces the clock time bounds are checked against.
func (s *Server) SetClock(now func() time.Time) { s.mu.Lock(); s.now = now; s.mu.Unlock() }

// AddAccount creates an account at a sequence number. With signers, it is a multisig account
// like the treasury after `multisig-setup`: master weight 0, each signer weight 1, thresholds
// len(signers). Without, it is an ordinary account signed by its own key. Balances start at
// zero; Fund sets them.
func (s *Server) AddAccount(id string, seq int64, signers []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &account{seq: seq, masterWeight: 1, signers: map[string]int{}, balances: map[string]int64{Native: 0}}
	if len(signers) > 0 {
		a.masterWeight, a.low, a.med = 0, len(signers), len(signers)
		for _, k := range signers {
			a.signers[k] = 1
		}
	}
	s.accounts[id] = a
}

// Fund sets an account's balance of asset (Native or "CODE:ISSUER", which also opens the
// trustline) in stroops.
func (s *Server) Fund(id, asset string, stroops int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id].balances[asset] = stroops
}

// Balance returns an account's balance of asset in stroops.
func (s *Server) Balance(id, asset string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.accounts[id]; ok {
		return a.balances[asset]
	}
	return 0
}

// Sequence returns an account's sequence number.
func (s *Server) Sequence(id string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accounts[id].seq
}

// BumpSequence moves an account's sequence, as other transactions of the account would.
func (s *Server) BumpSequence(id string, by int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[id].seq += by
}

// Submitted returns how many submitted transactions were included in a ledger (successful or
// not).
func (s *Server) Submitted() int { s.mu.Lock(); defer s.mu.Unlock(); return s.submits }

// Attempts returns how many envelopes were posted, whatever the outcome.
func (s *Server) Attempts() int { s.mu.Lock(); defer s.mu.Unlock(); return s.attempts }

// Transactions returns the included envelopes by hash.
func (s *Server) Transactions() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for h, r := range s.txs {
		out[h] = r.Envelope
	}
	return out
}

// Successful reports whether the included transaction hash succeeded (false when it failed
// or is in no ledger).
func (s *Server) Successful(hash string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.txs[hash].Successful
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

func hal(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/hal+json")
	_ = json.NewEncoder(w).Encode(v)
}

func assetJSON(key string, stroops int64) map[string]any {
	b := map[string]any{"balance": amount.StringFromInt64(stroops)}
	if key == Native {
		b["asset_type"] = "native"
		return b
	}
	code, issuer, _ := strings.Cut(key, ":")
	b["asset_type"], b["asset_code"], b["asset_issuer"] = "credit_alphanum4", code, issuer
	if len(code) > 4 {
		b["asset_type"] = "credit_alphanum12"
	}
	return b
}

func (s *Server) getAccount(w http.ResponseWriter, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.accounts[id]
	if !ok {
		problem(w, http.StatusNotFound, "not_found", "Resource Missing", nil)
		return
	}
	keys := make([]string, 0, len(a.balances))
	for k := range a.balances {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var balances []map[string]any
	for _, k := range keys {
		balances = append(balances, assetJSON(k, a.balances[k]))
	}
	signers := []map[string]any{{"key": id, "weight": a.masterWeight, "type": "ed25519_public_key"}}
	for k, wt := range a.signers {
		signers = append(signers, map[string]any{"key": k, "weight": wt, "type": "ed25519_public_key"})
	}
	hal(w, map[string]any{"id": id, "account_id": id, "sequence": strconv.FormatInt(a.seq, 10),
		"subentry_count": len(a.signers) + len(a.balances) - 1, "balances": balances, "signers": signers,
		"thresholds": map[string]any{"low_threshold": a.low, "med_threshold": a.med, "high_threshold": a.med}})
}

func (s *Server) txJSON(r record) map[string]any {
	return map[string]any{"id": r.Hash, "hash": r.Hash, "successful": r.Successful, "ledger": r.Ledger,
		"created_at": r.At.UTC().Format(time.RFC3339), "source_account": r.Source,
		"source_account_sequence": strconv.FormatInt(r.Seq, 10), "envelope_xdr": r.Envelope,
		"result_xdr": r.Result, "fee_charged": strconv.FormatInt(r.Fee, 10)}
}

func (s *Server) getTx(w http.ResponseWriter, hash string) {
	s.mu.Lock()
	rec, ok := s.txs[hash]
	s.mu.Unlock()
	if !ok {
		problem(w, http.StatusNotFound, "not_found", "Resource Missing", nil)
		return
	}
	hal(w, s.txJSON(rec))
}

// refusal is a transaction the network does not include.
type refusal struct {
	code   xdr.TransactionResultCode
	ops    []xdr.OperationResult // for tx_failed at validation (op_bad_auth, ...)
	detail string
}

func refuse(code xdr.TransactionResultCode, format string, args ...any) *refusal {
	return &refusal{code: code, detail: fmt.Sprintf(format, args...)}
}

func resultXDR(code xdr.TransactionResultCode, fee int64, ops []xdr.OperationResult) string {
	r := xdr.TransactionResult{FeeCharged: xdr.Int64(fee), Result: xdr.TransactionResultResult{Code: code}}
	if code == xdr.TransactionResultCodeTxFailed || code == xdr.TransactionResultCodeTxSuccess {
		r.Result.Results = &ops
	}
	out, _ := xdr.MarshalBase64(r)
	return out
}

func resultCodes(code xdr.TransactionResultCode, ops []xdr.OperationResult) map[string]any {
	rc := map[string]any{"transaction": contracts.TxCodes[code]}
	if len(ops) > 0 {
		_, names, _ := contracts.ResultCodes(resultXDR(code, 0, ops))
		rc["operations"] = names
	}
	return rc
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		problem(w, http.StatusBadRequest, "bad_request", "Bad Request", nil)
		return
	}
	env := r.PostForm.Get("tx")
	s.mu.Lock()
	s.attempts++
	rec, ref := s.judge(env)
	hook := s.SubmitHook
	s.mu.Unlock()
	if hook != nil && rec != nil {
		hook(rec.Hash)
	}
	switch {
	case ref != nil:
		extras := map[string]any{"result_codes": resultCodes(ref.code, ref.ops), "detail": ref.detail, "envelope_xdr": env,
			"result_xdr": resultXDR(ref.code, 0, ref.ops)}
		problem(w, http.StatusBadRequest, "transaction_failed", "Transaction Failed", extras)
	case !rec.Successful:
		// Horizon answers an included, failed transaction as a 400 too; it is in the ledger.
		tx, ops, _ := contracts.ResultCodes(rec.Result)
		problem(w, http.StatusBadRequest, "transaction_failed", "Transaction Failed", map[string]any{
			"result_codes": map[string]any{"transaction": tx, "operations": ops},
			"envelope_xdr": env, "result_xdr": rec.Result, "hash": rec.Hash})
	default:
		hal(w, s.txJSON(*rec))
	}
}

// judge decides a submission under s.mu: a refusal (not included) or the included record.
func (s *Server) judge(env string) (*record, *refusal) {
	tx, err := contracts.DecodeEnvelope(env)
	if err != nil {
		return nil, refuse(xdr.TransactionResultCodeTxMalformed, "%v", err)
	}
	hash, err := tx.HashHex(s.passphrase)
	if err != nil {
		return nil, refuse(xdr.TransactionResultCodeTxMalformed, "%v", err)
	}
	if rec, dup := s.txs[hash]; dup {
		// Horizon answers a resubmission of an included transaction with its record.
		return &rec, nil
	}
	rawHash, _ := tx.Hash(s.passphrase)
	src := tx.SourceAccount().AccountID
	acct, ok := s.accounts[src]
	if !ok {
		return nil, refuse(xdr.TransactionResultCodeTxNoAccount, "%s", src)
	}
	now := s.now()
	tb := tx.Timebounds()
	if tb.MinTime != 0 && now.Unix() < tb.MinTime {
		return nil, refuse(xdr.TransactionResultCodeTxTooEarly, "min time %d, now %d", tb.MinTime, now.Unix())
	}
	if tb.MaxTime != 0 && now.Unix() > tb.MaxTime {
		return nil, refuse(xdr.TransactionResultCodeTxTooLate, "max time %d, now %d", tb.MaxTime, now.Unix())
	}
	ops := tx.Operations()
	if len(ops) == 0 {
		return nil, refuse(xdr.TransactionResultCodeTxMissingOperation, "no operations")
	}
	fee := int64(txnbuild.MinBaseFee) * int64(len(ops))
	if tx.MaxFee() < fee {
		return nil, refuse(xdr.TransactionResultCodeTxInsufficientFee, "fee %d, want %d", tx.MaxFee(), fee)
	}
	seq := tx.SequenceNumber()
	if min := tx.ToXDR().MinSeqNum(); min != nil {
		if acct.seq < int64(*min) || acct.seq >= seq {
			return nil, refuse(xdr.TransactionResultCodeTxBadSeq, "account sequence %d outside [%d, %d)", acct.seq, *min, seq)
		}
	} else if seq != acct.seq+1 {
		return nil, refuse(xdr.TransactionResultCodeTxBadSeq, "sequence %d, want %d", seq, acct.seq+1)
	}
	used := map[int]bool{}
	if !s.authorized(src, acct.low, tx.Signatures(), rawHash[:], used) {
		return nil, refuse(xdr.TransactionResultCodeTxBadAuth, "signatures do not meet the low threshold of %s", src)
	}
	if acct.balances[Native]-acct.minBalance() < fee {
		return nil, refuse(xdr.TransactionResultCodeTxInsufficientBalance, "%s cannot pay the fee above its minimum balance", src)
	}
	var opResults []xdr.OperationResult
	authFailed := false
	for _, op := range ops {
		opSrc := op.GetSourceAccount()
		if opSrc == "" {
			opSrc = src
		}
		a, ok := s.accounts[opSrc]
		switch {
		case !ok:
			authFailed = true
			opResults = append(opResults, xdr.OperationResult{Code: xdr.OperationResultCodeOpNoAccount})
		case !supported(op):
			authFailed = true
			opResults = append(opResults, xdr.OperationResult{Code: xdr.OperationResultCodeOpNotSupported})
		case !s.authorized(opSrc, threshold(a, op), tx.Signatures(), rawHash[:], used):
			authFailed = true
			opResults = append(opResults, xdr.OperationResult{Code: xdr.OperationResultCodeOpBadAuth})
		default:
			opResults = append(opResults, xdr.OperationResult{Code: xdr.OperationResultCodeOpInner})
		}
	}
	if authFailed {
		return nil, &refusal{code: xdr.TransactionResultCodeTxFailed, ops: opResults, detail: "an operation is not authorized"}
	}
	if len(used) != len(tx.Signatures()) {
		return nil, refuse(xdr.TransactionResultCodeTxBadAuthExtra, "signatures beyond the required signers")
	}

	// Valid: the sequence number and the fee are consumed whatever the operations do.
	acct.seq = seq
	acct.balances[Native] -= fee
	results, ok := s.apply(ops, src)
	code := xdr.TransactionResultCodeTxSuccess
	if !ok {
		code = xdr.TransactionResultCodeTxFailed
	}
	s.ledger++
	rec := record{Hash: hash, Envelope: env, Result: resultXDR(code, fee, results), Successful: ok, Ledger: s.ledger,
		Fee: fee, At: now, Source: src, Seq: seq}
	s.txs[hash] = rec
	s.log = append(s.log, hash)
	s.submits++
	return &rec, nil
}

func supported(op txnbuild.Operation) bool {
	switch op.(type) {
	case *txnbuild.Payment, *txnbuild.CreateAccount, *txnbuild.BumpSequence, *txnbuild.ManageData:
		return true
	}
	return false
}

// threshold is the threshold of the operation's source an operation needs.
func threshold(a *account, op txnbuild.Operation) int {
	if _, ok := op.(*txnbuild.BumpSequence); ok {
		return a.low
	}
	return a.med
}

// authorized sums the weights of account's distinct signers with a valid signature and
// compares with the threshold (at least one signature of positive weight, as the network
// requires); used collects the signatures that counted.
func (s *Server) authorized(id string, threshold int, sigs []xdr.DecoratedSignature, hash []byte, used map[int]bool) bool {
	a := s.accounts[id]
	weights := map[string]int{}
	if a.masterWeight > 0 {
		weights[id] = a.masterWeight
	}
	for k, wt := range a.signers {
		if wt > 0 {
			weights[k] = wt
		}
	}
	total := 0
	for k, wt := range weights {
		kp, err := keypair.ParseAddress(k)
		if err != nil {
			continue
		}
		for i, sig := range sigs {
			if sig.Hint == kp.Hint() && kp.Verify(hash, sig.Signature) == nil {
				used[i] = true
				total += wt
				break
			}
		}
	}
	return total > 0 && total >= threshold
}

func assetKey(a txnbuild.Asset) string {
	if a.IsNative() {
		return Native
	}
	return a.GetCode() + ":" + a.GetIssuer()
}

func payResult(code xdr.PaymentResultCode) xdr.OperationResult {
	return xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &xdr.OperationResultTr{
		Type: xdr.OperationTypePayment, PaymentResult: &xdr.PaymentResult{Code: code}}}
}

func createResult(code xdr.CreateAccountResultCode) xdr.OperationResult {
	return xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &xdr.OperationResultTr{
		Type: xdr.OperationTypeCreateAccount, CreateAccountResult: &xdr.CreateAccountResult{Code: code}}}
}

// apply runs the operations on a copy of the touched accounts and keeps the changes only
// when all succeed (a failed transaction changes nothing but its fee and sequence).
func (s *Server) apply(ops []txnbuild.Operation, txSrc string) ([]xdr.OperationResult, bool) {
	work := map[string]*account{}
	get := func(id string) (*account, bool) {
		if a, ok := work[id]; ok {
			return a, a != nil
		}
		a, ok := s.accounts[id]
		if !ok {
			return nil, false
		}
		c := *a
		c.balances = map[string]int64{}
		for k, v := range a.balances {
			c.balances[k] = v
		}
		work[id] = &c
		return &c, true
	}
	var results []xdr.OperationResult
	ok := true
	for _, op := range ops {
		srcID := op.GetSourceAccount()
		if srcID == "" {
			srcID = txSrc
		}
		src, _ := get(srcID)
		var res xdr.OperationResult
		switch o := op.(type) {
		case *txnbuild.Payment:
			res = payment(src, o, get)
		case *txnbuild.CreateAccount:
			res = createAccount(src, o, get, work)
		case *txnbuild.ManageData: // the treasury's chain anchors (a data entry; its reserve is not modelled)
			res = xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &xdr.OperationResultTr{
				Type: xdr.OperationTypeManageData, ManageDataResult: &xdr.ManageDataResult{Code: xdr.ManageDataResultCodeManageDataSuccess}}}
		case *txnbuild.BumpSequence:
			if o.BumpTo > src.seq {
				src.seq = o.BumpTo
			}
			res = xdr.OperationResult{Code: xdr.OperationResultCodeOpInner, Tr: &xdr.OperationResultTr{
				Type: xdr.OperationTypeBumpSequence, BumpSeqResult: &xdr.BumpSequenceResult{Code: xdr.BumpSequenceResultCodeBumpSequenceSuccess}}}
		}
		results = append(results, res)
		if !succeeded(res) {
			ok = false
		}
	}
	if ok {
		for id, a := range work {
			s.accounts[id] = a
		}
	}
	return results, ok
}

func succeeded(r xdr.OperationResult) bool {
	switch {
	case r.Code != xdr.OperationResultCodeOpInner || r.Tr == nil:
		return false
	case r.Tr.PaymentResult != nil:
		return r.Tr.PaymentResult.Code == xdr.PaymentResultCodePaymentSuccess
	case r.Tr.CreateAccountResult != nil:
		return r.Tr.CreateAccountResult.Code == xdr.CreateAccountResultCodeCreateAccountSuccess
	case r.Tr.BumpSeqResult != nil:
		return r.Tr.BumpSeqResult.Code == xdr.BumpSequenceResultCodeBumpSequenceSuccess
	case r.Tr.ManageDataResult != nil:
		return r.Tr.ManageDataResult.Code == xdr.ManageDataResultCodeManageDataSuccess
	}
	return false
}

func payment(src *account, p *txnbuild.Payment, get func(string) (*account, bool)) xdr.OperationResult {
	amt, err := amount.ParseInt64(p.Amount)
	if err != nil || amt <= 0 {
		return payResult(xdr.PaymentResultCodePaymentMalformed)
	}
	key := assetKey(p.Asset)
	dst, ok := get(p.Destination)
	if !ok {
		return payResult(xdr.PaymentResultCodePaymentNoDestination)
	}
	have, trusted := src.balances[key]
	if !trusted {
		return payResult(xdr.PaymentResultCodePaymentSrcNoTrust)
	}
	spendable := have
	if key == Native {
		spendable -= src.minBalance()
	}
	if amt > spendable {
		return payResult(xdr.PaymentResultCodePaymentUnderfunded)
	}
	if _, ok := dst.balances[key]; !ok {
		return payResult(xdr.PaymentResultCodePaymentNoTrust)
	}
	src.balances[key] -= amt
	dst.balances[key] += amt
	return payResult(xdr.PaymentResultCodePaymentSuccess)
}

func createAccount(src *account, c *txnbuild.CreateAccount, get func(string) (*account, bool), work map[string]*account) xdr.OperationResult {
	amt, err := amount.ParseInt64(c.Amount)
	if err != nil || amt <= 0 {
		return createResult(xdr.CreateAccountResultCodeCreateAccountMalformed)
	}
	if _, exists := get(c.Destination); exists {
		return createResult(xdr.CreateAccountResultCodeCreateAccountAlreadyExist)
	}
	if amt < 2*BaseReserve {
		return createResult(xdr.CreateAccountResultCodeCreateAccountLowReserve)
	}
	if amt > src.balances[Native]-src.minBalance() {
		return createResult(xdr.CreateAccountResultCodeCreateAccountUnderfunded)
	}
	src.balances[Native] -= amt
	// A new account's sequence number starts at ledger << 32 on the network; any fixed value
	// does here.
	work[c.Destination] = &account{seq: 1 << 32, masterWeight: 1, signers: map[string]int{}, balances: map[string]int64{Native: amt}}
	return createResult(xdr.CreateAccountResultCodeCreateAccountSuccess)
}

// NewChannels creates n ordinary accounts funded like `treasury channels-setup` funds
// channel accounts, and returns their keys.
func (s *Server) NewChannels(n int) []*keypair.Full {
	var out []*keypair.Full
	for range n {
		kp := keypair.MustRandom()
		s.AddAccount(kp.Address(), 1<<32, nil)
		s.Fund(kp.Address(), Native, contracts.ChannelStartingBalance)
		out = append(out, kp)
	}
	return out
}

// SeedsFile renders keys as a TREASURY_CHANNEL_SEEDS_FILE.
func SeedsFile(keys []*keypair.Full) []byte {
	var b strings.Builder
	for _, kp := range keys {
		b.WriteString(kp.Seed() + "\n")
	}
	return []byte(b.String())
}
