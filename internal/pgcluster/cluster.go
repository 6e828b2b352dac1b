package pgcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Cluster is a private PostgreSQL cluster run as a child of this process. It listens on
// 127.0.0.1 only, on a port chosen at start, with a password kept next to its directory.
type Cluster struct {
	// Dir is the cluster's data directory.
	Dir string
	// Port is the TCP port it listens on.
	Port int

	password string
	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
}

// ClusterOptions tune a throwaway cluster.
type ClusterOptions struct {
	// Ephemeral trades durability for speed (fsync off): for test clusters that are deleted
	// afterwards, never for `make run`'s state.
	Ephemeral bool
	// Settings are extra server settings, "name=value", given after the defaults (so they win):
	// e.g. archive_mode=on and an archive_command for point-in-time recovery.
	Settings []string
	// Password is the postgres user's password for a data directory made elsewhere (a
	// physical restore) that has no password file beside it.
	Password string
}

// StartCluster creates the cluster in dir if it does not exist yet, and starts it.
//
// initdb and postgres refuse to run as root; when this process is root they run as the
// `postgres` system user (or `nobody`), which must be able to reach dir. The server is this
// process's child and is told to stop when this process dies, so none is left behind.
func StartCluster(ctx context.Context, dir string, opts ...ClusterOptions) (*Cluster, error) {
	var o ClusterOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	initdb, err := FindBinary("initdb", 0)
	if err != nil {
		return nil, err
	}
	binDir := filepath.Dir(initdb)
	postgres := filepath.Join(binDir, "postgres")
	if _, err := os.Stat(postgres); err != nil {
		return nil, fmt.Errorf("postgres binary next to %s: %w", initdb, err)
	}
	if dir, err = ClusterPath(dir); err != nil {
		return nil, err
	}
	owner, err := clusterOwner()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return nil, fmt.Errorf("cluster directory: %w", err)
	}
	if owner != nil {
		// Let the postgres user pass through (execute bit only: nothing can be listed).
		parent := filepath.Dir(dir)
		if st, err := os.Stat(parent); err == nil && st.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(parent, st.Mode().Perm()|0o011); err != nil {
				return nil, fmt.Errorf("let user %s reach %s: %w", owner.name, parent, err)
			}
		}
	}
	pwFile := dir + ".password"
	if _, err := os.Stat(filepath.Join(dir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := initCluster(ctx, initdb, dir, pwFile, owner); err != nil {
			return nil, err
		}
	}
	pw := []byte(o.Password)
	if o.Password == "" {
		if pw, err = os.ReadFile(pwFile); err != nil {
			return nil, fmt.Errorf("cluster password: %w", err)
		}
	}
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: dir, Port: port, password: strings.TrimSpace(string(pw)), exited: make(chan struct{})}
	args := []string{"-D", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
		"-c", "max_connections=200"}
	if o.Ephemeral {
		args = append(args, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off")
	}
	for _, kv := range o.Settings {
		args = append(args, "-c", kv)
	}
	logFile, err := os.OpenFile(dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cluster log: %w", err)
	}
	defer func() { _ = logFile.Close() }()
	c.cmd = exec.Command(postgres, args...)
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = childAttrs(owner)
	if err := c.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start postgres: %w", err)
	}
	go func() { _ = c.cmd.Wait(); close(c.exited) }()
	if err := c.waitReady(ctx); err != nil {
		_ = c.Stop()
		return nil, err
	}
	return c, nil
}

// ClusterPath is where StartCluster keeps a cluster asked for in dir: dir itself (made
// absolute), unless this process is root and a directory above it is private (a checkout under
// /root, which is 0700), out of the postgres user's reach; then a directory of the shared
// temporary directory, the same for the same dir.
func ClusterPath(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	owner, err := clusterOwner()
	if err != nil {
		return "", err
	}
	if owner != nil && !ancestorsReachable(filepath.Dir(dir)) {
		sum := sha256.Sum256([]byte(dir))
		dir = filepath.Join(os.TempDir(), "orchestrator-pg-"+hex.EncodeToString(sum[:6]), "pg")
	}
	return dir, nil
}

// URL returns the connection string of database name in this cluster.
func (c *Cluster) URL(name string) string {
	return (&url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword("postgres", c.password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:     "/" + name,
		RawQuery: "sslmode=disable",
	}).String()
}

// stopWait is how long Stop lets a fast shutdown take before it kills the server.
var stopWait = 30 * time.Second

// Stop shuts the server down (fast mode: sessions are closed, data is flushed) and waits.
func (c *Cluster) Stop() error {
	var err error
	c.stopOnce.Do(func() {
		select {
		case <-c.exited:
			return
		default:
		}
		_ = c.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-c.exited:
		case <-time.After(stopWait):
			// The server with its children, not the postmaster alone: what holds a shutdown
			// up is usually a child stuck in a command — the archiver in an archive_command
			// whose object store is gone — and it would outlive a killed postmaster.
			killServer(c.cmd.Process.Pid)
			<-c.exited
			err = fmt.Errorf("postgres did not stop within %s and was killed with its children", stopWait)
		}
	})
	return err
}

