package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Assets a price or a payment may be in.
var Assets = []string{"USDC", "XLM"}

// User is an account of any role.
type User struct {
	ID             uuid.UUID
	Role           string
	DisplayName    string
	StellarAccount *string
	// Handle is set for creators.
	Handle    *string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// UserInput is what PUT /users/{id} sets.
type UserInput struct {
	Role           string
	DisplayName    string
	StellarAccount *string
	Handle         *string
}

const userColumns = `u.id, u.role, u.display_name, u.stellar_account, c.handle, u.created_at, u.updated_at`

func scanUser(row pgx.Row) (User, error) {
	var u User
	err := row.Scan(&u.ID, &u.Role, &u.DisplayName, &u.StellarAccount, &u.Handle, &u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// UpsertUser creates or replaces user id. A creator also gets (or keeps) a creator page with
// its handle. It reports whether the user was new.
func UpsertUser(ctx context.Context, pool *pgxpool.Pool, id uuid.UUID, in UserInput, now time.Time) (User, bool, error) {
	var created bool
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		var hasPage bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM creators WHERE id = $1)`, id).Scan(&hasPage); err != nil {
			return err
		}
		if hasPage && in.Role != "creator" {
			return conflict("role_change_not_allowed", "this user has a creator page and must keep the creator role")
		}
		err := tx.QueryRow(ctx, `
			INSERT INTO users (id, role, display_name, stellar_account, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (id) DO UPDATE
			   SET role = EXCLUDED.role, display_name = EXCLUDED.display_name,
			       stellar_account = EXCLUDED.stellar_account, updated_at = EXCLUDED.updated_at
			RETURNING xmax = 0`, id, in.Role, in.DisplayName, in.StellarAccount, now).Scan(&created)
		if err != nil {
			return err
		}
		if in.Role != "creator" {
			return nil
		}
		_, err = tx.Exec(ctx, `
			INSERT INTO creators (id, handle, created_at, updated_at) VALUES ($1, $2, $3, $3)
			ON CONFLICT (id) DO UPDATE SET handle = EXCLUDED.handle, updated_at = EXCLUDED.updated_at
			 WHERE creators.handle IS DISTINCT FROM EXCLUDED.handle`, id, in.Handle, now)
		if pgCode(err) == codeUniqueViolation {
			return conflict("handle_taken", "another creator already has this handle")
		}
		return err
	})
	if err != nil {
		return User{}, false, err
	}
	u, err := GetUser(ctx, pool, id)
	return u, created, err
}

// GetUser returns user id.
func GetUser(ctx context.Context, q Querier, id uuid.UUID) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM users u LEFT JOIN creators c ON c.id = u.id WHERE u.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, missing("user_not_found", "user not found")
	}
	return u, err
}

// ListUsers pages through users, newest first, optionally of one role.
func ListUsers(ctx context.Context, q Querier, role string, p Page) ([]User, *Cursor, error) {
	at, id := cursorArgs(p.After)
	rows, err := q.Query(ctx, `
		SELECT `+userColumns+` FROM users u LEFT JOIN creators c ON c.id = u.id
		 WHERE ($1 = '' OR u.role = $1)
		   AND ($2::timestamptz IS NULL OR (u.created_at, u.id) < ($2, $3))
		 ORDER BY u.created_at DESC, u.id DESC
		 LIMIT $4`, role, at, id, p.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, nil, err
	}
	items, next := pageOf(users, p.Limit, func(u User) Cursor { return Cursor{At: u.CreatedAt, ID: u.ID} })
	return items, next, nil
}

// cursorArgs turns an optional cursor into query arguments (NULL when absent).
func cursorArgs(c *Cursor) (*time.Time, uuid.UUID) {
	if c == nil {
		return nil, uuid.Nil
	}
	return &c.At, c.ID
}

// Tier is a subscription tier a creator sells.
type Tier struct {
	ID           uuid.UUID
	CreatorID    uuid.UUID
	Name         string
	Level        int
	PriceStroops int64
	Asset        string
	PeriodDays   int
	Permissions  []string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// TierInput is what PUT /creators/{id}/tiers/{tier_id} sets.
type TierInput struct {
	Name         string
	Level        int
	PriceStroops int64
	Asset        string
	PeriodDays   int
	Permissions  []string
}

const tierColumns = `id, creator_id, name, level, price_stroops, asset, period_days, permissions, created_at, updated_at`

func scanTier(row pgx.Row) (Tier, error) {
	var t Tier
	err := row.Scan(&t.ID, &t.CreatorID, &t.Name, &t.Level, &t.PriceStroops, &t.Asset, &t.PeriodDays, &t.Permissions, &t.CreatedAt, &t.UpdatedAt)
	return t, err
}

// UpsertTier creates or replaces tier id of creator. It reports whether the tier was new.
func UpsertTier(ctx context.Context, pool *pgxpool.Pool, creatorID, id uuid.UUID, in TierInput, now time.Time) (Tier, bool, error) {
	var t Tier
	var created bool
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if err := requireCreator(ctx, tx, creatorID, missing); err != nil {
			return err
		}
		var owner uuid.UUID
		err := tx.QueryRow(ctx, `SELECT creator_id FROM subscription_tiers WHERE id = $1 FOR UPDATE`, id).Scan(&owner)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			created = true
		case err != nil:
			return err
		case owner != creatorID:
			return conflict("tier_of_another_creator", "this tier id belongs to another creator")
		}
		perms := in.Permissions
		if perms == nil {
			perms = []string{}
		}
		t, err = scanTier(tx.QueryRow(ctx, `
			INSERT INTO subscription_tiers (id, creator_id, name, level, price_stroops, asset, period_days, permissions, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
			ON CONFLICT (id) DO UPDATE
			   SET name = EXCLUDED.name, level = EXCLUDED.level, price_stroops = EXCLUDED.price_stroops,
			       asset = EXCLUDED.asset, period_days = EXCLUDED.period_days,
			       permissions = EXCLUDED.permissions, updated_at = EXCLUDED.updated_at
			RETURNING `+tierColumns, id, creatorID, in.Name, in.Level, in.PriceStroops, in.Asset, in.PeriodDays, perms, now))
		if pgCode(err) == codeUniqueViolation {
			return conflict("tier_level_taken", fmt.Sprintf("the creator already has a tier at level %d", in.Level))
		}
		return err
	})
	return t, created, err
}

// requireCreator fails with mk("creator_not_found", ...) unless creator id exists.
func requireCreator(ctx context.Context, q Querier, id uuid.UUID, mk func(code, msg string) error) error {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM creators WHERE id = $1)`, id).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		return mk("creator_not_found", "there is no creator with this id")
	}
	return nil
}

// GetCreator returns creator id as a user.
func GetCreator(ctx context.Context, q Querier, id uuid.UUID) (User, error) {
	u, err := scanUser(q.QueryRow(ctx, `SELECT `+userColumns+` FROM creators c JOIN users u ON u.id = c.id WHERE c.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return User{}, missing("creator_not_found", "creator not found")
	}
	return u, err
}

// ListCreators pages through creators, newest first.
func ListCreators(ctx context.Context, q Querier, p Page) ([]User, *Cursor, error) {
	at, id := cursorArgs(p.After)
	rows, err := q.Query(ctx, `
		SELECT `+userColumns+` FROM creators c JOIN users u ON u.id = c.id
		 WHERE ($1::timestamptz IS NULL OR (u.created_at, u.id) < ($1, $2))
		 ORDER BY u.created_at DESC, u.id DESC
		 LIMIT $3`, at, id, p.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) { return scanUser(r) })
	if err != nil {
		return nil, nil, err
	}
	items, next := pageOf(users, p.Limit, func(u User) Cursor { return Cursor{At: u.CreatedAt, ID: u.ID} })
	return items, next, nil
}

// ListTiers returns a creator's tiers by level.
func ListTiers(ctx context.Context, q Querier, creatorID uuid.UUID) ([]Tier, error) {
	if err := requireCreator(ctx, q, creatorID, missing); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, `SELECT `+tierColumns+` FROM subscription_tiers WHERE creator_id = $1 ORDER BY level`, creatorID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tier, error) { return scanTier(r) })
}

// GetTier returns tier id of creator.
func GetTier(ctx context.Context, q Querier, creatorID, id uuid.UUID) (Tier, error) {
	t, err := scanTier(q.QueryRow(ctx, `SELECT `+tierColumns+` FROM subscription_tiers WHERE id = $1 AND creator_id = $2`, id, creatorID))
	if errors.Is(err, pgx.ErrNoRows) {
		return Tier{}, missing("tier_not_found", "tier not found")
	}
	return t, err
}
