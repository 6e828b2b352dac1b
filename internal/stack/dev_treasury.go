//go:build !nodev

package stack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/keypair"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
)

// devTreasury fills in the treasury domain's dev defaults: five demo council key pairs
// (<dataDir>/council/N.secret, mode 0600), a demo treasury account and USDC issuer, and a
// local Horizon stand-in on which the treasury is 5-of-5 over the council keys. Whatever the
// environment sets is kept.
func devTreasury(ctx context.Context, cfg *config.Config, dataDir string, stack *cleanup) ([]string, error) {
	_ = ctx
	t := &cfg.Treasury
	var lines []string
	if len(t.CouncilKeys) == 0 {
		for i := 1; i <= 5; i++ {
			kp, err := loadOrCreateKey(filepath.Join(dataDir, "council", fmt.Sprintf("%d.secret", i)))
			if err != nil {
				return nil, err
			}
			t.CouncilKeys = append(t.CouncilKeys, kp.Address())
		}
		lines = append(lines, "council keys (demo): "+filepath.Join(dataDir, "council", "{1..5}.secret")+" = "+strings.Join(t.CouncilKeys, ","))
	}
	if t.Account == "" {
		kp, err := loadOrCreateKey(filepath.Join(dataDir, "treasury", "account.secret"))
		if err != nil {
			return nil, err
		}
		t.Account = kp.Address()
	}
	if t.USDCIssuer == "" {
		kp, err := loadOrCreateKey(filepath.Join(dataDir, "treasury", "usdc-issuer.secret"))
		if err != nil {
			return nil, err
		}
		t.USDCIssuer = kp.Address()
	}
	if t.ChannelSeedsFile == "" {
		t.ChannelSeedsFile = filepath.Join(dataDir, "treasury", "channels.secret")
		if err := ensureChannelSeeds(t.ChannelSeedsFile, devChannels); err != nil {
			return nil, err
		}
		lines = append(lines, fmt.Sprintf("channel accounts (demo, %d): %s", devChannels, t.ChannelSeedsFile))
	}
	if t.HorizonURL == "" {
		hz := localhorizon.New(t.NetworkPassphrase)
		hz.AddAccount(t.Account, 1, t.CouncilKeys)
		// The dev treasury holds 10,000 XLM and 10,000 USDC on the stand-in; the channels
		// are funded as channels-setup would; a demo destination holds a USDC trustline.
		hz.Fund(t.Account, localhorizon.Native, 10_000*contracts.StroopsPerUnit)
		hz.Fund(t.Account, contracts.AssetUSDC+":"+t.USDCIssuer, 10_000*contracts.StroopsPerUnit)
		raw, err := os.ReadFile(t.ChannelSeedsFile)
		if err != nil {
			return nil, err
		}
		seeds, err := contracts.ParseChannelSeeds(string(raw))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", t.ChannelSeedsFile, err)
		}
		for a := range seeds {
			hz.AddAccount(a, 1<<32, nil)
			hz.Fund(a, localhorizon.Native, contracts.ChannelStartingBalance)
		}
		dest, err := loadOrCreateKey(filepath.Join(dataDir, "treasury", "demo-destination.secret"))
		if err != nil {
			return nil, err
		}
		hz.AddAccount(dest.Address(), 1<<32, nil)
		hz.Fund(dest.Address(), localhorizon.Native, 10*contracts.StroopsPerUnit)
		hz.Fund(dest.Address(), contracts.AssetUSDC+":"+t.USDCIssuer, 0)
		lines = append(lines, "demo bailout destination (exists on the local Horizon): "+dest.Address())
		if a := t.Integrity.AnchorAccount; a != "" { // devTreasuryIntegrity's demo anchor account
			hz.AddAccount(a, 1, nil)
			hz.Fund(a, localhorizon.Native, 100*contracts.StroopsPerUnit)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("local Horizon: %w", err)
		}
		srv := &http.Server{Handler: hz, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		stack.add("local horizon", func() error { return srv.Close() })
		t.HorizonURL = "http://" + ln.Addr().String()
		lines = append(lines, "local Horizon (stand-in that judges like the network: sequences, thresholds, balances): "+t.HorizonURL)
	}
	return lines, nil
}

// devChannels is how many channel accounts `orchestrator dev` makes: bailouts pending at once.
const devChannels = 5

// ensureChannelSeeds makes a seeds file of n new channel keys unless one exists (mode 0600).
func ensureChannelSeeds(path string, n int) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	}
	var b strings.Builder
	b.WriteString("# channel accounts of the treasury (dev), one secret seed a line\n")
	for range n {
		kp, err := keypair.Random()
		if err != nil {
			return err
		}
		b.WriteString(kp.Seed() + "\n")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(b.String()), 0o600)
}

// loadOrCreateKey reads a Stellar secret seed from path, or creates one (mode 0600).
func loadOrCreateKey(path string) (*keypair.Full, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		kp, err := keypair.ParseFull(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("%s: not a Stellar secret seed", path)
		}
		return kp, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	kp, err := keypair.Random()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, []byte(kp.Seed()+"\n"), 0o600); err != nil {
		return nil, err
	}
	return kp, nil
}
