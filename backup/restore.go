package backup

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"
)

// RestoreOptions configure one restore.
type RestoreOptions struct {
	// ID is the backup to restore.
	ID string
	// TargetURL is the database to restore into. It must exist and be empty unless Create
	// (then it may be missing) or Clean (then a non-empty one is replaced).
	TargetURL string
	// Identities decrypt the backup (age X25519 identities or a scrypt identity).
	Identities []age.Identity
	// Clean lets the restore replace a non-empty database.
	Clean bool
	// Create lets the restore create the target database when it does not exist.
	Create bool
	// NoOwner restores every object as the restoring user instead of with the owners and
	// grants the source had (pg_restore --no-owner --no-privileges); only for backups of
	// databases whose roles the target will never have.
	NoOwner bool
	// NoPrivileges skips the dump's GRANTs and default privileges (pg_restore
	// --no-privileges), for a restoring role that could not replay them.
	NoPrivileges bool
	// Jobs is pg_restore --jobs for the post-data section (indexes and constraints); the
	// data itself streams through one pg_restore, since pg_restore reads a pipe only in
	// order. Zero means 1.
	Jobs int
	// PGBinDir holds pg_restore; empty means /usr/lib/postgresql/<major>/bin, then PATH.
	PGBinDir string
	// Progress, when set, is called with the phase and the bytes done of total.
	Progress func(phase string, done, total int64)
}

// RestoreResult reports a restore. The phases overlap: each duration is measured from the
// start of the restore to the end of its phase.
type RestoreResult struct {
	Manifest *Manifest
	// Download ends when the whole object has been read and its SHA-256 checked.
	Download time.Duration
	// Restore ends when pg_restore has finished every section.
	Restore time.Duration
	// Verify ends when the restored data has been fingerprinted.
	Verify     time.Duration
	Tables     []Table
	Mismatches []string
}

// ErrMismatch means the restored data does not match the manifest's fingerprint.
var ErrMismatch = errors.New("restored data does not match the backup's fingerprint")

// ReadIdentities reads age identities from a file (age-keygen output).
func ReadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("identity file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("identity file %s: %w", path, err)
	}
	return ids, nil
}

// Restore streams a backup from the store into a new staging database beside the target,
// in these steps: check the target; open the object and its age header; stream it through
// age, zstd and pg_restore into the staging database while hashing the ciphertext; check
// size and SHA-256 against the manifest; build indexes and constraints while fingerprinting
// the data; compare the fingerprint; and only then put the staging database in the target's
// place. Until that last step the target is untouched, and on any failure the staging
// database is dropped. No plaintext is written to disk.
func Restore(ctx context.Context, st Store, o RestoreOptions) (*RestoreResult, error) {
	m, err := ReadManifest(ctx, st, o.ID)
	if err != nil {
		return nil, err
	}
	if len(o.Identities) == 0 {
		return nil, errors.New("restore: no identity to decrypt with")
	}
	progress := o.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	res := &RestoreResult{Manifest: m}
	start := time.Now()

	tgt, err := inspectTarget(ctx, o.TargetURL, o.Clean, o.Create)
	if err != nil {
		return nil, err
	}
	pgRestore, err := FindBinary(o.PGBinDir, "pg_restore", tgt.major)
	if err != nil {
		return nil, err
	}
	obj, err := openObject(ctx, st, m, o.Identities, func(d int64) { progress("download", d, m.StoredBytes) })
	if err != nil {
		return nil, err
	}
	defer obj.close()
	staging, err := tgt.createStaging(ctx, o.ID)
	if err != nil {
		return nil, err
	}
	defer staging.dropUnlessPromoted()

	r := &restorer{pgRestore: pgRestore, url: staging.url, jobs: max(o.Jobs, 1), noOwner: o.NoOwner, noPrivileges: o.NoPrivileges}
	toc, err := r.streamData(ctx, obj.plain)
	if verr := obj.verify(); verr != nil {
		return nil, fmt.Errorf("restore %s: %w; nothing was restored", o.ID, verr)
	}
	if err != nil {
		return nil, fmt.Errorf("restore %s: %w; nothing was restored", o.ID, err)
	}
	res.Download = time.Since(start)

	progress("restore", m.DumpBytes, m.DumpBytes)
	var wg sync.WaitGroup
	var postErr, fpErr error
	wg.Go(func() {
		postErr = r.postData(ctx, toc)
		res.Restore = time.Since(start)
	})
	wg.Go(func() {
		res.Tables, fpErr = fingerprintDB(ctx, staging.url, fingerprintConns(r.jobs), splitBlocks)
		res.Verify = time.Since(start)
	})
	wg.Wait()
	if postErr != nil {
		return nil, fmt.Errorf("restore %s: %w; nothing was restored", o.ID, postErr)
	}
	if fpErr != nil {
		return nil, fmt.Errorf("restore %s: %w; nothing was restored", o.ID, fpErr)
	}
	if res.Mismatches = Compare(m.Tables, res.Tables); len(res.Mismatches) > 0 {
		return res, fmt.Errorf("restore %s: %w: %s; nothing was restored", o.ID, ErrMismatch, strings.Join(res.Mismatches, "; "))
	}
	if err := tgt.promote(ctx, staging); err != nil {
		return nil, err
	}
	return res, nil
}