func (c *Cluster) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := ping(ctx, c.URL("postgres"))
		if err == nil {
			return nil
		}
		select {
		case <-c.exited:
			return fmt.Errorf("postgres exited at start; see %s.log: %s", c.Dir, lastLines(c.Dir+".log", 5))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections within 60s: %w", err)
		}
	}
}

func initCluster(ctx context.Context, initdb, dir, pwFile string, owner *owner) error {
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return err
	}
	password := hex.EncodeToString(secret)
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("cluster password: %w", err)
	}
	// initdb reads the password from a file its own user can read; it is removed at once.
	tmp, err := os.CreateTemp(filepath.Dir(dir), ".initdb-pw-*")
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if _, err := tmp.WriteString(password + "\n"); err != nil {
		return err
	}
	_ = tmp.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("cluster directory: %w", err)
	}
	if owner != nil {
		for _, p := range []string{dir, tmp.Name()} {
			if err := os.Chown(p, owner.uid, owner.gid); err != nil {
				return fmt.Errorf("hand %s to user %s: %w", p, owner.name, err)
			}
		}
	}
	cmd := exec.CommandContext(ctx, initdb, "-D", dir, "-U", "postgres", "--auth=scram-sha-256",
		"--pwfile="+tmp.Name(), "--encoding=UTF8", "--no-locale", "--no-instructions")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = childAttrs(owner)
	if err := cmd.Run(); err != nil {
		_ = os.RemoveAll(dir)
		return fmt.Errorf("initdb failed: %w: %s", err, strings.TrimSpace(lastOf(out.String(), 5)))
	}
	return nil
}

// RunAsOwner makes cmd run as the user PostgreSQL clusters run as (when this process is root;
// otherwise as this process's user), in its own process group with a parent-death signal:
// programs that read or write a cluster's files, such as pgBackRest, must be that user.
func RunAsOwner(cmd *exec.Cmd) error {
	o, err := clusterOwner()
	if err != nil {
		return err
	}
	cmd.SysProcAttr = childAttrs(o)
	return nil
}

// OwnerCanReach reports whether the user clusters run as can reach dir (always, unless this
// process is root and a directory above dir is private).
func OwnerCanReach(dir string) bool {
	o, err := clusterOwner()
	if err != nil {
		return false
	}
	abs, err := filepath.Abs(dir)
	return err == nil && (o == nil || ancestorsReachable(filepath.Dir(abs)))
}

// Password is the postgres user's password.
func (c *Cluster) Password() string { return c.password }

// Exited is closed when the server process has ended.
func (c *Cluster) Exited() <-chan struct{} { return c.exited }

// LastLog is the last n lines of the server's log, in one line.
func (c *Cluster) LastLog(n int) string { return lastLines(c.Dir+".log", n) }

// GiveToOwner hands paths to the user clusters run as (when this process is root).
func GiveToOwner(paths ...string) error {
	o, err := clusterOwner()
	if err != nil || o == nil {
		return err
	}
	for _, p := range paths {
		if err := os.Chown(p, o.uid, o.gid); err != nil {
			return fmt.Errorf("hand %s to user %s: %w", p, o.name, err)
		}
	}
	return nil
}

// owner is the unprivileged user a root process runs PostgreSQL as.
type owner struct {
	name     string
	uid, gid int
}

func clusterOwner() (*owner, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		return &owner{name: name, uid: uid, gid: gid}, nil
	}
	return nil, errors.New("running as root, and there is neither a postgres nor a nobody user to run PostgreSQL as")
}

// ancestorsReachable reports whether every directory above dir lets other users pass.
func ancestorsReachable(dir string) bool {
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil || st.Mode().Perm()&0o001 == 0 {
			return false
		}
		if filepath.Dir(d) == d {
			return true
		}
	}
}

// FindBinary finds a PostgreSQL program: under /usr/lib/postgresql/<major>/bin when a major
// version is wanted, else on PATH, else the newest /usr/lib/postgresql/*/bin.
func FindBinary(name string, major int) (string, error) {
	if major > 0 {
		p := filepath.Join("/usr/lib/postgresql", strconv.Itoa(major), "bin", name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(name); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			return r, nil
		}
		return p, nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return versionOf(dirs[i]) > versionOf(dirs[j]) })
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH or under /usr/lib/postgresql/*/bin (install Debian's postgresql package)", name)
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func freeLoopbackPort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func currentUser() string {
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

func lastLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return lastOf(string(b), n)
}

func lastOf(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}
