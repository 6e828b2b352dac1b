package pitr

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/creatorvault/orchestrator/internal/pgcluster"
)

// Kind is a physical backup's type.
type Kind string

// The backup types pgBackRest makes. A differential backup copies what changed since the last
// full one; restoring it needs that full backup too.
const (
	Full Kind = "full"
	Diff Kind = "diff"
	Incr Kind = "incr"
)

// Engine runs pgBackRest with the configuration it writes.
type Engine struct {
	cfg Config
}

// New returns an engine for cfg, which must be valid (a missing key is ErrNoCipherPass).
func New(cfg Config) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Engine{cfg: cfg}, nil
}

// Config is the engine's configuration.
func (e *Engine) Config() Config { return e.cfg }

// ConfigPath is where WriteConfig writes pgBackRest's configuration.
func (e *Engine) ConfigPath() string { return filepath.Join(e.cfg.Dir, "pgbackrest.conf") }

// ArchiveCommand is PostgreSQL's archive_command for this repository: pgBackRest's
// archive-push, which compresses, encrypts and uploads each WAL segment.
func (e *Engine) ArchiveCommand() string {
	return fmt.Sprintf("%s --config=%s --stanza=%s archive-push %%p", e.cfg.Bin, e.ConfigPath(), e.cfg.Stanza)
}

// ServerSettings are the settings that make a cluster archive its WAL into the repository.
func (e *Engine) ServerSettings() []string {
	return []string{"wal_level=replica", "archive_mode=on", "archive_command=" + e.ArchiveCommand(), "archive_timeout=60"}
}

// WriteConfig writes pgbackrest.conf (mode 0600, owned by the clusters' user, who runs
// archive-push) and the lock directory under Dir.
func (e *Engine) WriteConfig() error {
	c := e.cfg
	lock := filepath.Join(c.Dir, "lock")
	if err := os.MkdirAll(lock, 0o700); err != nil {
		return fmt.Errorf("pitr: %w", err)
	}
	var b strings.Builder
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%s=%s\n", k, v)
		}
	}
	b.WriteString("# Written by the orchestrator from its environment (package pitr); changes are overwritten.\n[global]\n")
	line("repo1-type", "s3")
	line("repo1-path", c.RepoPath)
	line("repo1-s3-bucket", c.S3Bucket)
	line("repo1-s3-endpoint", c.S3Host)
	line("repo1-storage-port", strconv.Itoa(c.S3Port))
	line("repo1-s3-region", c.S3Region)
	if c.S3PathStyle {
		line("repo1-s3-uri-style", "path")
	}
	if c.S3Key != "" {
		line("repo1-s3-key", c.S3Key)
		line("repo1-s3-key-secret", c.S3Secret)
	} else {
		line("repo1-s3-key-type", "auto")
	}
	line("repo1-storage-ca-file", c.S3CAFile)
	line("repo1-cipher-type", "aes-256-cbc")
	line("repo1-cipher-pass", c.CipherPass)
	line("repo1-retention-full-type", "count")
	line("repo1-retention-full", strconv.Itoa(c.RetentionFull))
	line("repo1-retention-diff", strconv.Itoa(c.RetentionDiff))
	// zstd at level 1, not pgBackRest's default 3: a backup copies each file in one process
	// (process-max parallelises across files only), so the largest relation segment (up to
	// 1 GB) is one single-threaded read → SHA-1 → zstd → aes-256-cbc → TLS stream, and zstd is
	// most of its CPU. Level 1 cuts pgBackRest's CPU for a backup by about a fifth for about a
	// tenth more in the repository (README, "Point-in-time recovery", the benchmark's notes).
	line("compress-type", "zst")
	line("compress-level", "1")
	// Bundles: the small files of a cluster (most of its ~1,700 files are under 64 kB) go into
	// ~20 MB objects instead of one S3 PUT each, and empty files are not stored: about a sixth
	// less CPU in pgBackRest and in the object store for the same backup.
	line("repo1-bundle", "y")
	line("process-max", strconv.Itoa(c.ProcessMax))
	// An immediate checkpoint at the start; otherwise a backup waits for the next scheduled one
	// (up to checkpoint_timeout). archive-check stays on (the default): a backup ends only once
	// the WAL that makes it consistent is in the repository, so it can always be restored.
	line("start-fast", "y")
	line("archive-timeout", "60")
	line("lock-path", lock)
	// Messages go to stderr, command output (info's JSON) alone to stdout.
	line("log-level-console", "off")
	line("log-level-stderr", "warn")
	line("log-level-file", "off")
	fmt.Fprintf(&b, "\n[%s]\n", c.Stanza)
	line("pg1-path", c.PGData)
	line("pg1-port", strconv.Itoa(c.PGPort))
	line("pg1-socket-path", c.PGSocketDir)
	line("pg1-user", c.PGUser)
	tmp := e.ConfigPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("pitr: write configuration: %w", err)
	}
	if err := pgcluster.GiveToOwner(c.Dir, lock, tmp); err != nil {
		return fmt.Errorf("pitr: %w", err)
	}
	if err := os.Rename(tmp, e.ConfigPath()); err != nil {
		return fmt.Errorf("pitr: write configuration: %w", err)
	}
	return nil
}

