package api

import (
	"context"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/activities"
	"github.com/creatorvault/orchestrator/contracts"
	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/localhorizon"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workers"
	"github.com/creatorvault/orchestrator/workflows"
)

func TestTreasuryYieldAPI(t *testing.T) {
	e := newEnv(t)
	svc := e.as(RoleService).Token
	at := e.clock.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	id := uuid.New()
	body := map[string]any{"id": id, "asset": "USDC", "gross_stroops": 1_000_000_099, "occurred_at": at}

	r := e.do(http.MethodPost, "/api/v1/treasury/yield", svc, body)
	require.Equal(t, http.StatusCreated, r.Code, string(r.Body))
	m := r.JSON(t)
	require.EqualValues(t, 10_000_000, m["fee_stroops"])
	require.EqualValues(t, 990_000_099, m["net_stroops"])
	require.Equal(t, "1.0000000", m["fee"])
	r = e.do(http.MethodPost, "/api/v1/treasury/yield", svc, body)
	require.Equal(t, http.StatusOK, r.Code, "idempotent by id")
	require.EqualValues(t, 10_000_000, r.JSON(t)["fee_stroops"])
	other := map[string]any{"id": id, "asset": "USDC", "gross_stroops": 5, "occurred_at": at}
	r = e.do(http.MethodPost, "/api/v1/treasury/yield", svc, other)
	require.Equal(t, http.StatusConflict, r.Code)

	for name, c := range map[string]struct {
		body any
		code string
	}{
		"asset":   {map[string]any{"id": uuid.New(), "asset": "BTC", "gross_stroops": 100, "occurred_at": at}, "unsupported_asset"},
		"zero":    {map[string]any{"id": uuid.New(), "asset": "XLM", "gross_stroops": 0, "occurred_at": at}, "invalid_amount"},
		"neg":     {map[string]any{"id": uuid.New(), "asset": "XLM", "gross_stroops": -100, "occurred_at": at}, "invalid_amount"},
		"float":   {`{"id":"` + uuid.NewString() + `","asset":"XLM","gross_stroops":1.5,"occurred_at":"` + at + `"}`, "wrong_type"},
		"no id":   {map[string]any{"asset": "XLM", "gross_stroops": 100, "occurred_at": at}, "missing_field"},
		"no time": {map[string]any{"id": uuid.New(), "asset": "XLM", "gross_stroops": 100}, "missing_field"},
		"unknown": {map[string]any{"id": uuid.New(), "asset": "XLM", "gross_stroops": 100, "occurred_at": at, "x": 1}, "unknown_field"},
	} {
		r := e.do(http.MethodPost, "/api/v1/treasury/yield", svc, c.body)
		require.Equal(t, http.StatusBadRequest, r.Code, name)
		require.Equal(t, c.code, r.ErrorCode(t), name)
	}
	require.Equal(t, 1, e.treasuryCount(`SELECT count(*) FROM treasury.yield_events`), "nothing written")
	for _, role := range []Role{RoleCouncil, RoleAdmin, RoleFan, RoleCreator} {
		r := e.do(http.MethodPost, "/api/v1/treasury/yield", e.as(role).Token, body)
		require.Equal(t, http.StatusForbidden, r.Code, role)
	}

	for _, role := range []Role{RoleCouncil, RoleAdmin} {
		r := e.do(http.MethodGet, "/api/v1/treasury", e.as(role).Token, nil)
		require.Equal(t, http.StatusOK, r.Code)
		m := r.JSON(t)
		bals := m["balances"].([]any)
		require.Len(t, bals, 2)
		usdc := bals[0].(map[string]any)
		require.Equal(t, "USDC", usdc["asset"])
		require.EqualValues(t, 10_000_000, usdc["balance_stroops"])
		require.EqualValues(t, 0, usdc["reserved_stroops"])
		evs := m["recent_events"].([]any)
		require.Len(t, evs, 1)
		require.Equal(t, "InsuranceFundCapitalized", evs[0].(map[string]any)["type"])
	}
	for _, role := range []Role{RoleService, RoleFan, RoleCreator} {
		require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/api/v1/treasury", e.as(role).Token, nil).Code)
	}
	require.Equal(t, http.StatusUnauthorized, e.do(http.MethodGet, "/api/v1/treasury", "", nil).Code)
}

