package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/stellar/go-stellar-sdk/clients/horizonclient"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/txnbuild"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/api"
	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
)

// treasuryCommands are the operator commands of the treasury domain.
func (a *app) treasuryCommands() []*cobra.Command {
	return []*cobra.Command{a.bailoutCmd(), a.treasuryCmd()}
}

// apiClient talks to the HTTP API as a council member.
type apiClient struct {
	base, token string
}

func (a *app) addAPIFlags(cmd *cobra.Command, base, token, dataDir *string) {
	cmd.PersistentFlags().StringVar(base, "api", "", "the API's base URL (default http://HTTP_ADDR)")
	cmd.PersistentFlags().StringVar(token, "token", "", "API token of a council member or admin (default: a short council token minted from JWT_SECRET or the dev secret)")
	cmd.PersistentFlags().StringVar(dataDir, "data-dir", ".data", "where `orchestrator dev` keeps its generated secret")
}

func (a *app) client(base, token, dataDir string) (*apiClient, error) {
	if base == "" {
		base = "http://" + a.cfg.HTTPAddr
	}
	if token == "" {
		secret, err := a.jwtSecret(dataDir)
		if err != nil {
			return nil, err
		}
		token, err = api.IssueToken(secret, uuid.New(), api.RoleCouncil, 5*time.Minute, time.Now())
		if err != nil {
			return nil, err
		}
	}
	return &apiClient{base: strings.TrimRight(base, "/"), token: token}, nil
}

func (c *apiClient) do(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: time.Minute}).Do(req)
	if err != nil {
		return fmt.Errorf("API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%d %s: %s", resp.StatusCode, e.Error.Code, e.Error.Message)
		}
		return fmt.Errorf("API answered %s", resp.Status)
	}
	return json.Unmarshal(b, out)
}

func (a *app) bailoutCmd() *cobra.Command {
	var base, token, dataDir string
	cmd := &cobra.Command{Use: "bailout", Short: "Request, sign, approve, cancel and follow insurance bailouts"}
	a.addAPIFlags(cmd, &base, &token, &dataDir)

	var asset, amountStr, dest, reason string
	request := &cobra.Command{
		Use: "request --asset XLM --amount 12.5 --destination G... --reason TEXT", Short: "Request a bailout (starts its workflow)",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			amt, err := contracts.ParseAmount(amountStr)
			if err != nil {
				return fmt.Errorf("--amount: %w", err)
			}
			c, err := a.client(base, token, dataDir)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(http.MethodPost, "/api/v1/bailouts", map[string]any{
				"asset": asset, "amount_stroops": amt, "destination": dest, "reason": reason}, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}
	request.Flags().StringVar(&asset, "asset", "XLM", "USDC or XLM")
	request.Flags().StringVar(&amountStr, "amount", "", "amount, a decimal with at most 7 decimals (required)")
	request.Flags().StringVar(&dest, "destination", "", "destination Stellar account G... (required)")
	request.Flags().StringVar(&reason, "reason", "", "why (required)")
	for _, f := range []string{"amount", "destination", "reason"} {
		_ = request.MarkFlagRequired(f)
	}

	status := &cobra.Command{
		Use: "status ID", Short: "Show a bailout's state, approvals, unlock time and transaction", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := uuid.Parse(args[0]); err != nil {
				return errors.New("ID must be a bailout id (UUID)")
			}
			c, err := a.client(base, token, dataDir)
			if err != nil {
				return err
			}
			var out map[string]any
			if err := c.do(http.MethodGet, "/api/v1/bailouts/"+args[0], nil, &out); err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), out)
		},
	}

	var keyFile, hash string
	var cancel bool
	sign := &cobra.Command{
		Use:   "sign --key-file FILE --hash TX_HASH [--cancel]",
		Short: "Sign a bailout's transaction hash (or its cancel message) offline; prints only the signature",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kp, err := readSeed(keyFile)
			if err != nil {
				return err
			}
			msg, err := contracts.TxHashBytes(hash)
			if err != nil {
				return fmt.Errorf("--hash: %w", err)
			}
			if cancel {
				msg = contracts.CancelMessage(strings.ToLower(hash))
			}
			sig, err := kp.Sign(msg)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), activities.SignatureBase64(sig))
			return nil
		},
	}
	sign.Flags().StringVar(&keyFile, "key-file", "", "file holding the member's secret seed (required)")
	sign.Flags().StringVar(&hash, "hash", "", "the bailout's tx_hash, hex (required)")
	sign.Flags().BoolVar(&cancel, "cancel", false, "sign the cancel message instead of the transaction")
	_ = sign.MarkFlagRequired("key-file")
	_ = sign.MarkFlagRequired("hash")

	signed := func(use, short, path string, message func(hash string) ([]byte, error)) *cobra.Command {
		var signer, signature, keyFile string
		c := &cobra.Command{
			Use: use + " ID (--signer G... --signature SIG | --key-file FILE)", Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if _, err := uuid.Parse(args[0]); err != nil {
					return errors.New("ID must be a bailout id (UUID)")
				}
				c, err := a.client(base, token, dataDir)
				if err != nil {
					return err
				}
				if keyFile != "" {
					kp, err := readSeed(keyFile)
					if err != nil {
						return err
					}
					var st struct {
						TxHash string `json:"tx_hash"`
					}
					if err := c.do(http.MethodGet, "/api/v1/bailouts/"+args[0], nil, &st); err != nil {
						return err
					}
					msg, err := message(st.TxHash)
					if err != nil {
						return errors.New("the bailout has no transaction yet; try again in a moment")
					}
					sig, err := kp.Sign(msg)
					if err != nil {
						return err
					}
					signer, signature = kp.Address(), activities.SignatureBase64(sig)
				}
				if signer == "" || signature == "" {
					return errors.New("pass --signer and --signature, or --key-file")
				}
				var out map[string]any
				if err := c.do(http.MethodPost, "/api/v1/bailouts/"+args[0]+path,
					map[string]any{"signer": signer, "signature": signature}, &out); err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), out)
			},
		}
		c.Flags().StringVar(&signer, "signer", "", "the council member's public key")
		c.Flags().StringVar(&signature, "signature", "", "the signature from `bailout sign`")
		c.Flags().StringVar(&keyFile, "key-file", "", "sign here with this secret seed file instead (the seed never leaves this machine)")
		return c
	}
	cmd.AddCommand(request, status, sign,
		signed("approve", "Hand a council member's signature to the bailout (refused at once when invalid)", "/approvals", contracts.TxHashBytes),
		signed("cancel", "Cancel a bailout with a council member's signed cancel message", "/cancel",
			func(h string) ([]byte, error) {
				if _, err := contracts.TxHashBytes(h); err != nil {
					return nil, err
				}
				return contracts.CancelMessage(h), nil
			}))
	return cmd
}

