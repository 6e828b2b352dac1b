// Package backup is the backup pipeline: pg_dump (custom format, its own compression off) from
// an exported snapshot, zstd, age encryption to X25519 recipients (or a scrypt passphrase), and
// an S3 multipart upload through the transfer manager, all streamed through an io.Pipe with
// bounded memory. A fingerprint of the data (per table: row count and content hash) comes from
// the same snapshot and goes into a manifest written last, next to the object. Restore
// downloads, verifies the SHA-256 against the manifest before touching the target, decrypts,
// decompresses, runs pg_restore and compares the restored data with the fingerprint.
package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/zstd"
)

// Format names the layers of a stored backup object, outermost last.
const Format = "pg_dump-custom+zstd+age"

// DefaultPrefix is the key prefix of backups in the bucket.
const DefaultPrefix = "backups/"

// Store is where backups live.
type Store struct {
	S3     *s3.Client
	Bucket string
	// Prefix is prepended to every key; empty means DefaultPrefix.
	Prefix string
	// PartSize is the multipart part size in bytes; zero is the transfer manager's default
	// (8 MiB). Memory held by an upload is about PartSize times Concurrency.
	PartSize int64
	// Concurrency is the number of parts uploaded at once; zero means 2.
	Concurrency int
	// StorageClass is the S3 storage class of uploaded objects (S3_STORAGE_CLASS, e.g.
	// STANDARD_IA); empty leaves it to the bucket (STANDARD).
	StorageClass string
}

func (s Store) prefix() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// ObjectKey is the key of a backup's encrypted dump.
func (s Store) ObjectKey(id string) string { return s.prefix() + id + ".dump.zst.age" }

// ManifestKey is the key of a backup's manifest.
func (s Store) ManifestKey(id string) string { return s.prefix() + id + ".manifest.json" }

// Table is one table's fingerprint: its row count and a content hash (an order-independent
// sum of a hash of each row's text form).
type Table struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
	Hash string `json:"hash"`
}

// ManifestVersion is the manifest format this binary writes and the newest it reads. Version
// 2 added Kind and Parts (Temporal's state); a manifest without a version is version 1.
const ManifestVersion = 2

// errBadManifest means a manifest is not valid JSON.
var errBadManifest = errors.New("manifest is not valid JSON")

// ErrNewerFormat means a manifest was written by a newer orchestrator than this one.
var ErrNewerFormat = errors.New("manifest format is newer than this orchestrator reads")

// Manifest describes a complete backup. It exists only when the object is complete.
type Manifest struct {
	ID            string    `json:"id"`
	Version       int       `json:"version,omitempty"`
	Kind          string    `json:"kind,omitempty"`
	Format        string    `json:"format"`
	Database      string    `json:"database"`
	ServerVersion string    `json:"server_version"`
	StartedAt     time.Time `json:"started_at"`
	FinishedAt    time.Time `json:"finished_at"`
	Object        string    `json:"object"`
	// DumpBytes is the size of pg_dump's output; CompressedBytes after zstd; StoredBytes the
	// ciphertext in S3.
	DumpBytes       int64    `json:"dump_bytes"`
	CompressedBytes int64    `json:"compressed_bytes"`
	StoredBytes     int64    `json:"stored_bytes"`
	SHA256          string   `json:"sha256"`
	Recipients      []string `json:"recipients"`
	Passphrase      bool     `json:"passphrase,omitempty"`
	Tables          []Table  `json:"tables"`
	// Parts are further objects of the same backup: Temporal's state.
	Parts []Part `json:"parts,omitempty"`
	// TreasuryAnchor is the treasury chain's newest head published on Stellar when the backup
	// ran: a restore's `treasury verify` can be held against it.
	TreasuryAnchor *TreasuryAnchor `json:"treasury_anchor,omitempty"`
}

// TreasuryAnchor is the newest anchor of the treasury's event chain (see contracts.Anchor).
type TreasuryAnchor struct {
	Account string    `json:"account"`
	Seq     int64     `json:"seq,omitempty"`
	Head    string    `json:"head,omitempty"`
	TxHash  string    `json:"tx_hash,omitempty"`
	At      time.Time `json:"at,omitzero"`
	// Error says why no anchor could be read (the backup itself does not depend on Horizon).
	Error string `json:"error,omitempty"`
}

