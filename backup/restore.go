package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
)

// RestoreOptions configure one restore.
type RestoreOptions struct {
	// ID is the backup to restore.
	ID string
	// TargetURL is the database to restore into; it must exist and be empty unless Clean.
	TargetURL string
	// Identities decrypt the backup (age X25519 identities or a scrypt identity).
	Identities []age.Identity
	// Clean lets the restore go into a non-empty database (pg_restore --clean --if-exists).
	Clean bool
	// NoOwner restores every object as the restoring user instead of the owners the source
	// had (pg_restore --no-owner --no-privileges); only for backups of databases whose
	// roles the target will never have.
	NoOwner bool
	// NoPrivileges skips the dump's GRANTs and default privileges (pg_restore
	// --no-privileges): a fire drill restores as a role that is a member of none of the
	// orchestrator's roles and could not replay them.
	NoPrivileges bool
	// Jobs > 1 decrypts to a second local file and runs pg_restore --jobs; otherwise the
	// decrypted dump streams into pg_restore's stdin.
	Jobs int
	// PGBinDir holds pg_restore; empty means /usr/lib/postgresql/<major>/bin, then PATH.
	PGBinDir string
	// TempDir holds the downloaded ciphertext while it is verified; empty means os.TempDir.
	TempDir string
	// Progress, when set, is called with the phase and the bytes done of total.
	Progress func(phase string, done, total int64)
}

// RestoreResult reports a restore.
type RestoreResult struct {
	Manifest   *Manifest
	Download   time.Duration
	Restore    time.Duration
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

// Restore downloads a backup to a temporary file while hashing it, checks size and SHA-256
// against the manifest and that the identity opens it, and only then writes to the target:
// pg_restore from the decrypted, decompressed stream. Last it compares the restored data
// with the manifest's fingerprint (ErrMismatch when they differ).
func Restore(ctx context.Context, st Store, o RestoreOptions) (*RestoreResult, error) {
	progress := o.Progress
	if progress == nil {
		progress = func(string, int64, int64) {}
	}
	m, err := ReadManifest(ctx, st, o.ID)
	if err != nil {
		return nil, err
	}
	res := &RestoreResult{Manifest: m}
	if len(o.Identities) == 0 {
		return nil, errors.New("restore: no identity to decrypt with")
	}

	// The target must be reachable and (unless Clean) empty before anything is downloaded.
	major, err := checkTarget(ctx, o.TargetURL, o.Clean)
	if err != nil {
		return nil, err
	}
	pgRestore, err := FindBinary(o.PGBinDir, "pg_restore", major)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	f, err := os.CreateTemp(o.TempDir, "restore-"+o.ID+"-*.age")
	if err != nil {
		return nil, fmt.Errorf("restore: temporary file: %w", err)
	}
	defer func() { f.Close(); os.Remove(f.Name()) }()
	obj, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(m.Object)})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("restore %s: the object %s is missing", o.ID, m.Object)
		}
		return nil, fmt.Errorf("restore %s: download: %w", o.ID, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), &progressReader{r: obj.Body, fn: func(d int64) { progress("download", d, m.StoredBytes) }})
	obj.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("restore %s: download: %w", o.ID, err)
	}
	if n != m.StoredBytes {
		return nil, fmt.Errorf("restore %s: object is %d bytes, manifest says %d: truncated or replaced; nothing was restored", o.ID, n, m.StoredBytes)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != m.SHA256 {
		return nil, fmt.Errorf("restore %s: SHA-256 %s does not match the manifest's %s: the object is corrupted or tampered with; nothing was restored", o.ID, sum, m.SHA256)
	}
	res.Download = time.Since(start)

	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	plain, err := age.Decrypt(f, o.Identities...)
	if err != nil {
		return nil, fmt.Errorf("restore %s: cannot decrypt with this identity (%v); nothing was restored", o.ID, err)
	}
	zr, err := zstd.NewReader(plain, zstd.WithDecoderConcurrency(2))
	if err != nil {
		return nil, fmt.Errorf("restore %s: zstd: %w", o.ID, err)
	}
	defer zr.Close()
	dump := &progressReader{r: zr, fn: func(d int64) { progress("restore", d, m.DumpBytes) }}

	start = time.Now()
	args, env, err := pgArgs(o.TargetURL)
	if err != nil {
		return nil, err
	}
	args = append(args, "--format=custom", "--exit-on-error")
	if o.NoOwner {
		args = append(args, "--no-owner", "--no-privileges")
	}
	if o.Clean {
		args = append(args, "--clean", "--if-exists")
	}
	if o.NoPrivileges {
		args = append(args, "--no-privileges")
	}
	var stdin io.Reader = dump
	if o.Jobs > 1 {
		// pg_restore --jobs needs a seekable file.
		plainFile, err := os.CreateTemp(o.TempDir, "restore-"+o.ID+"-*.dump")
		if err != nil {
			return nil, fmt.Errorf("restore: temporary file: %w", err)
		}
		defer func() { plainFile.Close(); os.Remove(plainFile.Name()) }()
		if _, err := io.Copy(plainFile, dump); err != nil {
			return nil, fmt.Errorf("restore %s: decrypt: %w", o.ID, err)
		}
		if err := plainFile.Close(); err != nil {
			return nil, err
		}
		args = append(args, "--jobs="+strconv.Itoa(o.Jobs), plainFile.Name())
		stdin = nil
	}
	cmd := exec.CommandContext(ctx, pgRestore, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = stdin
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 8 << 10}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("restore %s: pg_restore failed: %v: %s", o.ID, err, strings.TrimSpace(stderr.String()))
	}
	res.Restore = time.Since(start)

	start = time.Now()
	got, err := Fingerprint(ctx, o.TargetURL)
	if err != nil {
		return nil, err
	}
	res.Verify = time.Since(start)
	res.Tables = got
	res.Mismatches = Compare(m.Tables, got)
	if len(res.Mismatches) > 0 {
		return res, fmt.Errorf("restore %s: %w: %s", o.ID, ErrMismatch, strings.Join(res.Mismatches, "; "))
	}
	return res, nil
}

// checkTarget connects to the target and refuses a database holding tables unless clean.
func checkTarget(ctx context.Context, targetURL string, clean bool) (int, error) {
	conn, err := pgx.Connect(ctx, targetURL)
	if err != nil {
		return 0, fmt.Errorf("restore: connect to the target: %w", err)
	}
	defer conn.Close(context.Background())
	major, err := serverMajor(ctx, conn)
	if err != nil {
		return 0, err
	}
	var n int
	if err := conn.QueryRow(ctx, `
		SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S')
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("restore: inspect the target: %w", err)
	}
	if n > 0 && !clean {
		return 0, fmt.Errorf("restore: the target database is not empty (%d relations); restore into a new database or pass --clean", n)
	}
	return major, nil
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