// readSeed reads a council member's secret seed file; errors never echo its content.
func readSeed(path string) (*keypair.Full, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--key-file: %w", err)
	}
	kp, err := keypair.ParseFull(strings.TrimSpace(string(raw)))
	if err != nil {
		return nil, errors.New("--key-file does not hold a Stellar secret seed (S...)")
	}
	return kp, nil
}

func (a *app) treasuryCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "treasury", Short: "Check the insurance fund's event chain; set up the 5-of-5 account"}
	verify := &cobra.Command{
		Use: "verify", Short: "Walk the treasury's hash chain (TREASURY_DATABASE_URL, else DATABASE_URL); exit 1 at a break", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			url := a.cfg.Treasury.DatabaseURL
			if url == "" {
				if err := a.cfg.RequireDatabase(); err != nil {
					return err
				}
				url = a.cfg.DatabaseURL
			}
			pool, err := db.Open(cmd.Context(), url)
			if err != nil {
				return fmt.Errorf("DATABASE_URL: %w", err)
			}
			defer pool.Close()
			n, err := db.NewTreasury(pool).VerifyChain(cmd.Context())
			var ce *db.ChainError
			if errors.As(err, &ce) {
				return fmt.Errorf("treasury chain broken after %d good events: %w", n, err)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "treasury chain intact: %d events\n", n)
			return nil
		},
	}
	var seq int64
	multisig := &cobra.Command{
		Use:   "multisig-setup",
		Short: "Print the SetOptions transaction that makes TREASURY_ACCOUNT 5-of-5 over COUNCIL_PUBLIC_KEYS",
		Long: `Prints an unsigned transaction envelope (base64): master weight 0, the five council keys as
signers of weight 1, low/medium/high thresholds 5. Sign it with the account's master key
and submit it; from then on the network enforces the same 5-of-5 rule as the workflow.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := a.cfg.Treasury
			if !contracts.ValidAccount(t.Account) {
				return errors.New("TREASURY_ACCOUNT: not set to a Stellar account")
			}
			if err := contracts.ValidateCouncil(t.CouncilKeys); err != nil {
				return err
			}
			if seq == 0 {
				if t.HorizonURL == "" {
					return errors.New("HORIZON_URL: not set (or pass --sequence)")
				}
				acct, err := (&horizonclient.Client{HorizonURL: t.HorizonURL, HTTP: &http.Client{Timeout: 30 * time.Second}}).
					AccountDetail(horizonclient.AccountRequest{AccountID: t.Account})
				if err != nil {
					return fmt.Errorf("load %s from Horizon: %w", t.Account, err)
				}
				seq = acct.Sequence
			}
			env, err := multisigSetupTx(t.Account, seq, t.CouncilKeys, t.NetworkPassphrase)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), env)
			return nil
		},
	}
	multisig.Flags().Int64Var(&seq, "sequence", 0, "the account's current sequence number (default: asked from HORIZON_URL)")
	cmd.AddCommand(verify, multisig)
	return cmd
}

// multisigSetupTx builds the SetOptions transaction: master weight 0, five signers of
// weight 1, thresholds 5/5/5.
func multisigSetupTx(account string, seq int64, council []string, passphrase string) (string, error) {
	w0, w1, five := txnbuild.Threshold(0), txnbuild.Threshold(1), txnbuild.Threshold(5)
	var ops []txnbuild.Operation
	for _, k := range council { // signers first, then thresholds and the master key off
		ops = append(ops, &txnbuild.SetOptions{Signer: &txnbuild.Signer{Address: k, Weight: w1}})
	}
	ops = append(ops, &txnbuild.SetOptions{MasterWeight: &w0, LowThreshold: &five, MediumThreshold: &five, HighThreshold: &five})
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