// Options configure one backup.
type Options struct {
	// ID names the backup; the object and manifest keys derive from it. A retry with the same
	// id replaces an incomplete attempt.
	ID string
	// DatabaseURL is the database to back up.
	DatabaseURL string
	// PGBinDir holds pg_dump and pg_restore; empty means /usr/lib/postgresql/<major>/bin, then
	// PATH.
	PGBinDir string
	// Recipients are age X25519 public keys (age1...).
	Recipients []string
	// Passphrase switches to age's scrypt mode (then Recipients must be empty).
	Passphrase string
	// Progress, when set, is called with the ciphertext bytes written so far.
	Progress func(stored int64)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Kind is nightly or manual, recorded in the manifest so that the store alone describes
	// the backup.
	Kind string
	// Temporal are Temporal's databases, backed up after the application's as further
	// objects under the same manifest.
	Temporal []TemporalSource
	// TreasuryAnchor, when set, is recorded in the manifest.
	TreasuryAnchor *TreasuryAnchor
}

// ParseRecipients turns X25519 public keys into age recipients.
func ParseRecipients(keys []string, passphrase string) ([]age.Recipient, error) {
	if passphrase != "" {
		if len(keys) > 0 {
			return nil, errors.New("backup: recipients and a passphrase are exclusive")
		}
		r, err := age.NewScryptRecipient(passphrase)
		if err != nil {
			return nil, fmt.Errorf("backup: passphrase: %w", err)
		}
		return []age.Recipient{r}, nil
	}
	if len(keys) == 0 {
		return nil, errors.New("backup: no age recipient configured (BACKUP_RECIPIENTS or BACKUP_RECIPIENTS_FILE)")
	}
	var out []age.Recipient
	for _, k := range keys {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(k))
		if err != nil {
			return nil, fmt.Errorf("backup: recipient %q: %w", k, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadRecipientsFile reads age recipients, one a line (# comments and blank lines skipped).
func ReadRecipientsFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backup: recipients file: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, nil
}

// countWriter counts bytes written through it.
type countWriter struct {
	w       io.Writer
	n       atomic.Int64
	onWrite func(int64)
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	total := c.n.Add(int64(n))
	if c.onWrite != nil {
		c.onWrite(total)
	}
	return n, err
}

// Run makes one backup, in these steps: abort what an earlier attempt of the same id left;
// open a snapshot of the database and export it; start pg_dump on that snapshot and, at the
// same time on the exporting transaction, the fingerprint; stream the dump through zstd and
// age into a multipart upload; write the manifest last. On any failure the multipart upload
// is aborted and no manifest exists.
func Run(ctx context.Context, st Store, o Options) (*Manifest, error) {
	if o.ID == "" {
		return nil, errors.New("backup: no backup id")
	}
	now := o.Now
	if now == nil {
		now = time.Now
	}
	recipients, err := ParseRecipients(o.Recipients, o.Passphrase)
	if err != nil {
		return nil, err
	}
	m := &Manifest{ID: o.ID, Version: ManifestVersion, Kind: o.Kind, Format: Format, StartedAt: now().UTC(),
		Object: st.ObjectKey(o.ID), Recipients: o.Recipients, Passphrase: o.Passphrase != "", TreasuryAnchor: o.TreasuryAnchor}
	if m.Recipients == nil {
		m.Recipients = []string{}
	}
	// A worker killed mid-upload cannot abort its multipart upload: its retry does.
	if err := abortUploads(ctx, st, m.Object); err != nil {
		return nil, err
	}

	snap, err := openSnapshot(ctx, o.DatabaseURL)
	if err != nil {
		return nil, err
	}
	defer snap.close()
	m.Database, m.ServerVersion = snap.database, snap.serverVersion
	pgDump, err := FindBinary(o.PGBinDir, "pg_dump", snap.major)
	if err != nil {
		return nil, err
	}
	dump, err := startDump(ctx, pgDump, o.DatabaseURL, snap.name)
	if err != nil {
		return nil, err
	}
	fpCtx, cancelFingerprint := context.WithCancel(ctx)
	defer cancelFingerprint()
	fingerprint := snap.fingerprintAsync(fpCtx)
	up := startUpload(ctx, st, m.Object)

	sizes, streamErr := encryptStream(up.body, dump.stdout, recipients, o.Progress, defaultCompression())
	if err := dump.wait(streamErr != nil); streamErr == nil {
		streamErr = err
	}
	if streamErr != nil {
		cancelFingerprint()
	}
	tables, fpErr := fingerprint()
	upErr := up.finish(streamErr)
	switch {
	case streamErr != nil:
		return nil, streamErr
	case upErr != nil:
		return nil, fmt.Errorf("backup: upload to s3://%s/%s: %w", st.Bucket, m.Object, upErr)
	case fpErr != nil:
		_ = abortAndDelete(context.WithoutCancel(ctx), st, m.Object)
		return nil, fpErr
	}
	snap.close()

	m.Tables = tables
	m.DumpBytes, m.CompressedBytes, m.StoredBytes, m.SHA256 = sizes.dump, sizes.compressed, sizes.stored, sizes.sha256
	// Temporal's state, as further objects under the same manifest.
	if m.Parts, err = backupTemporal(ctx, st, o, recipients); err != nil {
		return nil, err
	}
	m.FinishedAt = now().UTC()
	if err := writeManifest(ctx, st, m); err != nil {
		return nil, err
	}
	return m, nil
}

// snapshot is a REPEATABLE READ transaction whose snapshot is exported for pg_dump.
type snapshot struct {
	conn                    *pgx.Conn
	tx                      pgx.Tx
	name                    string
	database, serverVersion string
	major                   int
}

func openSnapshot(ctx context.Context, dbURL string) (*snapshot, error) {
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		return nil, fmt.Errorf("backup: connect to the database: %w", err)
	}
	s := &snapshot{conn: conn}
	s.tx, err = conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("backup: begin snapshot: %w", err)
	}
	if err := s.tx.QueryRow(ctx, "SELECT pg_export_snapshot(), current_database(), current_setting('server_version')").
		Scan(&s.name, &s.database, &s.serverVersion); err != nil {
		s.close()
		return nil, fmt.Errorf("backup: export snapshot: %w", err)
	}
	if s.major, err = serverMajor(ctx, s.tx); err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// fingerprintAsync reads the fingerprint on the exporting transaction while pg_dump reads
// the same snapshot through its own connection; the returned function waits for it.
func (s *snapshot) fingerprintAsync(ctx context.Context) func() ([]Table, error) {
	type result struct {
		tables []Table
		err    error
	}
	done := make(chan result, 1)
	go func() {
		t, err := fingerprintTx(ctx, s.tx)
		done <- result{t, err}
	}()
	return func() ([]Table, error) { r := <-done; return r.tables, r.err }
}

func (s *snapshot) close() {
	if s.conn == nil {
		return
	}
	if s.tx != nil {
		_ = s.tx.Rollback(context.Background())
	}
	_ = s.conn.Close(context.Background())
	s.conn = nil
}

// dumpProcess is a running pg_dump writing the custom format, uncompressed, to stdout.
type dumpProcess struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	stdout io.Reader
	stderr *bytes.Buffer
}

func startDump(ctx context.Context, pgDump, dbURL, snapshot string) (*dumpProcess, error) {
	args, env, err := pgArgs(dbURL)
	if err != nil {
		return nil, err
	}
	dumpCtx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(dumpCtx, pgDump, append([]string{"--format=custom", "--compress=0", "--snapshot=" + snapshot}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	d := &dumpProcess{cmd: cmd, cancel: cancel, stderr: &bytes.Buffer{}}
	cmd.Stderr = &limitedBuffer{b: d.stderr, max: 8 << 10}
	if d.stdout, err = cmd.StdoutPipe(); err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("backup: start pg_dump: %w", err)
	}
	return d, nil
}

// wait reaps pg_dump, killing it first when the stream already failed.
func (d *dumpProcess) wait(kill bool) error {
	if kill {
		d.cancel()
	}
	defer d.cancel()
	if err := d.cmd.Wait(); err != nil {
		return fmt.Errorf("backup: pg_dump failed: %v: %s", err, strings.TrimSpace(d.stderr.String()))
	}
	return nil
}

// streamSizes are the sizes of each layer of one stream and the ciphertext's SHA-256.
type streamSizes struct {
	dump, compressed, stored int64
	sha256                   string
}

// compression is how a stream is compressed into zstd frames: by the zstd program (program
// and args, in a process of its own) or, when program is empty, in this process by
// klauspost/compress with opts. Either way the output is standard zstd.
type compression struct {
	program string
	args    []string
	opts    []zstd.EOption
}

// zstdArgs are the zstd program's: level 3 (its default) with 2 MiB jobs for its one worker
// thread. Its default jobs make it hold about 44 MB; 2 MiB jobs about 14 MB for the same CPU
// and a slightly smaller output (--single-thread: 6 MB, but 0.4 % larger; measured on the
// benchmark's dump).
var zstdArgs = []string{"-3", "-B2MiB"}

// defaultCompression is the zstd program when it is on PATH (the image installs it: in C it
// takes about half the CPU of the Go encoder for the same level and a slightly smaller
// output, and its memory is its own process's), else zstd in process.
func defaultCompression() compression {
	if p, err := exec.LookPath("zstd"); err == nil {
		return compression{program: p, args: zstdArgs}
	}
	return compression{opts: []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(runtime.GOMAXPROCS(0))}}
}

// encryptStream copies the dump through zstd and age into w, hashing and counting the
// ciphertext.
func encryptStream(w io.Writer, dump io.Reader, recipients []age.Recipient, progress func(int64), c compression) (streamSizes, error) {
	var s streamSizes
	hash := sha256.New()
	stored := &countWriter{w: io.MultiWriter(w, hash), onWrite: progress}
	ageW, err := age.Encrypt(stored, recipients...)
	if err != nil {
		return s, fmt.Errorf("backup: age: %w", err)
	}
	compressed := &countWriter{w: ageW}
	if c.program != "" {
		s.dump, err = compressProgram(compressed, dump, c)
	} else {
		s.dump, err = compressInProcess(compressed, dump, c)
	}
	if err != nil {
		return s, err
	}
	if err := ageW.Close(); err != nil {
		return s, fmt.Errorf("backup: age: %w", err)
	}
	s.compressed, s.stored, s.sha256 = compressed.n.Load(), stored.n.Load(), hex.EncodeToString(hash.Sum(nil))
	return s, nil
}

// compressInProcess compresses dump into w with klauspost/compress and returns the dump's
// size.
func compressInProcess(w io.Writer, dump io.Reader, c compression) (int64, error) {
	zw, err := zstd.NewWriter(w, c.opts...)
	if err != nil {
		return 0, fmt.Errorf("backup: zstd: %w", err)
	}
	n, err := io.Copy(zw, dump)
	if err != nil {
		zw.Close()
		return n, fmt.Errorf("backup: stream the dump: %w", err)
	}
	if err := zw.Close(); err != nil {
		return n, fmt.Errorf("backup: zstd: %w", err)
	}
	return n, nil
}

// compressProgram compresses dump into w with the zstd program, through pipes (nothing on
// disk), and returns the dump's size. When w fails the program is killed, which makes the
// copy into it fail too.
func compressProgram(w io.Writer, dump io.Reader, c compression) (int64, error) {
	ctx, kill := context.WithCancel(context.Background())
	defer kill()
	z := exec.CommandContext(ctx, c.program, append(append([]string{"-q", "-c"}, c.args...), "-")...)
	var stderr bytes.Buffer
	z.Stderr = &limitedBuffer{b: &stderr, max: 4 << 10}
	in, err := z.StdinPipe()
	if err != nil {
		return 0, err
	}
	out, err := z.StdoutPipe()
	if err != nil {
		return 0, err
	}
	if err := z.Start(); err != nil {
		return 0, fmt.Errorf("backup: start zstd: %w", err)
	}
	type fed struct {
		n   int64
		err error
	}
	feed := make(chan fed, 1)
	go func() {
		n, err := io.Copy(in, dump)
		if cerr := in.Close(); err == nil {
			err = cerr
		}
		feed <- fed{n, err}
	}()
	_, outErr := io.Copy(w, out)
	if outErr != nil {
		kill()
	}
	// Not waiting for the copy into the program when it failed: that copy may be waiting for
	// pg_dump, which the caller kills next.
	waitErr := z.Wait()
	switch {
	case outErr != nil:
		return 0, fmt.Errorf("backup: stream the dump: %w", outErr)
	case waitErr != nil:
		return 0, fmt.Errorf("backup: zstd failed: %v: %s", waitErr, strings.TrimSpace(stderr.String()))
	}
	// The program ended well, so it read its input to the end: the copy is over.
	f := <-feed
	if f.err != nil {
		return f.n, fmt.Errorf("backup: stream the dump: %w", f.err)
	}
	return f.n, nil
}

// upload is a multipart upload fed through a pipe.
type upload struct {
	ctx  context.Context
	st   Store
	key  string
	body *io.PipeWriter
	done chan error
}

func startUpload(ctx context.Context, st Store, key string) *upload {
	pr, pw := io.Pipe()
	u := &upload{ctx: ctx, st: st, key: key, body: pw, done: make(chan error, 1)}
	tm := transfermanager.New(st.S3, func(opt *transfermanager.Options) {
		if st.PartSize > 0 {
			opt.PartSizeBytes = st.PartSize
		}
		opt.Concurrency = st.Concurrency
		if opt.Concurrency == 0 {
			opt.Concurrency = 2
		}
	})
	go func() {
		_, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{
			Bucket: aws.String(st.Bucket), Key: aws.String(key), Body: pr,
			ContentType: aws.String("application/octet-stream"), StorageClass: tmtypes.StorageClass(st.StorageClass),
		})
		// Unblock the writer if the upload stopped early.
		pr.CloseWithError(err)
		u.done <- err
	}()
	return u
}