// Bailouts through the API on the embedded Temporal server with the treasury worker.
func TestBailoutAPI(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	tc := testharness.Temporal(t)
	require.NoError(t, workers.EnsureSearchAttributes(ctx, tc, "default"))
	var council []*keypair.Full
	var keys []string
	for range 5 {
		kp := keypair.MustRandom()
		council = append(council, kp)
		keys = append(keys, kp.Address())
	}
	treasuryAcct := keypair.MustRandom().Address()
	hz := localhorizon.New(config.TestnetPassphrase)
	hz.AddAccount(treasuryAcct, 1, keys)
	srv := httptest.NewServer(hz)
	defer srv.Close()
	var cfg *config.Config
	e := newEnv(t, withTemporal(tc), func(d *Deps) {
		d.Config.Treasury.CouncilKeys = keys
		d.Config.Treasury.Account = treasuryAcct
		d.Config.Treasury.HorizonURL = srv.URL
		d.Config.Treasury.Timelock = time.Hour
		cfg = d.Config
	})
	wctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		done <- workers.Run(wctx, workers.Deps{Client: tc, Pool: e.pool, TreasuryPool: e.tpool, Config: cfg, Logger: testharness.Logger(t)}, []string{workflows.TreasuryQueue})
	}()
	defer func() { stop(); <-done }()

	svc, cm := e.as(RoleService).Token, e.as(RoleCouncil).Token
	r := e.do(http.MethodPost, "/api/v1/treasury/yield", svc,
		map[string]any{"id": uuid.New(), "asset": "XLM", "gross_stroops": 100_000_000_000, "occurred_at": time.Now().UTC().Format(time.RFC3339)})
	require.Equal(t, http.StatusCreated, r.Code) // fund: 1_000_000_000 stroops

	dest := keypair.MustRandom().Address()
	req := map[string]any{"asset": "XLM", "amount_stroops": 400_000_000, "destination": dest, "reason": "protocol exploit"}
	for name, c := range map[string]struct {
		body   any
		status int
		code   string
	}{
		"asset":       {map[string]any{"asset": "BTC", "amount_stroops": 1, "destination": dest, "reason": "x"}, 400, "invalid_bailout"},
		"destination": {map[string]any{"asset": "XLM", "amount_stroops": 1, "destination": "GABC", "reason": "x"}, 400, "invalid_bailout"},
		"zero":        {map[string]any{"asset": "XLM", "amount_stroops": 0, "destination": dest, "reason": "x"}, 400, "invalid_bailout"},
		"too much":    {map[string]any{"asset": "XLM", "amount_stroops": 1_000_000_001, "destination": dest, "reason": "x"}, 422, "insufficient_funds"},
		"unknown":     {map[string]any{"asset": "XLM", "amount_stroops": 1, "destination": dest, "reason": "x", "y": 1}, 400, "unknown_field"},
	} {
		r := e.do(http.MethodPost, "/api/v1/bailouts", cm, c.body)
		require.Equal(t, c.status, r.Code, name+": "+string(r.Body))
		require.Equal(t, c.code, r.ErrorCode(t), name)
	}
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPost, "/api/v1/bailouts", e.as(RoleFan).Token, req).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodPost, "/api/v1/bailouts", svc, req).Code)

	r = e.do(http.MethodPost, "/api/v1/bailouts", cm, req)
	require.Equal(t, http.StatusAccepted, r.Code, string(r.Body))
	id := r.JSON(t)["id"].(string)
	require.Equal(t, contracts.BailoutID(contracts.BailoutRequest{Asset: "XLM", AmountStroops: 400_000_000, Destination: dest, Reason: "protocol exploit"}).String(), id)
	r = e.do(http.MethodPost, "/api/v1/bailouts", e.as(RoleAdmin).Token, req)
	require.Equal(t, http.StatusConflict, r.Code, "same request twice")

	var st map[string]any
	require.Eventually(t, func() bool {
		r := e.do(http.MethodGet, "/api/v1/bailouts/"+id, cm, nil)
		st = r.JSON(t)
		return r.Code == http.StatusOK && st["state"] == workflows.StatePending
	}, 30*time.Second, 100*time.Millisecond)
	hash, err := hex.DecodeString(st["tx_hash"].(string))
	require.NoError(t, err)
	require.Equal(t, http.StatusNotFound, e.do(http.MethodGet, "/api/v1/bailouts/"+uuid.NewString(), cm, nil).Code)
	require.Equal(t, http.StatusForbidden, e.do(http.MethodGet, "/api/v1/bailouts/"+id, e.as(RoleFan).Token, nil).Code)

	sign := func(kp *keypair.Full, msg []byte) map[string]any {
		sig, err := kp.Sign(msg)
		require.NoError(t, err)
		return map[string]any{"signer": kp.Address(), "signature": activities.SignatureBase64(sig)}
	}
	path := "/api/v1/bailouts/" + id + "/approvals"
	r = e.do(http.MethodPost, path, cm, sign(keypair.MustRandom(), hash))
	require.Equal(t, http.StatusUnprocessableEntity, r.Code, string(r.Body))
	require.Contains(t, string(r.Body), "not a council member")
	forged := sign(council[1], hash)
	forged["signer"] = keys[0]
	r = e.do(http.MethodPost, path, cm, forged)
	require.Equal(t, http.StatusUnprocessableEntity, r.Code)
	require.Contains(t, string(r.Body), "does not verify")
	r = e.do(http.MethodPost, path, cm, sign(council[0], hash))
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	require.Len(t, r.JSON(t)["approvals"], 1)
	r = e.do(http.MethodPost, path, cm, sign(council[0], hash))
	require.Equal(t, http.StatusUnprocessableEntity, r.Code, "duplicate")
	require.Contains(t, string(r.Body), "already approved")
	require.Equal(t, http.StatusBadRequest, e.do(http.MethodPost, path, cm, map[string]any{"signer": "nope", "signature": "x"}).Code)

	var reserved float64
	treasury := func() map[string]any {
		return e.do(http.MethodGet, "/api/v1/treasury", cm, nil).JSON(t)["balances"].([]any)[1].(map[string]any)
	}
	reserved = treasury()["reserved_stroops"].(float64)
	require.EqualValues(t, 400_000_000, reserved)

	// A council member cancels with a signed cancel message: the reservation is released.
	cancelPath := "/api/v1/bailouts/" + id + "/cancel"
	r = e.do(http.MethodPost, cancelPath, cm, sign(council[2], hash)) // signed the wrong message
	require.Equal(t, http.StatusUnprocessableEntity, r.Code)
	r = e.do(http.MethodPost, cancelPath, cm, sign(council[2], contracts.CancelMessage(st["tx_hash"].(string))))
	require.Equal(t, http.StatusOK, r.Code, string(r.Body))
	require.Equal(t, workflows.StateCancelled, r.JSON(t)["state"])
	require.Eventually(t, func() bool { return treasury()["reserved_stroops"].(float64) == 0 }, 30*time.Second, 100*time.Millisecond)
	require.Equal(t, 2, e.count(`SELECT count(*) FROM access_log WHERE action IN ('bailout.request', 'bailout.cancel')`))
}
