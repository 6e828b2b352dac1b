// Package chain reads and writes what the treasury keeps on Stellar through Horizon, for the
// activities and the CLI alike: the treasury account's balances, a transaction's outcome, and
// the anchor account's published chain heads. The rules applied to what it reads live in
// contracts; this package only does the I/O.
package chain

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/clients/horizonclient"
	"github.com/stellar/go-stellar-sdk/keypair"
	hProtocol "github.com/stellar/go-stellar-sdk/protocols/horizon"

	"github.com/creatorvault/orchestrator/contracts"
)

// Client reaches one Horizon server on one network.
type Client struct {
	horizon    *horizonclient.Client
	passphrase string
}

// New returns a client of the Horizon at url; hc nil means a 30-second timeout.
func New(url, passphrase string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	return &Client{horizon: &horizonclient.Client{HorizonURL: url, HTTP: hc}, passphrase: passphrase}
}

// ErrNoAccount means the account does not exist on the network.
var ErrNoAccount = errors.New("the account does not exist on the network")

// Account reads an account's balances and what sets its minimum balance.
func (c *Client) Account(_ context.Context, id string) (contracts.ChainAccount, error) {
	acct, err := c.horizon.AccountDetail(horizonclient.AccountRequest{AccountID: id})
	if horizonclient.IsNotFoundError(err) {
		return contracts.ChainAccount{}, fmt.Errorf("%s: %w", id, ErrNoAccount)
	}
	if err != nil {
		return contracts.ChainAccount{}, fmt.Errorf("load %s from Horizon: %w", id, err)
	}
	out := contracts.ChainAccount{Credit: map[string]int64{}, Subentries: int64(acct.SubentryCount),
		Sponsoring: int64(acct.NumSponsoring), Sponsored: int64(acct.NumSponsored)}
	for _, b := range acct.Balances {
		v, err := amount.ParseInt64(b.Balance)
		if err != nil {
			return out, fmt.Errorf("%s: balance %q: %w", id, b.Balance, err)
		}
		if b.Type == "native" {
			out.Native = v
		} else if b.Code != "" {
			out.Credit[b.Code+":"+b.Issuer] = v
		}
	}
	return out, nil
}

// Transaction reads a transaction's outcome; Found is false when the network has none.
func (c *Client) Transaction(_ context.Context, hash string) (contracts.ChainTx, error) {
	tx, err := c.horizon.TransactionDetail(hash)
	if horizonclient.IsNotFoundError(err) {
		return contracts.ChainTx{}, nil
	}
	if err != nil {
		return contracts.ChainTx{}, fmt.Errorf("look up transaction %s: %w", hash, err)
	}
	return contracts.ChainTx{Found: true, Successful: tx.Successful, Envelope: tx.EnvelopeXdr}, nil
}

const pageSize = 200

// anchorsPage reads one page of the account's transactions and keeps the successful anchors
// it sent itself.
func (c *Client) anchorsPage(account string, order horizonclient.Order, cursor string) (anchors []contracts.Anchor, next string, more bool, err error) {
	page, err := c.horizon.Transactions(horizonclient.TransactionRequest{ForAccount: account, Order: order, Limit: pageSize, Cursor: cursor})
	if horizonclient.IsNotFoundError(err) {
		return nil, "", false, nil
	}
	if err != nil {
		return nil, "", false, fmt.Errorf("list %s's transactions: %w", account, err)
	}
	recs := page.Embedded.Records
	for _, tx := range recs {
		if a, ok := anchorOf(account, tx); ok {
			anchors = append(anchors, a)
		}
	}
	if len(recs) > 0 {
		next = recs[len(recs)-1].PagingToken()
	}
	return anchors, next, len(recs) == pageSize, nil
}

func anchorOf(account string, tx hProtocol.Transaction) (contracts.Anchor, bool) {
	if !tx.Successful || tx.Account != account {
		return contracts.Anchor{}, false
	}
	head, ok := contracts.ParseAnchorTx(tx.EnvelopeXdr)
	if !ok {
		return contracts.Anchor{}, false
	}
	return contracts.Anchor{ChainHead: head, TxHash: tx.Hash, At: tx.LedgerCloseTime.UTC()}, true
}

// Anchors lists every chain head the anchor account published, oldest first.
func (c *Client) Anchors(_ context.Context, account string) ([]contracts.Anchor, error) {
	var all []contracts.Anchor
	cursor := ""
	for {
		page, next, more, err := c.anchorsPage(account, horizonclient.OrderAsc, cursor)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		if !more {
			return all, nil
		}
		cursor = next
	}
}