// finish ends the body (with streamErr, which makes the upload fail) and waits for the
// upload; whenever it did not complete, what it left behind is aborted.
func (u *upload) finish(streamErr error) error {
	if streamErr != nil {
		u.body.CloseWithError(streamErr)
	} else {
		u.body.Close()
	}
	err := <-u.done
	if streamErr != nil || err != nil {
		_ = abortUploads(context.WithoutCancel(u.ctx), u.st, u.key)
	}
	return err
}

// abortAndDelete removes an object whose backup cannot be completed.
func abortAndDelete(ctx context.Context, st Store, key string) error {
	if err := abortUploads(ctx, st, key); err != nil {
		return err
	}
	_, err := st.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(key)})
	return err
}

// writeManifest stores the manifest: from then on the backup is complete.
func writeManifest(ctx context.Context, st Store, m *Manifest) error {
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if _, err := st.S3.PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(st.Bucket), Key: aws.String(st.ManifestKey(m.ID)),
		Body: bytes.NewReader(body), ContentType: aws.String("application/json"),
	}); err != nil {
		return fmt.Errorf("backup: write manifest: %w", err)
	}
	return nil
}

// abortUploads aborts every unfinished multipart upload of key.
func abortUploads(ctx context.Context, st Store, key string) error {
	out, err := st.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket), Prefix: aws.String(key)})
	if noUploads(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: list unfinished uploads in s3://%s: %w", st.Bucket, err)
	}
	for _, u := range out.Uploads {
		if aws.ToString(u.Key) != key {
			continue
		}
		if _, err := st.S3.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(st.Bucket), Key: u.Key, UploadId: u.UploadId,
		}); err != nil {
			return fmt.Errorf("backup: abort unfinished upload of %s: %w", key, err)
		}
	}
	return nil
}

