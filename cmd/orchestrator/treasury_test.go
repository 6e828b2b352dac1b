package main

import (
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stellar/go-stellar-sdk/txnbuild"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/testharness"
)

func TestBailoutSign(t *testing.T) {
	kp := keypair.MustRandom()
	file := filepath.Join(t.TempDir(), "1.secret")
	require.NoError(t, os.WriteFile(file, []byte(kp.Seed()+"\n"), 0o600))
	hash := strings.Repeat("ab", 32)
	code, out, errOut := run(t, nil, "bailout", "sign", "--key-file", file, "--hash", hash)
	require.Equal(t, 0, code, errOut)
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	require.NoError(t, err, "prints only the signature")
	raw, _ := hex.DecodeString(hash)
	require.NoError(t, kp.Verify(raw, sig))
	require.NotContains(t, out, kp.Seed())

	code, out, _ = run(t, nil, "bailout", "sign", "--key-file", file, "--hash", hash, "--cancel")
	require.Equal(t, 0, code)
	sig, err = base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	require.NoError(t, err)
	require.NoError(t, kp.Verify(contracts.CancelMessage(hash), sig))

	code, _, errOut = run(t, nil, "bailout", "sign", "--key-file", file, "--hash", "xyz")
	require.Equal(t, 1, code)
	require.Equal(t, 1, strings.Count(strings.TrimSpace(errOut), "\n")+1, errOut)
	require.NotContains(t, errOut, kp.Seed())
}

func TestTreasuryVerify(t *testing.T) {
	pg := testharness.FreshPG(t)
	ctx := t.Context()
	tr := db.NewTreasury(pg.TreasuryPool)
	url := pg.TreasuryURL
	for range 3 {
		_, err := tr.RecordYield(ctx, db.YieldInput{ID: uuid.New(), Asset: "XLM", GrossStroops: 12345, OccurredAt: time.Now()})
		require.NoError(t, err)
	}
	code, out, errOut := run(t, []string{"TREASURY_DATABASE_URL=" + url}, "treasury", "verify")
	require.Equal(t, 0, code, errOut)
	require.Contains(t, out, "intact: 3 events")

	// An attacker with an administrator's power: the runtime and treasury roles cannot.
	admin, err := db.Open(ctx, pg.AdminURL)
	require.NoError(t, err)
	defer admin.Close()
	require.NoError(t, pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `ALTER TABLE treasury.events DISABLE TRIGGER events_append_only`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE treasury.events SET payload = replace(payload, '12345', '99999') WHERE seq = 3`)
		return err
	}))
	code, _, errOut = run(t, []string{"TREASURY_DATABASE_URL=" + url}, "treasury", "verify")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "broken after 2 good events: event 3")
}

func TestTreasuryMultisigSetup(t *testing.T) {
	var keys []string
	for range 5 {
		keys = append(keys, keypair.MustRandom().Address())
	}
	acct := keypair.MustRandom().Address()
	code, out, errOut := run(t, []string{"TREASURY_ACCOUNT=" + acct, "COUNCIL_PUBLIC_KEYS=" + strings.Join(keys, ",")},
		"treasury", "multisig-setup", "--sequence", "41")
	require.Equal(t, 0, code, errOut)
	gtx, err := txnbuild.TransactionFromXDR(strings.TrimSpace(out))
	require.NoError(t, err)
	tx, _ := gtx.Transaction()
	require.Equal(t, int64(42), tx.SequenceNumber())
	ops := tx.Operations()
	require.Len(t, ops, 6)
	last := ops[5].(*txnbuild.SetOptions)
	require.EqualValues(t, 0, *last.MasterWeight)
	require.EqualValues(t, 5, *last.LowThreshold)
	require.EqualValues(t, 5, *last.MediumThreshold)
	require.EqualValues(t, 5, *last.HighThreshold)
	for i, k := range keys {
		s := ops[i].(*txnbuild.SetOptions).Signer
		require.Equal(t, k, s.Address)
		require.EqualValues(t, 1, s.Weight)
	}
	code, _, errOut = run(t, []string{"TREASURY_ACCOUNT=" + acct, "COUNCIL_PUBLIC_KEYS=" + strings.Join(keys[:4], ",")},
		"treasury", "multisig-setup", "--sequence", "41")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "COUNCIL_PUBLIC_KEYS")
}
