// Package demo seeds a realistic demo dataset so that a newcomer can try every endpoint within
// a minute of `make run`: three creators with Bronze, Silver and Gold tiers, sixty fans, 180
// days of subscriptions with growth, noise and cancellations, and the people of the tour (a fan
// without a subscription, a Gold fan, a creator, council members, an admin, a service).
//
// The dataset is deterministic: the same anchor day gives the same rows, byte for byte. Every
// row has a fixed id and is inserted with ON CONFLICT DO NOTHING, so seeding twice changes
// nothing.
package demo

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// namespace makes the demo's ids: uuid v5 of a readable name.
var namespace = uuid.MustParse("6c1f1d0e-3c57-4f0e-9d1a-2f4b8a7e5c11")

// ID is the fixed id of a demo object.
func ID(name string) uuid.UUID { return uuid.NewSHA1(namespace, []byte(name)) }

// Days of history the dataset covers.
const Days = 180

// Dataset names the seeded people the tour uses.
type Dataset struct {
	// Anchor is the day the history ends (midnight UTC).
	Anchor time.Time
	// Creators are the three creators, the tour's creator first.
	Creators []Creator
	// FanWithoutSubscription subscribes to nobody.
	FanWithoutSubscription uuid.UUID
	// GoldFan has an active Gold subscription to the first creator.
	GoldFan uuid.UUID
	// Council are the five council members.
	Council []uuid.UUID
	Admin   uuid.UUID
	Service uuid.UUID
	// Fans counts all fans.
	Fans int
}

// Creator is a demo creator and its tiers by level (1 Bronze, 2 Silver, 3 Gold).
type Creator struct {
	ID     uuid.UUID
	Handle string
	Name   string
	Tiers  map[int]uuid.UUID
}

// creatorSpec shapes one creator's history.
type creatorSpec struct {
	handle, name string
	asset        string
	prices       [3]int64 // Bronze, Silver, Gold per 30 days, in stroops
	joinsPerDay0 float64  // new subscribers a day at the start of the window
	growth       float64  // monthly growth of the joining rate
	churn        float64  // monthly probability that a subscriber cancels
}

var specs = []creatorSpec{
	{"aurora_beats", "Aurora Beats", "USDC", [3]int64{5_0000000, 12_0000000, 30_0000000}, 0.12, 0.18, 0.05},
	{"pixel_forge", "Pixel Forge", "USDC", [3]int64{3_0000000, 8_0000000, 20_0000000}, 0.18, 0.02, 0.07},
	{"slow_kitchen", "Slow Kitchen", "XLM", [3]int64{40_0000000, 100_0000000, 250_0000000}, 0.25, -0.08, 0.09},
}

var tierNames = [3]string{"Bronze", "Silver", "Gold"}

// numFans is how many fans the dataset has, besides the tour's two.
const numFans = 60

// Plan builds the dataset for an anchor day without touching a database.
func Plan(anchor time.Time) *Dataset {
	anchor = anchor.UTC().Truncate(24 * time.Hour)
	d := &Dataset{
		Anchor:                 anchor,
		FanWithoutSubscription: ID("fan:no-subscription"),
		GoldFan:                ID("fan:gold"),
		Admin:                  ID("admin"),
		Service:                ID("service"),
		Fans:                   numFans + 2,
	}
	for _, s := range specs {
		c := Creator{ID: ID("creator:" + s.handle), Handle: s.handle, Name: s.name, Tiers: map[int]uuid.UUID{}}
		for level := 1; level <= 3; level++ {
			c.Tiers[level] = ID(fmt.Sprintf("tier:%s:%d", s.handle, level))
		}
		d.Creators = append(d.Creators, c)
	}
	for i := range 5 {
		d.Council = append(d.Council, ID(fmt.Sprintf("council:%d", i+1)))
	}
	return d
}

// rows are everything to insert, in dependency order.
type rows struct {
	users         [][]any // id, role, display_name
	creators      [][]any // id, handle
	tiers         [][]any // id, creator_id, name, level, price, asset
	subscriptions [][]any // id, fan, creator, tier, status, started, period_end, cancelled_at
	revenue       [][]any // id, external_id, creator, fan, subscription, kind, amount, asset, occurred_at
}

