package db

import (
	"context"
	"fmt"
	"strings"
)

// RoleFacts are what the server says about the role a connection logged in as.
type RoleFacts struct {
	User string
	// Superuser, BypassRLS: the role ignores privileges.
	Superuser bool
	BypassRLS bool
	// TreasuryMember: the role is a member of orchestrator_treasury (directly or not).
	TreasuryMember bool
	// OwnerMember: the role is (or is a member of) orchestrator_owner, which owns the tables.
	OwnerMember bool
	// TreasuryUsage: the role may use schema treasury (it exists and is reachable).
	TreasuryUsage bool
}

// InspectRole reads the facts of the connection's current user.
func InspectRole(ctx context.Context, q Querier) (RoleFacts, error) {
	var f RoleFacts
	err := q.QueryRow(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls,
		       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orchestrator_treasury')
		           AND pg_has_role(r.oid, 'orchestrator_treasury', 'MEMBER'),
		       EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orchestrator_owner')
		           AND pg_has_role(r.oid, 'orchestrator_owner', 'MEMBER'),
		       to_regnamespace('treasury') IS NOT NULL
		           AND has_schema_privilege(r.oid, 'treasury', 'USAGE')
		FROM pg_roles r WHERE r.rolname = current_user`).
		Scan(&f.User, &f.Superuser, &f.BypassRLS, &f.TreasuryMember, &f.OwnerMember, &f.TreasuryUsage)
	if err != nil {
		return f, fmt.Errorf("inspect the database role: %w", err)
	}
	return f, nil
}

// RuntimeRoleProblem says why a role must not be the runtime role of the API and workers, or
// "" when it may: a superuser, a member of the treasury or owner role, or any role that
// reaches schema treasury could change the fund from any code path.
func (f RoleFacts) RuntimeRoleProblem() string {
	var why []string
	switch {
	case f.Superuser:
		why = append(why, "is a superuser")
	case f.BypassRLS:
		why = append(why, "bypasses row security")
	}
	if f.OwnerMember {
		why = append(why, "owns the tables ("+OwnerRole+")")
	}
	if f.TreasuryMember {
		why = append(why, "is a member of "+TreasuryRole)
	} else if f.TreasuryUsage && !f.Superuser {
		why = append(why, "may use schema treasury")
	}
	if len(why) == 0 {
		return ""
	}
	return "role " + f.User + " " + strings.Join(why, " and ")
}

// CheckRuntimeRole refuses a connection whose role could change the treasury, saying why and
// how to fix it in one line. variable names the setting the URL came from.
func CheckRuntimeRole(ctx context.Context, q Querier, variable, override string) error {
	f, err := InspectRole(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", variable, err)
	}
	if p := f.RuntimeRoleProblem(); p != "" {
		return fmt.Errorf("%s: %s, so the API and workers could change the treasury's fund; connect as %s (made by `orchestrator db bootstrap`, README \"Production\") or set %s=true to run anyway",
			variable, p, AppRole, override)
	}
	return nil
}

// CheckTreasuryRole refuses a treasury connection that cannot act as the treasury.
func CheckTreasuryRole(ctx context.Context, q Querier, variable string) error {
	f, err := InspectRole(ctx, q)
	if err != nil {
		return fmt.Errorf("%s: %w", variable, err)
	}
	if !f.TreasuryMember && !f.Superuser {
		return fmt.Errorf("%s: role %s is not a member of %s, so the treasury could not record anything; connect as %s (made by `orchestrator db bootstrap`)",
			variable, f.User, TreasuryRole, TreasuryLoginRole)
	}
	return nil
}
