package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/network"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/contracts"
)

// stellarBaseVersion is the JavaScript Stellar SDK the envelope is judged with.
const stellarBaseVersion = "15.0.0"

// stellarBase returns a directory whose node_modules holds @stellar/stellar-base, installed
// once per machine with npm into the user's cache. Node.js and npm are part of the machine.
func stellarBase(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	require.NoError(t, err)
	dir := filepath.Join(cache, "orchestrator-test", "stellar-base-"+stellarBaseVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@stellar", "stellar-base", "package.json")); err == nil {
		return dir
	}
	require.NoError(t, os.MkdirAll(dir, 0o755))
	out, err := exec.Command("npm", "install", "--prefix", dir, "--no-audit", "--no-fund", "--silent",
		"@stellar/stellar-base@"+stellarBaseVersion).CombinedOutput()
	require.NoError(t, err, "npm install @stellar/stellar-base (Node.js and npm are needed): %s", out)
	return dir
}

type judgement struct {
	Hash              string `json:"hash"`
	TxSource          string `json:"tx_source"`
	Sequence          string `json:"sequence"`
	Fee               string `json:"fee"`
	OpType            string `json:"op_type"`
	OpSource          string `json:"op_source"`
	Destination       string `json:"destination"`
	Asset             string `json:"asset"`
	Amount            string `json:"amount"`
	MinTime           string `json:"min_time"`
	MaxTime           string `json:"max_time"`
	Memo              string `json:"memo"`
	Operations        int    `json:"operations"`
	Valid             []bool `json:"valid"`
	ValidOtherNetwork []bool `json:"valid_other_network"`
}

// The envelope the workflow builds (contracts.BuildPayment), inspected and signed by the CLI,
// judged by another implementation (the JavaScript SDK): the hash `inspect` recomputes and
// `sign` signs is the one that SDK computes under the network's passphrase, every field
// `inspect` prints is what that SDK decodes, and the five signatures `sign` printed verify
// against that hash (and not under another network), as the network checks them.
func TestBailoutSignJudgedByAnotherSDK(t *testing.T) {
	dir := stellarBase(t)
	treasury, channel, dest := keypair.MustRandom().Address(), keypair.MustRandom().Address(), keypair.MustRandom().Address()
	id := uuid.New()
	w := contracts.BailoutWindow(time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), 14*24*time.Hour, 7*24*time.Hour)
	env, err := contracts.BuildPayment(contracts.PaymentParams{Passphrase: network.TestNetworkPassphrase, Treasury: treasury,
		Channel: channel, ChannelSequence: 77 << 32, BailoutID: id, Asset: contracts.Asset{Code: "XLM"}, AmountStroops: 123_456_789,
		Destination: dest, Window: w})
	require.NoError(t, err)

	code, out, stderr := run(t, nil, "bailout", "inspect", "--xdr", env.XDR)
	require.Equal(t, 0, code, stderr)
	field := func(name string) string {
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, name+" "); ok {
				return strings.Fields(strings.TrimSpace(rest))[0]
			}
		}
		t.Fatalf("inspect printed no %s: %s", name, out)
		return ""
	}

	type sig struct {
		Signer    string `json:"signer"`
		Signature string `json:"signature"`
	}
	var sigs []sig
	for range 5 {
		kp := keypair.MustRandom()
		keyFile := filepath.Join(t.TempDir(), "m.secret")
		require.NoError(t, os.WriteFile(keyFile, []byte(kp.Seed()+"\n"), 0o600))
		code, sout, serr := run(t, nil, "bailout", "sign", "--key-file", keyFile, "--xdr", env.XDR, "--hash", field("hash"))
		require.Equal(t, 0, code, serr)
		sigs = append(sigs, sig{Signer: kp.Address(), Signature: strings.TrimSpace(sout)})
	}

	in, err := json.Marshal(map[string]any{"xdr": env.XDR, "passphrase": network.TestNetworkPassphrase,
		"other_passphrase": network.PublicNetworkPassphrase, "signatures": sigs})
	require.NoError(t, err)
	script, err := filepath.Abs("testdata/judge_envelope.js")
	require.NoError(t, err)
	cmd := exec.Command("node", script)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "NODE_PATH="+filepath.Join(dir, "node_modules"))
	cmd.Stdin = bytes.NewReader(in)
	var stdout, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &errOut
	require.NoError(t, cmd.Run(), errOut.String())
	var j judgement
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &j), stdout.String())

	require.Equal(t, env.Hash, j.Hash, "the hash the council signs")
	require.Equal(t, field("hash"), j.Hash, "the hash inspect recomputed")
	require.Equal(t, field("network"), "Test")
	require.Equal(t, channel, j.TxSource)
	require.Equal(t, field("channel"), j.TxSource)
	require.Equal(t, strconv.FormatInt(env.Sequence, 10), j.Sequence)
	require.Equal(t, "payment", j.OpType)
	require.Equal(t, 1, j.Operations)
	require.Equal(t, treasury, j.OpSource)
	require.Equal(t, field("source"), j.OpSource)
	require.Equal(t, dest, j.Destination)
	require.Equal(t, field("destination"), j.Destination)
	require.Equal(t, "XLM", j.Asset)
	require.Equal(t, field("asset"), j.Asset)
	require.Equal(t, "12.3456789", j.Amount)
	require.Equal(t, field("amount"), j.Amount)
	require.Equal(t, strconv.FormatInt(w.Unlock.Unix(), 10), j.MinTime)
	require.Equal(t, strconv.FormatInt(w.Expiry.Unix(), 10), j.MaxTime)
	require.Contains(t, out, "unlock       "+w.Unlock.Format("2006-01-02 15:04:05")+" UTC")
	require.Contains(t, out, "expiry       "+w.Expiry.Format("2006-01-02 15:04:05")+" UTC")
	require.Equal(t, field("memo"), strings.Replace(j.Memo, "hash:", "hash:", 1))
	require.Equal(t, []bool{true, true, true, true, true}, j.Valid)
	require.Equal(t, []bool{false, false, false, false, false}, j.ValidOtherNetwork)
}
