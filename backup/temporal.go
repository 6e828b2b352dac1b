package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
	"modernc.org/sqlite"
)

// Kinds of parts.
const (
	// PartPostgres is a pg_dump (custom format) of one of Temporal's PostgreSQL databases.
	PartPostgres = "pg_dump"
	// PartSQLite is a copy of the embedded dev server's SQLite file, taken with SQLite's online
	// backup API.
	PartSQLite = "sqlite"
)

// TemporalSource is one of Temporal's databases to back up: a PostgreSQL database
// (TEMPORAL_BACKUP_DATABASE_URLS in production) or the embedded dev server's SQLite file.
type TemporalSource struct {
	DatabaseURL string
	SQLiteFile  string
}

// Part is a further object of a backup (Temporal's state), zstd-compressed and encrypted to
// the same recipients as the application's dump.
type Part struct {
	// Name is the database's name (temporal, temporal_visibility) or "temporal-sqlite".
	Name        string `json:"name"`
	Kind        string `json:"kind"`
	Object      string `json:"object"`
	Bytes       int64  `json:"bytes"`
	StoredBytes int64  `json:"stored_bytes"`
	SHA256      string `json:"sha256"`
}

// PartKey is the key of a backup's part.
func (s Store) PartKey(id, name, kind string) string {
	ext := "dump"
	if kind == PartSQLite {
		ext = "db"
	}
	return s.prefix() + id + ".temporal-" + name + "." + ext + ".zst.age"
}

// backupTemporal stores each of o.Temporal as a part of the backup.
func backupTemporal(ctx context.Context, st Store, o Options, recipients []age.Recipient) ([]Part, error) {
	var parts []Part
	for _, src := range o.Temporal {
		var p Part
		var err error
		switch {
		case src.SQLiteFile != "":
			p, err = backupSQLite(ctx, st, o.ID, src.SQLiteFile, recipients)
		case src.DatabaseURL != "":
			p, err = backupTemporalPostgres(ctx, st, o, src.DatabaseURL, recipients)
		default:
			err = errors.New("backup: a Temporal source names neither a database nor a file")
		}
		if err != nil {
			return nil, err
		}
		parts = append(parts, p)
	}
	return parts, nil
}

// backupSQLite copies the live SQLite file with the online backup API (consistent while the
// server writes) into a private temporary file, then stores that.
func backupSQLite(ctx context.Context, st Store, id, file string, recipients []age.Recipient) (Part, error) {
	tmp, err := os.MkdirTemp("", "temporal-backup-")
	if err != nil {
		return Part{}, err
	}
	defer os.RemoveAll(tmp)
	copyPath := filepath.Join(tmp, "temporal.db")
	if err := CopySQLite(ctx, file, copyPath); err != nil {
		return Part{}, err
	}
	f, err := os.Open(copyPath)
	if err != nil {
		return Part{}, err
	}
	defer f.Close()
	p := Part{Name: "temporal-sqlite", Kind: PartSQLite}
	p.Object = st.PartKey(id, p.Name, p.Kind)
	return p, uploadPart(ctx, st, &p, f, recipients)
}

// CopySQLite copies the SQLite database src into dst (which must not exist) with SQLite's
// online backup API, through the same driver the embedded Temporal server uses.
func CopySQLite(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("temporal state file: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("%s already exists; remove it or restore elsewhere", dst)
	}
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro")
	if err != nil {
		return fmt.Errorf("temporal state file: %w", err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("temporal state file %s: %w", src, err)
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		b, ok := dc.(interface {
			NewBackup(string) (*sqlite.Backup, error)
		})
		if !ok {
			return errors.New("the sqlite driver has no online backup")
		}
		bk, err := b.NewBackup(dst)
		if err != nil {
			return fmt.Errorf("online backup of %s: %w", src, err)
		}
		for {
			more, err := bk.Step(1024)
			if err != nil {
				_ = bk.Finish()
				return fmt.Errorf("online backup of %s: %w", src, err)
			}
			if !more {
				break
			}
			if ctx.Err() != nil {
				_ = bk.Finish()
				return ctx.Err()
			}
		}
		return bk.Finish()
	})
}

// backupTemporalPostgres streams pg_dump of one Temporal database into a part.
func backupTemporalPostgres(ctx context.Context, st Store, o Options, dbURL string, recipients []age.Recipient) (Part, error) {
	u, err := url.Parse(dbURL)
	if err != nil || strings.Trim(u.Path, "/") == "" {
		return Part{}, errors.New("backup: TEMPORAL_BACKUP_DATABASE_URLS: each must be a postgres:// URL naming a database")
	}
	p := Part{Name: strings.Trim(u.Path, "/"), Kind: PartPostgres}
	p.Object = st.PartKey(o.ID, p.Name, p.Kind)
	major, err := majorOf(ctx, dbURL)
	if err != nil {
		return Part{}, err
	}
	pgDump, err := FindBinary(o.PGBinDir, "pg_dump", major)
	if err != nil {
		return Part{}, err
	}
	args, env, err := pgArgs(dbURL)
	if err != nil {
		return Part{}, err
	}
	dumpCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(dumpCtx, pgDump, append([]string{"--format=custom", "--compress=0"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 8 << 10}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return Part{}, err
	}
	if err := cmd.Start(); err != nil {
		return Part{}, fmt.Errorf("backup: start pg_dump of %s: %w", p.Name, err)
	}
	upErr := uploadPart(ctx, st, &p, out, recipients)
	if upErr != nil {
		cancel()
	}
	if err := cmd.Wait(); err != nil && upErr == nil {
		_, _ = st.S3.DeleteObject(context.WithoutCancel(ctx), &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(p.Object)})
		return Part{}, fmt.Errorf("backup: pg_dump of %s failed: %v: %s", p.Name, err, strings.TrimSpace(stderr.String()))
	}
	return p, upErr
}

