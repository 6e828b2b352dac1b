package testharness

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/creatorvault/orchestrator/internal/s3server"
)

// Faults of the object store, as they happen: the store as a process of its own that a test
// can kill and start again, and a proxy in front of a store that shows what a client sent and
// can hold an upload mid-way.

// s3ChildEnv makes a test binary serve the package's S3 server instead of running tests (see
// S3Process): its value is "addr dir".
const s3ChildEnv = "TESTHARNESS_S3_PROCESS"

func init() {
	v, ok := os.LookupEnv(s3ChildEnv)
	if !ok {
		return
	}
	addr, dir, _ := strings.Cut(v, " ")
	srv, err := s3server.Start(addr, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(srv.URL())
	// Serve until the parent closes stdin (or kills this process).
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = srv.Close()
	os.Exit(0)
}

// S3Process is the package's S3 server (file-backed) in a child process: a separate
// process, so that a test can SIGKILL it mid-upload and start it again on the same address
// and files.
type S3Process struct {
	tb   testing.TB
	addr string
	dir  string
	cmd  *exec.Cmd
	in   io.WriteCloser
}

// StartS3Process starts the object store in a child process on a free loopback port, its
// objects in a directory of the test's.
func StartS3Process(tb testing.TB) *S3Process {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("S3 process: %v", err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	p := &S3Process{tb: tb, addr: addr, dir: tb.TempDir()}
	p.Start()
	tb.Cleanup(p.Stop)
	return p
}

// URL is the store's endpoint; it stays the same across restarts.
func (p *S3Process) URL() string { return "http://" + p.addr }

// Start starts the process (again, after Kill) and waits until it serves.
func (p *S3Process) Start() {
	p.tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := p.spawn()
		if err == nil {
			return
		}
		// The port may still be held by the killed process for a moment.
		if time.Now().After(deadline) {
			p.tb.Fatalf("S3 process did not start on %s: %v", p.addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *S3Process) spawn() error {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), s3ChildEnv+"="+p.addr+" "+p.dir)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != p.URL() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("S3 process said %q: %v", line, err)
	}
	p.cmd, p.in = cmd, in
	return nil
}

// Kill kills the process with SIGKILL, as a crash or an OOM kill would, and reaps it.
func (p *S3Process) Kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// Stop ends the process normally.
func (p *S3Process) Stop() {
	if p.cmd == nil {
		return
	}
	_ = p.in.Close()
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

// S3Request is one request a client sent through an S3Proxy.
type S3Request struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
}

// IsUploadPart reports whether the request uploads a part of a multipart upload.
func (r S3Request) IsUploadPart() bool {
	return r.Method == http.MethodPut && r.Query.Has("partNumber") && r.Query.Has("uploadId")
}

// S3Proxy forwards requests to an S3 server, recording them, and can hold the parts of
// multipart uploads until released: a test then knows an upload is mid-way.
type S3Proxy struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []S3Request
	holding  bool
	release  chan struct{}
	seen     chan struct{}
	seenOnce sync.Once
}

// NewS3Proxy starts a proxy in front of the S3 server at target.
func NewS3Proxy(tb testing.TB, target string) *S3Proxy {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatalf("S3 proxy: %v", err)
	}
	p := &S3Proxy{release: make(chan struct{}), seen: make(chan struct{})}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			pr.Out.Host = pr.In.Host // keep the Host header the client signed
		},
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, "proxy: "+err.Error(), http.StatusBadGateway)
		},
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := S3Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Header: r.Header.Clone()}
		p.mu.Lock()
		p.requests = append(p.requests, req)
		hold, release := p.holding && req.IsUploadPart(), p.release
		p.mu.Unlock()
		if hold {
			p.seenOnce.Do(func() { close(p.seen) })
			select {
			case <-release:
			case <-r.Context().Done(): // the client is gone (killed)
				return
			}
		}
		rp.ServeHTTP(w, r)
	}))
	tb.Cleanup(func() { p.Release(); p.srv.Close() })
	return p
}

// URL is the proxy's endpoint, to give a client instead of the server's.
func (p *S3Proxy) URL() string { return p.srv.URL }

// HoldParts makes the proxy hold every part upload until Release; the returned channel is
// closed when the first part arrives.
func (p *S3Proxy) HoldParts() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holding = true
	return p.seen
}

// Release lets held and later parts through.
func (p *S3Proxy) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.holding {
		p.holding = false
		close(p.release)
	}
}

// Requests are the requests forwarded so far.
func (p *S3Proxy) Requests() []S3Request {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]S3Request(nil), p.requests...)
}