// Unfinished lists the unfinished multipart uploads under the store's prefix (for tests and
// operators: after a run there must be none).
func Unfinished(ctx context.Context, st Store) ([]types.MultipartUpload, error) {
	out, err := st.S3.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(st.Bucket), Prefix: aws.String(st.prefix())})
	if noUploads(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return out.Uploads, nil
}

// ErrNoManifest means the backup has no manifest: it is incomplete or does not exist.
var ErrNoManifest = errors.New("no manifest: the backup is incomplete or does not exist")

// ReadManifest reads a backup's manifest.
func ReadManifest(ctx context.Context, st Store, id string) (*Manifest, error) {
	out, err := st.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(st.ManifestKey(id))})
	if err != nil {
		if isNotFound(err) {
			return nil, fmt.Errorf("backup %s: %w", id, ErrNoManifest)
		}
		return nil, fmt.Errorf("backup %s: read manifest: %w", id, err)
	}
	defer out.Body.Close()
	var m Manifest
	if err := json.NewDecoder(io.LimitReader(out.Body, 16<<20)).Decode(&m); err != nil {
		return nil, fmt.Errorf("backup %s: %w: %w", id, errBadManifest, err)
	}
	if m.Version > ManifestVersion {
		return nil, fmt.Errorf("backup %s: %w (version %d; this one reads up to %d): upgrade orchestrator to restore it", id, ErrNewerFormat, m.Version, ManifestVersion)
	}
	return &m, nil
}