// fingerprintConns is how many connections verify a restore: the jobs, and at least two, so
// that a large table's ranges are read at once even when pg_restore runs one job.
func fingerprintConns(jobs int) int { return max(jobs, 2) }

// object is a backup object being read: the ciphertext is counted and hashed as it passes,
// and plain is the decrypted, decompressed dump.
type object struct {
	m      *Manifest
	body   io.ReadCloser
	cipher *progressReader
	hash   hash.Hash
	zr     *zstd.Decoder
	plain  io.Reader
}

// openObject starts the download and reads the age header, so that a wrong identity is
// refused before anything is created.
func openObject(ctx context.Context, st Store, m *Manifest, ids []age.Identity, progress func(int64)) (*object, error) {
	out, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(m.Object)})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("restore %s: the object %s is missing; nothing was restored", m.ID, m.Object)
		}
		return nil, fmt.Errorf("restore %s: download: %w", m.ID, err)
	}
	o := &object{m: m, body: out.Body, hash: sha256.New()}
	o.cipher = &progressReader{r: io.TeeReader(out.Body, o.hash), fn: progress}
	plain, err := age.Decrypt(o.cipher, ids...)
	if err != nil {
		defer o.close()
		if verr := o.verify(); verr != nil {
			return nil, fmt.Errorf("restore %s: %w; nothing was restored", m.ID, verr)
		}
		return nil, fmt.Errorf("restore %s: cannot decrypt with this identity (%v); nothing was restored", m.ID, err)
	}
	if o.zr, err = zstd.NewReader(plain, zstd.WithDecoderConcurrency(2)); err != nil {
		o.close()
		return nil, fmt.Errorf("restore %s: zstd: %w", m.ID, err)
	}
	o.plain = o.zr
	return o, nil
}

// verify reads what is left of the object (the plaintext first, so age authenticates its
// last chunk) and checks its size and SHA-256 against the manifest.
func (o *object) verify() error {
	if o.zr != nil {
		_, _ = io.Copy(io.Discard, o.zr)
	}
	if _, err := io.Copy(io.Discard, o.cipher); err != nil && o.cipher.n == o.m.StoredBytes {
		return fmt.Errorf("download: %w", err)
	}
	if o.cipher.n != o.m.StoredBytes {
		return fmt.Errorf("object is %d bytes, manifest says %d: truncated or replaced", o.cipher.n, o.m.StoredBytes)
	}
	if sum := hex.EncodeToString(o.hash.Sum(nil)); sum != o.m.SHA256 {
		return fmt.Errorf("SHA-256 %s does not match the manifest's %s: the object is corrupted or tampered with", sum, o.m.SHA256)
	}
	return nil
}

