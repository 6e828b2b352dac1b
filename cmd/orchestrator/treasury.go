package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"github.com/stellar/go-stellar-sdk/clients/horizonclient"
	"github.com/stellar/go-stellar-sdk/keypair"

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

	sign := a.bailoutSignCmd(&base, &token, &dataDir)

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
					// Show what is signed and check it against the bailout's record first.
					st, err := a.inspectBailout(c, args[0], cmd.ErrOrStderr())
					if err != nil {
						return fmt.Errorf("nothing signed: %w", err)
					}
					msg, err := message(st.Hash)
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
	cmd.AddCommand(request, status, sign, a.bailoutInspectCmd(&base, &token, &dataDir),
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
		Use: "verify", Short: "Walk the treasury's hash chain (TREASURY_DATABASE_URL, else DATABASE_URL) and check it against its anchors on Stellar; exit 1 at a break", Args: cobra.NoArgs,
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
			return a.verifyAnchors(cmd, pool)
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
	cmd.AddCommand(verify, multisig, a.channelsSetupCmd(), a.treasuryReconcileCmd())
	return cmd
}

// multisigSetupTx builds the SetOptions transaction (contracts.MultisigSetupTx).
func multisigSetupTx(account string, seq int64, council []string, passphrase string) (string, error) {
	return contracts.MultisigSetupTx(account, seq, council, passphrase)
}

// treasuryStore opens the treasury's records (TREASURY_DATABASE_URL, else DATABASE_URL).
func (a *app) treasuryStore(ctx context.Context) (*db.Treasury, func(), error) {
	url := a.cfg.Treasury.DatabaseURL
	if url == "" {
		if err := a.cfg.RequireDatabase(); err != nil {
			return nil, nil, err
		}
		url = a.cfg.DatabaseURL
	}
	pool, err := db.Open(ctx, url)
	if err != nil {
		return nil, nil, fmt.Errorf("treasury database: %w", err)
	}
	return db.NewTreasury(pool), pool.Close, nil
}

func (a *app) horizonClient() (*horizonclient.Client, error) {
	if a.cfg.Treasury.HorizonURL == "" {
		return nil, errors.New("HORIZON_URL: not set")
	}
	return &horizonclient.Client{HorizonURL: a.cfg.Treasury.HorizonURL, HTTP: &http.Client{Timeout: 30 * time.Second}}, nil
}

