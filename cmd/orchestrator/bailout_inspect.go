package main

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"

	"github.com/creatorvault/orchestrator/contracts"
)

// bailoutRecord is what the API says about a bailout: the request and its envelope.
type bailoutRecord struct {
	ID            string    `json:"id"`
	State         string    `json:"state"`
	Asset         string    `json:"asset"`
	AmountStroops int64     `json:"amount_stroops"`
	Destination   string    `json:"destination"`
	UnlockAt      time.Time `json:"unlock_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	TxHash        string    `json:"tx_hash"`
	TxXDR         string    `json:"tx_xdr"`
}

// inspectBailout fetches a bailout's envelope from the API, decodes it here, prints the
// summary to w and checks it against the bailout's own record (and TREASURY_ACCOUNT when
// set). It returns the summary, or an error naming every mismatch.
func (a *app) inspectBailout(c *apiClient, id string, w io.Writer) (contracts.EnvelopeSummary, error) {
	if _, err := uuid.Parse(id); err != nil {
		return contracts.EnvelopeSummary{}, errors.New("ID must be a bailout id (UUID)")
	}
	var rec bailoutRecord
	if err := c.do(http.MethodGet, "/api/v1/bailouts/"+id, nil, &rec); err != nil {
		return contracts.EnvelopeSummary{}, err
	}
	if rec.TxXDR == "" {
		return contracts.EnvelopeSummary{}, fmt.Errorf("bailout %s has no transaction yet (state %s); try again in a moment", id, rec.State)
	}
	s, err := contracts.DecodeBailoutEnvelope(rec.TxXDR, a.cfg.Treasury.NetworkPassphrase)
	if err != nil {
		return s, err
	}
	fmt.Fprintf(w, "bailout      %s (%s)\n", id, rec.State)
	if err := s.Write(w); err != nil {
		return s, err
	}
	bad := s.Mismatches(contracts.ExpectedBailout{
		ID: id, Asset: rec.Asset, AmountStroops: rec.AmountStroops, Destination: rec.Destination,
		Unlock: rec.UnlockAt, Expiry: rec.ExpiresAt, TxHash: rec.TxHash, Treasury: a.cfg.Treasury.Account,
	})
	if len(bad) > 0 {
		for _, m := range bad {
			fmt.Fprintln(w, "MISMATCH     "+m)
		}
		return s, fmt.Errorf("the envelope of bailout %s does not match its record: %s", id, strings.Join(bad, "; "))
	}
	fmt.Fprintln(w, "check        the envelope matches the bailout's record")
	return s, nil
}

func (a *app) bailoutInspectCmd(base, token, dataDir *string) *cobra.Command {
	var envelope string
	cmd := &cobra.Command{
		Use:   "inspect (ID | --xdr ENVELOPE)",
		Short: "Decode a bailout's envelope here and print what it pays, to whom, when, and its recomputed hash",
		Long: `Decodes the transaction envelope locally (never trusting the server's summary) and prints the
network, the paying source, the channel account, destination, asset, amount, unlock and expiry
(UTC), memo, and the hash recomputed under STELLAR_NETWORK_PASSPHRASE. With an ID the envelope
comes from the API and is checked against the bailout's record: any mismatch exits 1.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			switch {
			case len(args) == 1 && envelope != "":
				return errors.New("pass an ID or --xdr, not both")
			case envelope != "":
				s, err := contracts.DecodeBailoutEnvelope(envelope, a.cfg.Treasury.NetworkPassphrase)
				if err != nil {
					return fmt.Errorf("--xdr: %w", err)
				}
				return s.Write(out)
			case len(args) == 1:
				c, err := a.client(*base, *token, *dataDir)
				if err != nil {
					return err
				}
				_, err = a.inspectBailout(c, args[0], out)
				return err
			default:
				return errors.New("pass a bailout ID or --xdr ENVELOPE")
			}
		},
	}
	cmd.Flags().StringVar(&envelope, "xdr", "", "a base64 transaction envelope to decode instead of fetching one")
	return cmd
}

func (a *app) bailoutSignCmd(base, token, dataDir *string) *cobra.Command {
	var keyFile, hash, envelope, id string
	var cancel bool
	cmd := &cobra.Command{
		Use:   "sign --key-file FILE (--xdr ENVELOPE | --id ID | --hash TX_HASH) [--hash TX_HASH] [--cancel]",
		Short: "Sign a bailout's transaction (or its cancel message); shows what it pays first, prints only the signature",
		Long: `With --xdr or --id the envelope is decoded here and its summary and recomputed hash are shown
(on stderr) before anything is signed; a --hash given too must be that recomputed hash, or
nothing is signed. A bare --hash (air-gapped signing) signs what it is given, with a warning:
check the hash with ` + "`bailout inspect`" + ` on a trusted machine first. Only the signature goes to stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kp, err := readSeed(keyFile)
			if err != nil {
				return err
			}
			if hash != "" {
				if _, err := contracts.TxHashBytes(hash); err != nil {
					return fmt.Errorf("--hash: %w", err)
				}
				hash = strings.ToLower(hash)
			}
			info := cmd.ErrOrStderr()
			var s contracts.EnvelopeSummary
			switch {
			case envelope != "":
				if s, err = contracts.DecodeBailoutEnvelope(envelope, a.cfg.Treasury.NetworkPassphrase); err != nil {
					return fmt.Errorf("--xdr: %w", err)
				}
				if err := s.Write(info); err != nil {
					return err
				}
			case id != "":
				c, err := a.client(*base, *token, *dataDir)
				if err != nil {
					return err
				}
				if s, err = a.inspectBailout(c, id, info); err != nil {
					return fmt.Errorf("nothing signed: %w", err)
				}
			case hash != "":
				fmt.Fprintln(info, "warning: signing a bare hash: nothing here shows what it pays; check it with `orchestrator bailout inspect` on a trusted machine, or sign with --xdr/--id")
				s.Hash = hash
			default:
				return errors.New("pass --xdr ENVELOPE or --id ID (or a bare --hash for air-gapped signing)")
			}
			if hash != "" && hash != s.Hash {
				return fmt.Errorf("--hash %s is not this envelope's hash (recomputed %s): nothing signed", hash, s.Hash)
			}
			msg, err := contracts.TxHashBytes(s.Hash)
			if err != nil {
				return err
			}
			if cancel {
				msg = contracts.CancelMessage(s.Hash)
				fmt.Fprintln(info, "signing      the CANCEL message of "+s.Hash)
			}
			sig, err := kp.Sign(msg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), base64.StdEncoding.EncodeToString(sig))
			return nil
		},
	}
	cmd.Flags().StringVar(&keyFile, "key-file", "", "file holding the member's secret seed (required)")
	cmd.Flags().StringVar(&envelope, "xdr", "", "the bailout's envelope (tx_xdr), decoded and shown before signing")
	cmd.Flags().StringVar(&id, "id", "", "the bailout's id: its envelope is fetched from the API, decoded and checked")
	cmd.Flags().StringVar(&hash, "hash", "", "the hash to sign, hex: checked against the envelope's, or alone for air-gapped use")
	cmd.Flags().BoolVar(&cancel, "cancel", false, "sign the cancel message instead of the transaction")
	_ = cmd.MarkFlagRequired("key-file")
	cmd.MarkFlagsMutuallyExclusive("xdr", "id")
	return cmd
}