func (o *object) close() {
	if o.zr != nil {
		o.zr.Close()
	}
	_ = o.body.Close()
}

// restorer runs pg_restore into one database.
type restorer struct {
	pgRestore string
	url       string
	jobs      int
	// noOwner and noPrivileges are RestoreOptions.NoOwner and NoPrivileges.
	noOwner, noPrivileges bool
}

// streamData restores from the stream: the pre-data and data sections, reading the archive
// in order. It returns the archive's header and table of contents for postData; when the
// archive's layout is not one readTOC knows, everything is restored here and it returns nil.
func (r *restorer) streamData(ctx context.Context, plain io.Reader) ([]byte, error) {
	br := bufio.NewReaderSize(plain, 1<<20)
	toc, err := readTOC(br)
	if err != nil {
		// Restore every section from the stream, in one job.
		return nil, r.run(ctx, io.MultiReader(bytes.NewReader(toc), br), nil)
	}
	return toc, r.run(ctx, io.MultiReader(bytes.NewReader(toc), br), nil, "--section=pre-data", "--section=data")
}

// postData builds indexes and constraints with pg_restore --jobs from the table of contents
// alone, held in an anonymous memory file (memfd): parallel pg_restore needs a file it can
// reopen and seek, and the post-data section reads no table data.
func (r *restorer) postData(ctx context.Context, toc []byte) error {
	if toc == nil {
		return nil
	}
	fd, err := unix.MemfdCreate("pg-restore-toc", unix.MFD_CLOEXEC)
	if err != nil {
		return fmt.Errorf("memory file for the table of contents: %w", err)
	}
	f := os.NewFile(uintptr(fd), "pg-restore-toc")
	defer f.Close()
	if _, err := f.Write(toc); err != nil {
		return fmt.Errorf("memory file for the table of contents: %w", err)
	}
	// The child gets the file as descriptor 3 and opens it by path.
	return r.run(ctx, nil, []*os.File{f}, "--section=post-data", "--jobs="+strconv.Itoa(r.jobs), "/dev/fd/3")
}

func (r *restorer) run(ctx context.Context, stdin io.Reader, files []*os.File, extra ...string) error {
	args, env, err := pgArgs(r.url)
	if err != nil {
		return err
	}
	args = append(args, "--format=custom", "--exit-on-error")
	switch {
	case r.noOwner:
		args = append(args, "--no-owner", "--no-privileges")
	case r.noPrivileges:
		args = append(args, "--no-privileges")
	}
	args = append(args, extra...)
	cmd := exec.CommandContext(ctx, r.pgRestore, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	cmd.ExtraFiles = files
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 8 << 10}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pg_restore failed: %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// target is the database a restore is for, inspected before anything is written.
type target struct {
	url, name string
	// adminURL is the server's maintenance database, where databases are created.
	adminURL string
	major    int
	exists   bool
	// owner, encoding, collate and ctype are the existing target's, given to the staging
	// database.
	owner, encoding, collate, ctype string
}

// inspectTarget checks the target: reachable, and empty unless clean; missing only with
// create.
func inspectTarget(ctx context.Context, targetURL string, clean, create bool) (*target, error) {
	name, err := urlDatabase(targetURL)
	if err != nil {
		return nil, err
	}
	t := &target{url: targetURL, name: name, adminURL: withDatabase(targetURL, "postgres")}
	conn, err := pgx.Connect(ctx, t.adminURL)
	if err != nil {
		return nil, fmt.Errorf("restore: connect to the target server: %w", err)
	}
	defer conn.Close(context.Background())
	if t.major, err = serverMajor(ctx, conn); err != nil {
		return nil, err
	}
	err = conn.QueryRow(ctx, `SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype
		FROM pg_database WHERE datname = $1`, name).Scan(&t.owner, &t.encoding, &t.collate, &t.ctype)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		if !create {
			return nil, fmt.Errorf("restore: the target database %q does not exist; create it or pass --create", name)
		}
		return t, nil
	case err != nil:
		return nil, fmt.Errorf("restore: inspect the target: %w", err)
	}
	t.exists = true
	n, err := relationCount(ctx, targetURL)
	if err != nil {
		return nil, err
	}
	if n > 0 && !clean {
		return nil, fmt.Errorf("restore: the target database is not empty (%d relations); restore into a new database or pass --clean", n)
	}
	return t, nil
}