// uploadPart streams src through zstd and age into the part's object, filling in its sizes
// and SHA-256.
func uploadPart(ctx context.Context, st Store, p *Part, src io.Reader, recipients []age.Recipient) error {
	if err := abortUploads(ctx, st, p.Object); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	hash := sha256.New()
	stored := &countWriter{w: io.MultiWriter(pw, hash)}
	done := make(chan error, 1)
	go func() {
		_, err := transfermanager.New(st.S3, func(o *transfermanager.Options) { o.Concurrency = 2 }).UploadObject(ctx,
			&transfermanager.UploadObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(p.Object), Body: pr,
				ContentType: aws.String("application/octet-stream"), StorageClass: tmtypes.StorageClass(st.StorageClass)})
		pr.CloseWithError(err)
		done <- err
	}()
	err := func() error {
		aw, err := age.Encrypt(stored, recipients...)
		if err != nil {
			return err
		}
		zw, err := zstd.NewWriter(aw)
		if err != nil {
			return err
		}
		if p.Bytes, err = io.Copy(zw, src); err != nil {
			return err
		}
		if err := zw.Close(); err != nil {
			return err
		}
		return aw.Close()
	}()
	pw.CloseWithError(err)
	upErr := <-done
	if err == nil {
		err = upErr
	}
	if err != nil {
		_ = abortUploads(context.WithoutCancel(ctx), st, p.Object)
		return fmt.Errorf("backup: store %s: %w", p.Name, err)
	}
	p.StoredBytes = stored.n.Load()
	p.SHA256 = hex.EncodeToString(hash.Sum(nil))
	return nil
}

// OpenPart downloads a part, checks its size and SHA-256 against the manifest, and returns
// its decrypted, decompressed content. The ciphertext is held in a temporary file in dir
// while it is verified; close the reader to remove it.
func OpenPart(ctx context.Context, st Store, p Part, ids []age.Identity, dir string) (io.ReadCloser, error) {
	f, err := os.CreateTemp(dir, "restore-part-*.age")
	if err != nil {
		return nil, err
	}
	cleanup := func() { f.Close(); os.Remove(f.Name()) }
	obj, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(p.Object)})
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("restore: part %s: the object %s is missing or unreadable: %w", p.Name, p.Object, err)
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), obj.Body)
	obj.Body.Close()
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("restore: part %s: download: %w", p.Name, err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != p.StoredBytes || sum != p.SHA256 {
		cleanup()
		return nil, fmt.Errorf("restore: part %s does not match the manifest (size or SHA-256): corrupted or tampered with; nothing was restored", p.Name)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		cleanup()
		return nil, err
	}
	plain, err := age.Decrypt(f, ids...)
	if err != nil {
		cleanup()
		return nil, fmt.Errorf("restore: part %s: cannot decrypt with this identity (%v); nothing was restored", p.Name, err)
	}
	zr, err := zstd.NewReader(plain)
	if err != nil {
		cleanup()
		return nil, err
	}
	return readCloser{Reader: zr, close: func() { zr.Close(); cleanup() }}, nil
}

type readCloser struct {
	io.Reader
	close func()
}

func (r readCloser) Close() error { r.close(); return nil }

// RestorePartFile writes a SQLite part to path, which must not exist yet.
func RestorePartFile(ctx context.Context, st Store, p Part, ids []age.Identity, path string) error {
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("restore: %s already exists: stop the Temporal server and move it away first", path)
	}
	r, err := OpenPart(ctx, st, p, ids, filepath.Dir(path))
	if err != nil {
		return err
	}
	defer r.Close()
	tmp := path + ".restoring"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("restore: part %s: %w", p.Name, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// RestorePartPostgres restores a pg_dump part into the database at targetURL (which must
// exist and be empty), keeping the owners the source had.
func RestorePartPostgres(ctx context.Context, st Store, p Part, ids []age.Identity, targetURL, pgBinDir string) error {
	major, err := checkTarget(ctx, targetURL, false)
	if err != nil {
		return err
	}
	pgRestore, err := FindBinary(pgBinDir, "pg_restore", major)
	if err != nil {
		return err
	}
	r, err := OpenPart(ctx, st, p, ids, "")
	if err != nil {
		return err
	}
	defer r.Close()
	args, env, err := pgArgs(targetURL)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, pgRestore, append(args, "--format=custom", "--exit-on-error")...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 8 << 10}
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("restore: part %s: pg_restore failed: %v: %s", p.Name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

func majorOf(ctx context.Context, dbURL string) (int, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return 0, fmt.Errorf("backup: connect to %s: %w", redactURL(dbURL), err)
	}
	defer conn.Close(context.Background())
	return serverMajor(ctx, conn)
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(database)"
	}
	return u.Redacted()
}