// Delete removes a backup: the manifest first (so it stops looking complete), then the
// objects.
func Delete(ctx context.Context, st Store, id string) error {
	keys := []string{st.ManifestKey(id), st.ObjectKey(id)}
	if m, err := ReadManifest(ctx, st, id); err == nil {
		for _, p := range m.Parts {
			keys = append(keys, p.Object)
		}
	}
	for _, k := range keys {
		if _, err := st.S3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(st.Bucket), Key: aws.String(k)}); err != nil && !isNotFound(err) {
			return fmt.Errorf("backup %s: delete %s: %w", id, k, err)
		}
	}
	return nil
}

// noUploads reports the answer some S3-compatible stores (gofakes3) give to a listing of
// multipart uploads when there are none.
func noUploads(err error) bool {
	var apiErr smithy.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode() == "NoSuchUpload"
}

func isNotFound(err error) bool {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var apiErr smithy.APIError
	return errors.As(err, &nsk) || errors.As(err, &nf) ||
		(errors.As(err, &apiErr) && (apiErr.ErrorCode() == "NoSuchKey" || apiErr.ErrorCode() == "NotFound"))
}

// FindBinary locates a PostgreSQL client program of the server's major version: binDir when
// set, else /usr/lib/postgresql/<major>/bin, else PATH.
func FindBinary(binDir, name string, major int) (string, error) {
	if binDir != "" {
		p := filepath.Join(binDir, name)
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("backup: %s not found in PG_BIN_DIR %s", name, binDir)
		}
		return p, nil
	}
	if major > 0 {
		p := filepath.Join("/usr/lib/postgresql", strconv.Itoa(major), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("backup: %s for PostgreSQL %d not found (set PG_BIN_DIR)", name, major)
	}
	return p, nil
}