// build generates the rows from a fixed random stream.
func (d *Dataset) build() rows {
	rng := rand.New(rand.NewPCG(20260101, 42))
	var r rows
	add := func(id uuid.UUID, role, name string) { r.users = append(r.users, []any{id, role, name}) }
	add(d.Admin, "admin", "Demo Admin")
	add(d.Service, "service", "Demo Payments Importer")
	for i, id := range d.Council {
		add(id, "council", fmt.Sprintf("Council Member %d", i+1))
	}
	add(d.FanWithoutSubscription, "fan", "Nora (no subscription)")
	add(d.GoldFan, "fan", "Gabe (Gold)")
	fans := make([]uuid.UUID, numFans)
	for i := range fans {
		fans[i] = ID(fmt.Sprintf("fan:%d", i+1))
		add(fans[i], "fan", fmt.Sprintf("Fan %02d", i+1))
	}
	for ci, s := range specs {
		c := d.Creators[ci]
		add(c.ID, "creator", c.Name)
		r.creators = append(r.creators, []any{c.ID, c.Handle})
		for level := 1; level <= 3; level++ {
			r.tiers = append(r.tiers, []any{c.Tiers[level], c.ID, tierNames[level-1], level, s.prices[level-1], s.asset})
		}
		d.buildCreator(rng, &r, ci, fans)
	}
	return r
}

func (d *Dataset) buildCreator(rng *rand.Rand, r *rows, ci int, fans []uuid.UUID) {
	s, c := specs[ci], d.Creators[ci]
	start := d.Anchor.AddDate(0, 0, -Days)
	subscribed := map[uuid.UUID]bool{}
	dailyChurn := 1 - math.Pow(1-s.churn, 1.0/30)
	n := 0
	subscribe := func(fan uuid.UUID, level int, day int, stays bool) {
		n++
		subID := ID(fmt.Sprintf("sub:%s:%d", c.Handle, n))
		started := start.AddDate(0, 0, day).Add(time.Duration(rng.IntN(86400)) * time.Second)
		// Each period is paid at its start; the subscription is cancelled, or renewed until
		// its current period covers the anchor.
		var cancelledAt *time.Time
		periodEnd := started
		for p := 0; ; p++ {
			payAt := started.AddDate(0, 0, 30*p)
			if payAt.After(d.Anchor) {
				break
			}
			price := s.prices[level-1]
			r.revenue = append(r.revenue, []any{ID(fmt.Sprintf("pay:%s:%d:%d", c.Handle, n, p)),
				fmt.Sprintf("demo-pay-%s-%d-%d", c.Handle, n, p), c.ID, fan, subID, "subscription_payment", price, s.asset, payAt})
			periodEnd = payAt.AddDate(0, 0, 30)
			// Churn: the fan may cancel at any day of this period.
			if !stays {
				for day := 0; day < 30; day++ {
					at := payAt.AddDate(0, 0, day)
					if at.After(d.Anchor) {
						break
					}
					if rng.Float64() < dailyChurn {
						t := at.Add(time.Duration(rng.IntN(86400)) * time.Second)
						if t.Before(started) {
							t = started.Add(time.Hour)
						}
						if t.After(d.Anchor) {
							t = d.Anchor.Add(-time.Hour)
						}
						cancelledAt = &t
						break
					}
				}
			}
			if cancelledAt != nil {
				break
			}
		}
		status := "active"
		if cancelledAt != nil {
			status = "cancelled"
		}
		r.subscriptions = append(r.subscriptions, []any{subID, fan, c.ID, c.Tiers[level], status, started, periodEnd, cancelledAt})
		subscribed[fan] = true
	}
	if ci == 0 {
		// The tour's Gold fan: a long, loyal subscription to the first creator.
		subscribe(d.GoldFan, 3, 80, true)
	}
	for day := 0; day < Days; day++ {
		rate := s.joinsPerDay0 * math.Pow(1+s.growth, float64(day)/30)
		for joins := poisson(rng, rate); joins > 0; joins-- {
			fan := fans[rng.IntN(len(fans))]
			if subscribed[fan] {
				continue
			}
			level := 1
			switch x := rng.Float64(); {
			case x > 0.85:
				level = 3
			case x > 0.55:
				level = 2
			}
			subscribe(fan, level, day, false)
		}
		// Tips: a few a week, lognormal amounts around 2 units.
		if rng.Float64() < 0.35 {
			fan := fans[rng.IntN(len(fans))]
			amount := int64(math.Exp(rng.NormFloat64()*0.7+math.Log(2)) * 1e7)
			if amount < 1e6 {
				amount = 1e6
			}
			at := start.AddDate(0, 0, day).Add(time.Duration(rng.IntN(86400)) * time.Second)
			if at.Before(d.Anchor) {
				r.revenue = append(r.revenue, []any{ID(fmt.Sprintf("tip:%s:%d", c.Handle, day)),
					fmt.Sprintf("demo-tip-%s-%d", c.Handle, day), c.ID, fan, nil, "tip", amount, s.asset, at})
			}
		}
	}
}