// LatestAnchor returns the newest published head; found is false when there is none.
func (c *Client) LatestAnchor(_ context.Context, account string) (a contracts.Anchor, found bool, err error) {
	cursor := ""
	for {
		page, next, more, err := c.anchorsPage(account, horizonclient.OrderDesc, cursor)
		if err != nil || len(page) > 0 {
			if len(page) > 0 {
				return page[0], true, nil
			}
			return a, false, err
		}
		if !more {
			return a, false, nil
		}
		cursor = next
	}
}

// Publish anchors head from the anchor account, unless its newest anchor already is head (a
// retry after a submission whose answer was lost). The transaction's outcome is read: an
// included but failed transaction is an error.
func (c *Client) Publish(ctx context.Context, key *keypair.Full, head contracts.ChainHead, now time.Time) (contracts.Anchor, error) {
	latest, found, err := c.LatestAnchor(ctx, key.Address())
	if err != nil {
		return contracts.Anchor{}, err
	}
	if found && latest.ChainHead == head {
		return latest, nil
	}
	acct, err := c.horizon.AccountDetail(horizonclient.AccountRequest{AccountID: key.Address()})
	if horizonclient.IsNotFoundError(err) {
		return contracts.Anchor{}, fmt.Errorf("anchor account %s: %w", key.Address(), ErrNoAccount)
	}
	if err != nil {
		return contracts.Anchor{}, fmt.Errorf("load anchor account: %w", err)
	}
	tx, err := contracts.BuildAnchorTx(key.Address(), acct.Sequence, head, now.Add(5*time.Minute))
	if err != nil {
		return contracts.Anchor{}, err
	}
	if tx, err = tx.Sign(c.passphrase, key); err != nil {
		return contracts.Anchor{}, err
	}
	resp, err := c.horizon.SubmitTransaction(tx)
	if err != nil {
		if herr := horizonclient.GetError(err); herr != nil {
			if rc, rerr := herr.ResultCodes(); rerr == nil {
				return contracts.Anchor{}, fmt.Errorf("anchor refused: %s %v", rc.TransactionCode, rc.OperationCodes)
			}
		}
		return contracts.Anchor{}, fmt.Errorf("submit anchor: %w", err)
	}
	if !resp.Successful {
		return contracts.Anchor{}, fmt.Errorf("anchor transaction %s failed on chain", resp.Hash)
	}
	at := resp.LedgerCloseTime.UTC()
	if at.IsZero() {
		at = now.UTC()
	}
	return contracts.Anchor{ChainHead: head, TxHash: resp.Hash, At: at}, nil
}

// Books is what reconciliation reads from the treasury's database (db.Treasury).
type Books interface {
	Fund(ctx context.Context) ([]contracts.FundAsset, error)
	ExecutedBailouts(ctx context.Context) ([]contracts.BookedBailout, error)
}

// Reconcile reads the books and the chain and compares them (contracts.Reconcile): the
// treasury account's balances, and the transaction of every executed bailout.
func (c *Client) Reconcile(ctx context.Context, books Books, treasury, usdcIssuer string) (contracts.ReconcileReport, error) {
	fund, err := books.Fund(ctx)
	if err != nil {
		return contracts.ReconcileReport{}, fmt.Errorf("read the fund: %w", err)
	}
	bailouts, err := books.ExecutedBailouts(ctx)
	if err != nil {
		return contracts.ReconcileReport{}, fmt.Errorf("read executed bailouts: %w", err)
	}
	acct, err := c.Account(ctx, treasury)
	if err != nil {
		return contracts.ReconcileReport{}, fmt.Errorf("treasury account: %w", err)
	}
	txs := map[string]contracts.ChainTx{}
	for _, b := range bailouts {
		if _, seen := txs[b.TxHash]; seen {
			continue
		}
		if txs[b.TxHash], err = c.Transaction(ctx, b.TxHash); err != nil {
			return contracts.ReconcileReport{}, err
		}
	}
	return contracts.Reconcile(fund, acct, usdcIssuer, treasury, c.passphrase, bailouts, txs), nil
}

// ChainHashes is what anchor verification reads from the database (db.Treasury).
type ChainHashes interface {
	EventHashes(ctx context.Context, seqs []int64) (map[int64]string, error)
}

// VerifyAnchors checks the database's event chain against every head the anchor account
// published. It returns the anchors checked and one line per anchor the database no longer
// agrees with.
func (c *Client) VerifyAnchors(ctx context.Context, db ChainHashes, anchorAccount string) ([]contracts.Anchor, []string, error) {
	anchors, err := c.Anchors(ctx, anchorAccount)
	if err != nil {
		return nil, nil, err
	}
	seqs := make([]int64, 0, len(anchors))
	for _, a := range anchors {
		seqs = append(seqs, a.Seq)
	}
	hashes, err := db.EventHashes(ctx, seqs)
	if err != nil {
		return nil, nil, err
	}
	bad := contracts.CheckAnchors(anchors, func(seq int64) (string, bool) { h, ok := hashes[seq]; return h, ok })
	return anchors, bad, nil
}