// run runs `pgbackrest --config=… --stanza=… <command> args…` as the clusters' user and
// returns its standard output. A failure carries pgBackRest's own message (which never shows
// the secure options) in one line.
func (e *Engine) run(ctx context.Context, command string, args ...string) ([]byte, error) {
	full := append([]string{"--config=" + e.ConfigPath(), "--stanza=" + e.cfg.Stanza, command}, args...)
	cmd := exec.CommandContext(ctx, e.cfg.Bin, full...)
	// A clean environment: pgBackRest reads PGBACKREST_* variables as options, and nothing
	// of this process's environment (its own secrets) needs to reach it.
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + e.cfg.Dir, "TZ=UTC"}
	if e.cfg.PGPassword != "" {
		cmd.Env = append(cmd.Env, "PGPASSWORD="+e.cfg.PGPassword)
	}
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := pgcluster.RunAsOwner(cmd); err != nil {
		return nil, fmt.Errorf("pitr: %w", err)
	}
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(errOut.String())
		if msg == "" {
			msg = strings.TrimSpace(out.String())
		}
		return out.Bytes(), fmt.Errorf("pitr: pgbackrest %s: %w: %s", command, err, oneLine(msg))
	}
	return out.Bytes(), nil
}

// oneLine joins pgBackRest's message lines and keeps the end, where the cause is.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 600 {
		s = "…" + s[len(s)-600:]
	}
	return s
}

// StanzaCreate creates the stanza in the repository (idempotent for the same cluster).
func (e *Engine) StanzaCreate(ctx context.Context) error {
	_, err := e.run(ctx, "stanza-create")
	return err
}

// Check proves archiving works end to end: it switches WAL and waits for the segment to
// reach the repository.
func (e *Engine) Check(ctx context.Context) error {
	_, err := e.run(ctx, "check")
	return err
}

// Backup makes a backup of kind (full or diff).
func (e *Engine) Backup(ctx context.Context, kind Kind) error {
	if kind != Full && kind != Diff && kind != Incr {
		return fmt.Errorf("pitr: backup kind %q: want full, diff or incr", kind)
	}
	_, err := e.run(ctx, "backup", "--type="+string(kind))
	return err
}

// Expire removes backups and WAL beyond the retention policy.
func (e *Engine) Expire(ctx context.Context) error {
	_, err := e.run(ctx, "expire")
	return err
}

// Info reads the stanza's catalog from the repository.
func (e *Engine) Info(ctx context.Context) (StanzaInfo, error) {
	out, err := e.run(ctx, "info", "--output=json")
	if err != nil {
		return StanzaInfo{}, err
	}
	var all []StanzaInfo
	if err := json.Unmarshal(out, &all); err != nil {
		return StanzaInfo{}, fmt.Errorf("pitr: pgbackrest info: %w", err)
	}
	for _, s := range all {
		if s.Name == e.cfg.Stanza {
			return s, nil
		}
	}
	return StanzaInfo{}, fmt.Errorf("pitr: pgbackrest info: stanza %s not in the answer", e.cfg.Stanza)
}

// repoList lists a repository directory (relative to the repository's path).
func (e *Engine) repoList(ctx context.Context, dir string) (map[string]RepoEntry, error) {
	out, err := e.run(ctx, "repo-ls", "--output=json", dir)
	if err != nil {
		return nil, err
	}
	var entries map[string]RepoEntry
	if err := json.Unmarshal(out, &entries); err != nil {
		return nil, fmt.Errorf("pitr: pgbackrest repo-ls: %w", err)
	}
	return entries, nil
}