// poisson draws from a Poisson distribution with mean lambda (Knuth's method; lambda is small).
func poisson(rng *rand.Rand, lambda float64) int {
	if lambda <= 0 {
		return 0
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Seed writes the dataset for anchor into the database, in one transaction. Rows that exist
// are left alone.
func Seed(ctx context.Context, pool *pgxpool.Pool, anchor time.Time) (*Dataset, error) {
	d := Plan(anchor)
	r := d.build()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		for _, u := range r.users {
			b.Queue(`INSERT INTO users (id, role, display_name, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
				ON CONFLICT (id) DO NOTHING`, append(u, d.Anchor.AddDate(0, 0, -Days-1))...)
		}
		for _, c := range r.creators {
			b.Queue(`INSERT INTO creators (id, handle, created_at, updated_at) VALUES ($1, $2, $3, $3)
				ON CONFLICT (id) DO NOTHING`, append(c, d.Anchor.AddDate(0, 0, -Days-1))...)
		}
		for _, t := range r.tiers {
			b.Queue(`INSERT INTO subscription_tiers (id, creator_id, name, level, price_stroops, asset, permissions, created_at, updated_at)
				VALUES ($1, $2, $3, $4::smallint, $5, $6, CASE WHEN $4::smallint >= 3 THEN '{direct_messages}'::text[] ELSE '{}' END, $7, $7)
				ON CONFLICT DO NOTHING`, append(t, d.Anchor.AddDate(0, 0, -Days-1))...)
		}
		for _, s := range r.subscriptions {
			b.Queue(`INSERT INTO subscriptions (id, fan_id, creator_id, tier_id, status, started_at, current_period_end, cancelled_at, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6::timestamptz, $7, $8::timestamptz, $6::timestamptz, coalesce($8::timestamptz, $6::timestamptz))
				ON CONFLICT DO NOTHING`, s...)
		}
		for _, e := range r.revenue {
			b.Queue(`INSERT INTO revenue_events (id, external_id, creator_id, fan_id, subscription_id, kind, amount_stroops, asset, occurred_at, created_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
				ON CONFLICT DO NOTHING`, e...)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return err
		}
		return d.seedComments(ctx, tx, r)
	})
	if err != nil {
		return nil, fmt.Errorf("seed demo data: %w", err)
	}
	return d, nil
}

// Seeded reports whether the demo dataset is already in the database.
func Seeded(ctx context.Context, pool *pgxpool.Pool) (bool, error) {
	var ok bool
	err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, ID("admin")).Scan(&ok)
	return ok, err
}

// Anchor returns the anchor day of the seeded dataset (the day after its newest demo row's
// creation day), so a restart prints the same dataset it seeded.
func Anchor(ctx context.Context, pool *pgxpool.Pool) (time.Time, error) {
	var created time.Time
	err := pool.QueryRow(ctx, `SELECT created_at FROM users WHERE id = $1`, ID("admin")).Scan(&created)
	if err != nil {
		return time.Time{}, err
	}
	return created.UTC().AddDate(0, 0, Days+1), nil
}