// checkTarget checks a database a part is restored into in place (Temporal's): reachable,
// and empty unless clean. It returns the server's major version.
func checkTarget(ctx context.Context, targetURL string, clean bool) (int, error) {
	conn, err := pgx.Connect(ctx, targetURL)
	if err != nil {
		return 0, fmt.Errorf("restore: connect to the target: %w", err)
	}
	major, err := serverMajor(ctx, conn)
	_ = conn.Close(context.Background())
	if err != nil {
		return 0, err
	}
	n, err := relationCount(ctx, targetURL)
	if err != nil {
		return 0, err
	}
	if n > 0 && !clean {
		return 0, fmt.Errorf("restore: the target database is not empty (%d relations); restore into a new database or pass --clean", n)
	}
	return major, nil
}

func relationCount(ctx context.Context, dbURL string) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("restore: connect to the target: %w", err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, `
		SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("restore: inspect the target: %w", err)
	}
	return n, nil
}

// stagingDB is the database a restore writes into before it takes the target's place.
type stagingDB struct {
	t         *target
	name, url string
	promoted  bool
}

// stagingName is the staging database of a restore of backup id into target: stable, so a
// retry after a crash replaces what the crashed attempt left.
func stagingName(target, id string) string {
	sum := sha256.Sum256([]byte(target + "\x00" + id))
	suffix := "_restoring_" + hex.EncodeToString(sum[:4])
	if len(target) > 63-len(suffix) {
		target = target[:63-len(suffix)]
	}
	return target + suffix
}

func (t *target) createStaging(ctx context.Context, id string) (*stagingDB, error) {
	s := &stagingDB{t: t, name: stagingName(t.name, id)}
	s.url = withDatabase(t.url, s.name)
	create := "CREATE DATABASE " + pgx.Identifier{s.name}.Sanitize() + " TEMPLATE template0"
	if t.exists {
		create += " OWNER " + pgx.Identifier{t.owner}.Sanitize() + " ENCODING " + quoteLiteral(t.encoding) +
			" LC_COLLATE " + quoteLiteral(t.collate) + " LC_CTYPE " + quoteLiteral(t.ctype)
	}
	if err := t.admin(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{s.name}.Sanitize()+" WITH (FORCE)", create); err != nil {
		return nil, fmt.Errorf("restore: create the staging database %s (the restoring role needs CREATEDB): %w", s.name, err)
	}
	if t.exists {
		if err := t.copyDatabaseSettings(ctx, s.name); err != nil {
			s.dropUnlessPromoted()
			return nil, fmt.Errorf("restore: give the staging database %s the target's privileges and settings: %w", s.name, err)
		}
	}
	return s, nil
}

// copyDatabaseSettings gives database to the target's database-level privileges (who may
// connect: the role bootstrap revokes PUBLIC's) and its ALTER DATABASE ... SET settings, which
// a dump without --create does not hold and which would be lost when the staging database
// takes the target's place.
func (t *target) copyDatabaseSettings(ctx context.Context, database string) error {
	conn, err := pgx.Connect(ctx, t.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	to := pgx.Identifier{database}.Sanitize()
	var custom bool
	if err := conn.QueryRow(ctx, `SELECT datacl IS NOT NULL FROM pg_database WHERE datname = $1`, t.name).Scan(&custom); err != nil {
		return err
	}
	var stmts []string
	if custom {
		stmts = append(stmts, "REVOKE ALL ON DATABASE "+to+" FROM PUBLIC")
		rows, _ := conn.Query(ctx, `
			SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
			       a.privilege_type, a.is_grantable
			FROM pg_database d, aclexplode(d.datacl) a
			WHERE d.datname = $1 AND a.grantee <> d.datdba`, t.name)
		var grantee, privilege string
		var grantable bool
		if _, err := pgx.ForEachRow(rows, []any{&grantee, &privilege, &grantable}, func() error {
			stmt := "GRANT " + privilege + " ON DATABASE " + to + " TO " + grantee
			if grantable {
				stmt += " WITH GRANT OPTION"
			}
			stmts = append(stmts, stmt)
			return nil
		}); err != nil {
			return err
		}
	}
	rows, _ := conn.Query(ctx, `
		SELECT CASE WHEN s.setrole = 0 THEN '' ELSE quote_ident(pg_get_userbyid(s.setrole)) END, c
		FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
		WHERE d.datname = $1`, t.name)
	var role, setting string
	if _, err := pgx.ForEachRow(rows, []any{&role, &setting}, func() error {
		name, value, _ := strings.Cut(setting, "=")
		stmt := "ALTER DATABASE " + to + " SET " + pgx.Identifier{name}.Sanitize() + " = " + quoteLiteral(value)
		if role != "" {
			stmt = "ALTER ROLE " + role + " IN DATABASE " + to + " SET " + pgx.Identifier{name}.Sanitize() + " = " + quoteLiteral(value)
		}
		stmts = append(stmts, stmt)
		return nil
	}); err != nil {
		return err
	}
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	return nil
}

// dropUnlessPromoted drops the staging database of a restore that failed.
func (s *stagingDB) dropUnlessPromoted() {
	if s.promoted {
		return
	}
	_ = s.t.admin(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{s.name}.Sanitize()+" WITH (FORCE)")
}

// promote puts the verified staging database in the target's place: the target (empty, or
// replaced with --clean) is dropped and the staging database renamed to its name.
func (t *target) promote(ctx context.Context, s *stagingDB) error {
	stmts := []string{"ALTER DATABASE " + pgx.Identifier{s.name}.Sanitize() + " RENAME TO " + pgx.Identifier{t.name}.Sanitize()}
	if t.exists {
		stmts = append([]string{"DROP DATABASE " + pgx.Identifier{t.name}.Sanitize() + " WITH (FORCE)"}, stmts...)
	}
	if err := t.admin(ctx, stmts...); err != nil {
		return fmt.Errorf("restore: put the verified database %s in place of %s: %w", s.name, t.name, err)
	}
	s.promoted = true
	return nil
}

func (t *target) admin(ctx context.Context, stmts ...string) error {
	conn, err := pgx.Connect(ctx, t.adminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, q := range stmts {
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// urlDatabase is the database a postgres:// URL names.
func urlDatabase(dbURL string) (string, error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "", errors.New("restore: the target must be a postgres:// URL")
	}
	name := strings.TrimPrefix(u.Path, "/")
	if name == "" {
		return "", errors.New("restore: the target URL names no database")
	}
	return name, nil
}

// withDatabase is dbURL naming another database on the same server.
func withDatabase(dbURL, name string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return dbURL
	}
	u.Path = "/" + name
	u.RawPath = ""
	return u.String()
}

type progressReader struct {
	r    io.Reader
	n    int64
	fn   func(int64)
	last time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.n += int64(n)
	if now := time.Now(); err != nil || now.Sub(p.last) > 100*time.Millisecond {
		p.last = now
		p.fn(p.n)
	}
	return n, err
}
