package db

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The database identities. Role names are cluster-wide and fixed: the bootstrap, the
// migrations and the start-time checks all name them.
const (
	// OwnerRole owns the database, its schemas and every table, and runs the migrations
	// (MIGRATE_DATABASE_URL). It has no CREATEROLE: roles are the bootstrap's business.
	OwnerRole = "orchestrator_owner"
	// AppRole is the runtime role of the API and the workers (DATABASE_URL): DML on the
	// application's tables in schema public, nothing on schema treasury.
	AppRole = "orchestrator_app"
	// TreasuryLoginRole logs in for the treasury code (TREASURY_DATABASE_URL); it holds the
	// treasury's rights only through its membership of TreasuryRole.
	TreasuryLoginRole = "orchestrator_treasury_login"
	// BackupRole reads everything the application stores, treasury included, and writes
	// nothing (BACKUP_DATABASE_URL): pg_dump runs as this role.
	BackupRole = "orchestrator_backup"
)

// LoginRoles are the roles that log in, in the order the bootstrap lists them.
var LoginRoles = []string{OwnerRole, AppRole, TreasuryLoginRole, BackupRole}

//go:embed bootstrap.sql
var bootstrapSQL string

// BootstrapSQL is the bootstrap as one SQL script, for a DBA to read and run with psql
// (connected as an administrator to the application's database). It sets no password.
func BootstrapSQL() string { return bootstrapSQL }

// BootstrapOptions tune Bootstrap.
type BootstrapOptions struct {
	// Passwords sets the password of login roles (role name → password). A role not listed
	// keeps the password it has (or none: the server's loopback trust or peer rules apply).
	// Passwords reach the server only as SCRAM-SHA-256 verifiers, never in clear.
	Passwords map[string]string
	// ReassignFrom names roles of an existing install (the application user of the old
	// layout, which owned the tables and was a member of orchestrator_treasury): what they
	// own in this database passes to orchestrator_owner and their treasury membership ends.
	ReassignFrom []string
}

// Bootstrap creates the database identities and their privileges in the database adminURL
// points at. It needs an administrator (a superuser, or a role with CREATEROLE that may
// grant the roles). It is idempotent and safe to run concurrently (roles are cluster-wide:
// bootstraps of several databases on one server may run at the same moment).
func Bootstrap(ctx context.Context, adminURL string, opts BootstrapOptions) error {
	for role, pw := range opts.Passwords {
		if !slices.Contains(LoginRoles, role) {
			return fmt.Errorf("bootstrap: %s is not a login role of the orchestrator", role)
		}
		if err := checkPassword(pw); err != nil {
			return fmt.Errorf("bootstrap: password of %s: %w", role, err)
		}
	}
	for _, old := range opts.ReassignFrom {
		if old == "" || strings.HasPrefix(old, "orchestrator_") || old == "postgres" {
			return fmt.Errorf("bootstrap: --reassign-from %q: name the old application user (e.g. orchestrator), not a role of the new layout or the administrator", old)
		}
	}
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("bootstrap: cannot connect as administrator: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()

	// Concurrent changes to the shared role catalog can fail with "tuple concurrently
	// updated" or a unique violation; everything is idempotent, so try again.
	var last error
	for attempt := 0; attempt < 8; attempt++ {
		last = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error { return bootstrapTx(ctx, tx, opts) })
		if last == nil || !retryableCatalogError(last) {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt+1) * 50 * time.Millisecond):
		}
	}
	if last != nil {
		if pgCode(last) == "42501" {
			return fmt.Errorf("bootstrap: the administrator URL's user may not create or grant roles (needs superuser or CREATEROLE): %w", last)
		}
		return fmt.Errorf("bootstrap: %w", last)
	}
	return nil
}

func bootstrapTx(ctx context.Context, tx pgx.Tx, opts BootstrapOptions) error {
	if _, err := tx.Exec(ctx, bootstrapSQL); err != nil {
		return err
	}
	for _, old := range opts.ReassignFrom {
		id := pgx.Identifier{old}.Sanitize()
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, old).Scan(&exists); err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("--reassign-from: no role named %s", old)
		}
		for _, stmt := range []string{
			"REASSIGN OWNED BY " + id + " TO " + OwnerRole,
			"REVOKE " + TreasuryRole + " FROM " + id,
		} {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("%s: %w", stmt, err)
			}
		}
	}
	roles := make([]string, 0, len(opts.Passwords))
	for r := range opts.Passwords {
		roles = append(roles, r)
	}
	slices.Sort(roles)
	for _, role := range roles {
		v, err := scramVerifier(opts.Passwords[role])
		if err != nil {
			return err
		}
		// A utility statement takes no parameters; the verifier is base64 and '$', safe to
		// quote.
		if _, err := tx.Exec(ctx, "ALTER ROLE "+pgx.Identifier{role}.Sanitize()+" PASSWORD '"+v+"'"); err != nil {
			return fmt.Errorf("set password of %s: %w", role, err)
		}
	}
	return nil
}

func retryableCatalogError(err error) bool {
	switch pgCode(err) {
	case "XX000", "40001", "40P01", codeUniqueViolation, "42710":
		return true
	}
	return false
}

func checkPassword(pw string) error {
	if len(pw) < 12 {
		return errors.New("shorter than 12 characters")
	}
	for _, r := range pw {
		if r < 0x21 || r > 0x7e {
			return errors.New("only printable ASCII without spaces is accepted (SASLprep would change others)")
		}
	}
	return nil
}

// scramVerifier is the SCRAM-SHA-256 verifier PostgreSQL stores for password (the format
// `psql \password` sends): the password itself never reaches the server or its logs.
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(server)), nil
}

// RoleURLs are the connection strings of the login roles on one database.
type RoleURLs struct {
	// Owner migrates (MIGRATE_DATABASE_URL).
	Owner string
	// App is the runtime role (DATABASE_URL).
	App string
	// Treasury is the treasury login (TREASURY_DATABASE_URL).
	Treasury string
	// Backup reads everything for pg_dump (BACKUP_DATABASE_URL).
	Backup string
}

// DevRoleURLs derives, for `orchestrator dev` and the tests, the login roles' URLs from an
// administrator's URL of the same database: same host, database and options, each role's
// name, and, when the administrator's URL has a password, HMAC-SHA256(that password, role
// name) in hex as the role's password. The passwords are returned for Bootstrap to set; they
// are stored nowhere and are the same for every process that knows the administrator's
// password, so concurrent bootstraps agree. Without an administrator password no password
// is set: the server's loopback trust or peer rules let the roles in.
func DevRoleURLs(adminURL string) (RoleURLs, map[string]string, error) {
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.User == nil {
		return RoleURLs{}, nil, errors.New("the administrator's connection string must be a postgres:// URL with a user")
	}
	adminPW, hasPW := u.User.Password()
	passwords := map[string]string{}
	as := func(role string) string {
		v := *u
		if hasPW && adminPW != "" {
			m := hmac.New(sha256.New, []byte(adminPW))
			m.Write([]byte(role))
			pw := hex.EncodeToString(m.Sum(nil))
			passwords[role] = pw
			v.User = url.UserPassword(role, pw)
		} else {
			v.User = url.User(role)
		}
		return v.String()
	}
	r := RoleURLs{Owner: as(OwnerRole), App: as(AppRole), Treasury: as(TreasuryLoginRole), Backup: as(BackupRole)}
	return r, passwords, nil
}