func serverMajor(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var num string
	if err := q.QueryRow(ctx, "SELECT current_setting('server_version_num')").Scan(&num); err != nil {
		return 0, fmt.Errorf("backup: server version: %w", err)
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0, fmt.Errorf("backup: server version %q: %w", num, err)
	}
	return n / 10000, nil
}

// pgArgs turns a database URL into pg_dump/pg_restore arguments, keeping the password out of
// the command line (it goes into PGPASSWORD).
func pgArgs(dbURL string) (args, env []string, err error) {
	u, err := url.Parse(dbURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, nil, errors.New("backup: the database URL must be a postgres:// URL")
	}
	if u.User != nil {
		if p, ok := u.User.Password(); ok {
			env = append(env, "PGPASSWORD="+p)
			u.User = url.User(u.User.Username())
		}
	}
	return []string{"--dbname=" + u.String()}, env, nil
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		if len(p) > room {
			l.b.Write(p[:room])
		} else {
			l.b.Write(p)
		}
	}
	return len(p), nil
}

// Resolve finds a complete backup from the store alone (no catalog, so it works on a new
// server): ref is a backup id, or "latest" for the newest; a non-zero at picks the newest
// started at or before it.
func Resolve(ctx context.Context, st Store, ref string, at time.Time) (*Manifest, error) {
	if ref != "" && ref != "latest" {
		m, err := ReadManifest(ctx, st, ref)
		if err != nil {
			return nil, err
		}
		if !at.IsZero() && m.StartedAt.After(at) {
			return nil, fmt.Errorf("backup %s started at %s, after --at %s", ref, m.StartedAt.Format(time.RFC3339), at.Format(time.RFC3339))
		}
		return m, nil
	}
	l, err := Scan(ctx, st)
	if err != nil {
		return nil, err
	}
	if err := l.Err(); err != nil {
		// Which is the newest is unknown while a manifest cannot be read.
		return nil, fmt.Errorf("%w; name a backup with --backup <id>", err)
	}
	var best *Manifest
	for _, m := range l.Manifests {
		if !at.IsZero() && m.StartedAt.After(at) {
			continue
		}
		if best == nil || m.StartedAt.After(best.StartedAt) {
			best = m
		}
	}
	if best == nil {
		if at.IsZero() {
			return nil, fmt.Errorf("no complete backup in s3://%s/%s", st.Bucket, st.prefix())
		}
		return nil, fmt.Errorf("no complete backup at or before %s in s3://%s/%s", at.Format(time.RFC3339), st.Bucket, st.prefix())
	}
	return best, nil
}