// channelsSetupCmd grows the channel pool to --count accounts: new seeds are appended to
// TREASURY_CHANNEL_SEEDS_FILE (mode 0600), every account is registered in the treasury's
// pool, and the CreateAccount transaction funding the ones not yet on the network is
// printed (unsigned), or signed with --funder-key-file and submitted with --submit.
func (a *app) channelsSetupCmd() *cobra.Command {
	var count int
	var funder, funderKey, startStr string
	var seq int64
	var submit bool
	cmd := &cobra.Command{
		Use:   "channels-setup --count N --funder G...",
		Short: "Create the channel accounts bailouts use as transaction sources (prints or submits the CreateAccount transaction)",
		Long: `Each pending bailout's payment has its own channel account as transaction source, so any
number of bailouts can be pending and execute in any order. The channel keys are the
orchestrator's (TREASURY_CHANNEL_SEEDS_FILE): they pay the fee and consume the channel's
sequence numbers, and move nothing from the treasury (the payment's source is the treasury,
which needs the council's five signatures). Each channel needs the minimum balance of an
account (1 XLM) plus fees; --starting-balance defaults to 2 XLM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := a.cfg.Treasury
			if count < 1 || count > 100 {
				return errors.New("--count: 1 to 100 channel accounts")
			}
			if t.ChannelSeedsFile == "" {
				return errors.New("TREASURY_CHANNEL_SEEDS_FILE: not set (the file the channel seeds are kept in)")
			}
			start, err := contracts.ParseAmount(startStr)
			if err != nil {
				return fmt.Errorf("--starting-balance: %w", err)
			}
			var fkp *keypair.Full
			if funderKey != "" {
				if fkp, err = readSeed(funderKey); err != nil {
					return err
				}
				funder = fkp.Address()
			}
			if !contracts.ValidAccount(funder) {
				return errors.New("--funder: the account that pays for the channels (G...), or --funder-key-file")
			}
			if submit && fkp == nil {
				return errors.New("--submit needs --funder-key-file")
			}
			seeds, err := ensureSeeds(t.ChannelSeedsFile, count)
			if err != nil {
				return err
			}
			accounts := make([]string, 0, len(seeds))
			for acct := range seeds {
				accounts = append(accounts, acct)
			}
			sort.Strings(accounts)
			store, closeStore, err := a.treasuryStore(cmd.Context())
			if err != nil {
				return err
			}
			defer closeStore()
			if _, err := store.RegisterChannels(cmd.Context(), accounts); err != nil {
				return err
			}
			missing := accounts
			var hc *horizonclient.Client
			if t.HorizonURL != "" {
				hc, _ = a.horizonClient()
				missing = nil
				for _, acct := range accounts {
					_, err := hc.AccountDetail(horizonclient.AccountRequest{AccountID: acct})
					if horizonclient.IsNotFoundError(err) {
						missing = append(missing, acct)
					} else if err != nil {
						return fmt.Errorf("look up %s on Horizon: %w", acct, err)
					}
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "channel pool: %d accounts (%s)\n", len(accounts), t.ChannelSeedsFile)
			if len(missing) == 0 {
				fmt.Fprintln(out, "every channel account exists on the network")
				return nil
			}
			if seq == 0 {
				if hc == nil {
					return errors.New("HORIZON_URL: not set (or pass --sequence, the funder's current sequence number)")
				}
				acct, err := hc.AccountDetail(horizonclient.AccountRequest{AccountID: funder})
				if err != nil {
					return fmt.Errorf("load %s from Horizon: %w", funder, err)
				}
				seq = acct.Sequence
			}
			env, err := contracts.ChannelSetupTx(funder, seq, missing, start, t.NetworkPassphrase)
			if err != nil {
				return err
			}
			if !submit {
				fmt.Fprintf(out, "create %d channel accounts: sign this envelope with %s and submit it\n%s\n", len(missing), funder, env)
				return nil
			}
			tx, err := contracts.DecodeEnvelope(env)
			if err != nil {
				return err
			}
			if tx, err = tx.Sign(t.NetworkPassphrase, fkp); err != nil {
				return err
			}
			signed, err := tx.Base64()
			if err != nil {
				return err
			}
			if hc == nil {
				return errors.New("HORIZON_URL: not set (needed to --submit)")
			}
			res, err := hc.SubmitTransactionXDR(signed)
			if err != nil {
				if herr := horizonclient.GetError(err); herr != nil {
					if rc, rerr := herr.ResultCodes(); rerr == nil {
						return fmt.Errorf("the network refused the channel setup: %s %v", rc.TransactionCode, rc.OperationCodes)
					}
				}
				return fmt.Errorf("submit: %w", err)
			}
			if !res.Successful {
				return fmt.Errorf("the channel setup transaction %s failed", res.Hash)
			}
			fmt.Fprintf(out, "created %d channel accounts in transaction %s\n", len(missing), res.Hash)
			return nil
		},
	}
	cmd.Flags().IntVar(&count, "count", 0, "how many channel accounts the pool should have (required)")
	cmd.Flags().StringVar(&funder, "funder", "", "the account that funds the channels (G...)")
	cmd.Flags().StringVar(&funderKey, "funder-key-file", "", "the funder's secret seed file (to sign and --submit)")
	cmd.Flags().StringVar(&startStr, "starting-balance", contracts.FormatStroops(contracts.ChannelStartingBalance), "XLM each channel is created with")
	cmd.Flags().Int64Var(&seq, "sequence", 0, "the funder's current sequence number (default: asked from HORIZON_URL)")
	cmd.Flags().BoolVar(&submit, "submit", false, "sign with --funder-key-file and submit to HORIZON_URL")
	_ = cmd.MarkFlagRequired("count")
	return cmd
}

// ensureSeeds reads the seeds file and appends new keys until it holds at least n.
func ensureSeeds(path string, n int) (map[string]*keypair.Full, error) {
	raw, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("TREASURY_CHANNEL_SEEDS_FILE: %w", err)
	}
	seeds, err := contracts.ParseChannelSeeds(string(raw))
	if err != nil {
		return nil, fmt.Errorf("TREASURY_CHANNEL_SEEDS_FILE: %w", err)
	}
	if len(seeds) >= n {
		return seeds, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("TREASURY_CHANNEL_SEEDS_FILE: %w", err)
	}
	defer f.Close()
	for len(seeds) < n {
		kp, err := keypair.Random()
		if err != nil {
			return nil, err
		}
		if _, err := fmt.Fprintln(f, kp.Seed()); err != nil {
			return nil, err
		}
		seeds[kp.Address()] = kp
	}
	return seeds, f.Close()
}
