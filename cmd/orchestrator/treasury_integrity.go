package main

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/chain"
)

// treasuryPool connects as the treasury (TREASURY_DATABASE_URL, else DATABASE_URL).
func (a *app) treasuryPool(cmd *cobra.Command) (*pgxpool.Pool, error) {
	if url := a.cfg.Treasury.DatabaseURL; url != "" {
		pool, err := db.Open(cmd.Context(), url)
		if err != nil {
			return nil, fmt.Errorf("TREASURY_DATABASE_URL: %w", err)
		}
		return pool, nil
	}
	return a.openPool(cmd.Context())
}

func (a *app) chainClient() (*chain.Client, error) {
	t := a.cfg.Treasury
	if t.HorizonURL == "" {
		return nil, errors.New("HORIZON_URL: not set (the Horizon server the treasury's account lives on)")
	}
	return chain.New(t.HorizonURL, t.NetworkPassphrase, nil), nil
}

func (a *app) treasuryReconcileCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reconcile",
		Short: "Compare the fund and every executed bailout with the chain; exit 1 on any difference",
		Long: `Compares, per asset, the fund the database books (balance, reserved included: reserved money
has not left the account) with what TREASURY_ACCOUNT holds on chain (XLM above the account's
minimum balance; the USDC trustline), and every bailout booked as executed with its
transaction on Horizon (found, successful, paying the booked amount of the booked asset to the
booked destination from the treasury). Prints a report; exits 1 when anything differs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := a.cfg.Treasury
			if !contracts.ValidAccount(t.Account) {
				return errors.New("TREASURY_ACCOUNT: not set to a Stellar account")
			}
			ch, err := a.chainClient()
			if err != nil {
				return err
			}
			pool, err := a.treasuryPool(cmd)
			if err != nil {
				return err
			}
			defer pool.Close()
			r, err := ch.Reconcile(cmd.Context(), db.NewTreasury(pool), t.Account, t.USDCIssuer)
			if err != nil {
				return err
			}
			writeReconcileReport(cmd.OutOrStdout(), r)
			if r.Drift() {
				return fmt.Errorf("treasury books and chain differ in %d place(s); see the report above", len(r.Differences))
			}
			return nil
		},
	}
}

func writeReconcileReport(w io.Writer, r contracts.ReconcileReport) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "asset\tbooked balance\treserved\ton chain\t")
	for _, l := range r.Assets {
		mark := "ok"
		if l.Chain != l.Balance {
			mark = "DIFFERS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", l.Asset, contracts.FormatStroops(l.Balance), contracts.FormatStroops(l.Reserved),
			contracts.FormatStroops(l.Chain), mark)
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "executed bailouts checked against their transactions: %d\n", r.Bailouts)
	if !r.Drift() {
		fmt.Fprintln(w, "books and chain agree")
		return
	}
	fmt.Fprintf(w, "%d difference(s):\n", len(r.Differences))
	for _, d := range r.Differences {
		fmt.Fprintf(w, "  %s: %s\n", d.Subject, d.Detail)
	}
}

// verifyAnchors checks the chain in the database against the heads TREASURY_ANCHOR_ACCOUNT
// published: the part of `treasury verify` that a database owner cannot fake.
func (a *app) verifyAnchors(cmd *cobra.Command, pool *pgxpool.Pool) error {
	acct := a.cfg.Treasury.Integrity.AnchorAccount
	out := cmd.OutOrStdout()
	if acct == "" {
		fmt.Fprintln(out, "anchors: not checked (TREASURY_ANCHOR_ACCOUNT is not set): the chain is only self-consistent")
		return nil
	}
	if !contracts.ValidAccount(acct) {
		return errors.New("TREASURY_ANCHOR_ACCOUNT: not a Stellar account")
	}
	ch, err := a.chainClient()
	if err != nil {
		return err
	}
	anchors, bad, err := ch.VerifyAnchors(cmd.Context(), db.NewTreasury(pool), acct)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		for _, b := range bad {
			fmt.Fprintln(out, "ANCHOR MISMATCH "+b)
		}
		return fmt.Errorf("treasury chain does not match %d of its %d anchors on %s: %s", len(bad), len(anchors), acct, bad[0])
	}
	if len(anchors) == 0 {
		fmt.Fprintf(out, "anchors: none published yet by %s\n", acct)
		return nil
	}
	last := anchors[len(anchors)-1]
	fmt.Fprintf(out, "anchors: %d agree; newest pins event %d (%s, tx %s)\n", len(anchors), last.Seq, last.At.Format("2006-01-02 15:04:05 UTC"), last.TxHash)
	return nil
}
