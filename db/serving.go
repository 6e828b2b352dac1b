package db

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ServingProbe is one probe of a serving check.
type ServingProbe struct {
	// Name says what was tried: a domain's read path or the treasury write.
	Name string `json:"name"`
	// Role is the database role the probe ran as (the session user of its URL).
	Role    string  `json:"role"`
	OK      bool    `json:"ok"`
	Error   string  `json:"error,omitempty"`
	Seconds float64 `json:"seconds"`
}

// ServingReport is the result of ServingCheck: whether the database serves the application
// as its own roles see it.
type ServingReport struct {
	OK     bool           `json:"ok"`
	Checks []ServingProbe `json:"checks"`
}

// Failed lists the probes that failed, one "name (role): error" each.
func (r ServingReport) Failed() []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, fmt.Sprintf("%s (%s): %s", c.Name, c.Role, c.Error))
		}
	}
	return out
}

// ErrNotServing means a serving check found a path of the application that fails.
var ErrNotServing = errors.New("the database does not serve the application")

// servingProbe is one domain's read path, run as the runtime role.
type servingProbe struct {
	name string
	run  func(ctx context.Context, q Querier, now time.Time) error
}

// runtimeProbes are the read paths of every domain, as the API and workers run them. A
// domain error (not found, forbidden) is an answer and counts as served; a database error
// (missing role, privilege or relation) does not.
var runtimeProbes = []servingProbe{
	{"accounts: list users", func(ctx context.Context, q Querier, _ time.Time) error {
		_, _, err := ListUsers(ctx, q, "", Page{Limit: 1})
		return err
	}},
	{"accounts: list creators and tiers", func(ctx context.Context, q Querier, _ time.Time) error {
		if _, _, err := ListCreators(ctx, q, Page{Limit: 1}); err != nil {
			return err
		}
		_, err := ListTiers(ctx, q, uuid.Nil)
		return err
	}},
	{"subscriptions: list and active level", func(ctx context.Context, q Querier, now time.Time) error {
		if _, _, err := ListSubscriptions(ctx, q, SubscriptionFilter{}, Page{Limit: 1}); err != nil {
			return err
		}
		_, _, err := ActiveLevel(ctx, q, uuid.Nil, uuid.Nil, now)
		return err
	}},
	{"revenue: list events", func(ctx context.Context, q Querier, _ time.Time) error {
		_, _, err := ListRevenueEvents(ctx, q, uuid.Nil, Page{Limit: 1})
		return err
	}},
	{"comments: list threads", func(ctx context.Context, q Querier, now time.Time) error {
		if _, err := MayComment(ctx, q, uuid.Nil, uuid.Nil, now); err != nil {
			return err
		}
		_, _, err := ListCommentsFor(ctx, q, CommentViewer{}, uuid.Nil, now, Page{Limit: 1})
		if e, ok := AsError(err); ok && e.Code == "creator_not_found" {
			err = nil // the statement ran; there is no creator uuid.Nil
		}
		return err
	}},
	{"messages: conversations, keys and presence", func(ctx context.Context, q Querier, _ time.Time) error {
		if _, _, err := ListConversations(ctx, q, uuid.Nil, Page{Limit: 1}); err != nil {
			return err
		}
		if _, err := GetPublicKey(ctx, q, uuid.Nil); err != nil {
			return err
		}
		_, err := OnlineContacts(ctx, q, uuid.Nil, time.Minute)
		return err
	}},
	{"forecasts: latest forecasts and streams", func(ctx context.Context, q Querier, now time.Time) error {
		if _, err := LatestForecasts(ctx, q, uuid.Nil); err != nil {
			return err
		}
		_, _, _, err := CreatorStreams(ctx, q, uuid.Nil, now, Page{Limit: 1})
		return err
	}},
	{"backups: catalog and drills", func(ctx context.Context, q Querier, _ time.Time) error {
		if _, err := ListBackups(ctx, q, "", 1); err != nil {
			return err
		}
		_, err := ListDrills(ctx, q, 1)
		return err
	}},
	{"access log: readable", func(ctx context.Context, q Querier, _ time.Time) error {
		var n int
		return q.QueryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM access_log LIMIT 1) s`).Scan(&n)
	}},
}

// ServingCheck proves a (restored) database serves the application: every domain's read
// path as the runtime role (runtimeURL, what DATABASE_URL is in production), and as the
// treasury login (treasuryURL) the treasury's reads, its hash chain, and a write of each kind
// the treasury makes, inside a transaction that is rolled back, so nothing is changed.
// It returns the report and, when any probe failed, an error wrapping ErrNotServing that
// names them.
func ServingCheck(ctx context.Context, runtimeURL, treasuryURL string) (ServingReport, error) {
	var rep ServingReport
	now := time.Now()
	runtime, role, err := servingPool(ctx, runtimeURL)
	if err != nil {
		rep.Checks = append(rep.Checks, ServingProbe{Name: "runtime role: connect", Role: role, Error: err.Error()})
	} else {
		defer runtime.Close()
		for _, p := range runtimeProbes {
			rep.Checks = append(rep.Checks, probe(p.name, role, func() error {
				if err := p.run(ctx, runtime, now); err != nil {
					if _, domain := AsError(err); domain {
						return nil
					}
					return err
				}
				return nil
			}))
		}
	}
	treasury, role, err := servingPool(ctx, treasuryURL)
	if err != nil {
		rep.Checks = append(rep.Checks, ServingProbe{Name: "treasury login: connect", Role: role, Error: err.Error()})
	} else {
		defer treasury.Close()
		t := NewTreasury(treasury)
		rep.Checks = append(rep.Checks,
			probe("treasury: balances and recent events", role, func() error {
				if _, err := t.Balances(ctx); err != nil {
					return err
				}
				_, err := t.RecentEvents(ctx, 1)
				return err
			}),
			probe("treasury: hash chain verifies", role, func() error {
				_, err := t.VerifyChain(ctx)
				return err
			}),
			probe("treasury: write (rolled back)", role, func() error { return treasuryWriteRolledBack(ctx, treasury, now) }),
		)
	}
	rep.OK = len(rep.Checks) > 0
	for _, c := range rep.Checks {
		rep.OK = rep.OK && c.OK
	}
	if !rep.OK {
		return rep, fmt.Errorf("%w: %s", ErrNotServing, strings.Join(rep.Failed(), "; "))
	}
	return rep, nil
}

// errRollback ends the serving check's treasury transaction after its writes succeeded.
var errRollback = errors.New("serving check: rolled back on purpose")

// treasuryWriteRolledBack makes the treasury's writes as its code makes them (SET LOCAL ROLE,
// the event chain's lock and append, the balance update) and rolls them back.
func treasuryWriteRolledBack(ctx context.Context, pool *pgxpool.Pool, now time.Time) error {
	t := NewTreasury(pool)
	err := t.tx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE treasury.balances SET updated_at = $1 WHERE asset = 'XLM'`, now); err != nil {
			return err
		}
		if _, err := appendEvent(ctx, tx, EventFundCapitalized, nil, now, map[string]any{"serving_check": true}); err != nil {
			return err
		}
		return errRollback
	})
	if errors.Is(err, errRollback) {
		return nil
	}
	if err == nil {
		return errors.New("the transaction was not rolled back")
	}
	return err
}

func probe(name, role string, fn func() error) ServingProbe {
	start := time.Now()
	err := fn()
	c := ServingProbe{Name: name, Role: role, OK: err == nil, Seconds: time.Since(start).Seconds()}
	if err != nil {
		c.Error = err.Error()
	}
	return c
}

// servingPool opens a small pool and reports the role it logged in as.
func servingPool(ctx context.Context, url string) (*pgxpool.Pool, string, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, "(unparsable URL)", fmt.Errorf("not a PostgreSQL URL: %w", err)
	}
	role := cfg.ConnConfig.User
	cfg.MaxConns = 2
	pool, err := OpenConfig(ctx, cfg)
	if err != nil {
		return nil, role, err
	}
	if err := pool.QueryRow(ctx, `SELECT session_user`).Scan(&role); err != nil {
		pool.Close()
		return nil, role, err
	}
	return pool, role, nil
}