// Listing is what the store holds: the manifests this binary reads, newest first, and the
// ids of those it cannot read (written by a newer orchestrator, or not valid JSON) with why.
type Listing struct {
	Manifests  []*Manifest
	Unreadable map[string]error
}

// Err names the unreadable manifests, or is nil.
func (l Listing) Err() error {
	if len(l.Unreadable) == 0 {
		return nil
	}
	ids := make([]string, 0, len(l.Unreadable))
	for id := range l.Unreadable {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return fmt.Errorf("%w: %d in the store: %w", ErrUnreadable, len(ids), l.Unreadable[ids[0]])
}

// ErrUnreadable means the store holds manifests this binary cannot read.
var ErrUnreadable = errors.New("manifests cannot be read")

// Scan reads every manifest in the store. The store, not the catalog, is the truth: this
// works on a new server and after the catalog is lost. A manifest that vanishes between the
// listing and the read (retention) is skipped; one that cannot be read is reported in
// Unreadable rather than hiding every other backup.
func Scan(ctx context.Context, st Store) (Listing, error) {
	l := Listing{Unreadable: map[string]error{}}
	p := s3.NewListObjectsV2Paginator(st.S3, &s3.ListObjectsV2Input{Bucket: aws.String(st.Bucket), Prefix: aws.String(st.prefix())})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return Listing{}, fmt.Errorf("backup: list s3://%s/%s: %w", st.Bucket, st.prefix(), err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			if !strings.HasSuffix(key, ".manifest.json") {
				continue
			}
			id := strings.TrimSuffix(strings.TrimPrefix(key, st.prefix()), ".manifest.json")
			m, err := ReadManifest(ctx, st, id)
			switch {
			case errors.Is(err, ErrNoManifest):
				continue
			case errors.Is(err, ErrNewerFormat) || errors.Is(err, errBadManifest):
				l.Unreadable[id] = err
				continue
			case err != nil:
				return Listing{}, err
			}
			l.Manifests = append(l.Manifests, m)
		}
	}
	sort.Slice(l.Manifests, func(i, j int) bool {
		a, b := l.Manifests[i], l.Manifests[j]
		if !a.StartedAt.Equal(b.StartedAt) {
			return a.StartedAt.After(b.StartedAt)
		}
		return a.ID > b.ID
	})
	return l, nil
}

// List is Scan's readable manifests, newest first; it fails when any manifest cannot be read.
func List(ctx context.Context, st Store) ([]*Manifest, error) {
	l, err := Scan(ctx, st)
	if err != nil {
		return nil, err
	}
	return l.Manifests, l.Err()
}
