// Package s3server runs an S3-compatible object store inside the process (gofakes3), backed by
// files, for `orchestrator dev` and tests. Callers speak to it through the real aws-sdk-go-v2
// client, with path-style addressing, region us-east-1 and static credentials.
//
// gofakes3 keeps multipart parts in memory and ignores x-amz-checksum-* headers: it suits
// small objects. Streaming and checksum behaviour are tested against MinIO. Two answers are
// made S3's here: an aws-chunked body with a trailing checksum (what the SDK sends over
// HTTPS) is decoded, and the file-backed store lists an empty prefix as empty.
package s3server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/spf13/afero"
)

// Server is a running in-process S3 server.
type Server struct {
	http *http.Server
	url  string
	done chan error
	// tlsDone receives the end of the TLS listener ServeTLS added, if any.
	tlsDone chan error
}

// Start listens on addr ("127.0.0.1:0" for any free port) and serves buckets stored under
// dir; an empty dir keeps everything in memory.
func Start(addr, dir string) (*Server, error) { return start(addr, dir, nil) }

// StartTLS is Start serving HTTPS with cert: for clients that speak S3 only over TLS, such as
// pgBackRest. Tests generate the certificate and give its CA to the client.
func StartTLS(addr, dir string, cert tls.Certificate) (*Server, error) {
	return start(addr, dir, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
}

func start(addr, dir string, tlsConfig *tls.Config) (*Server, error) {
	var backend gofakes3.Backend
	if dir == "" {
		backend = s3mem.New()
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("object store directory: %w", err)
		}
		b, err := s3afero.MultiBucket(afero.NewBasePathFs(afero.NewOsFs(), dir))
		if err != nil {
			return nil, fmt.Errorf("object store: %w", err)
		}
		backend = fileBackend{b}
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("object store on %s: %w", addr, err)
	}
	faker := gofakes3.New(backend, gofakes3.WithoutVersioning(), gofakes3.WithTimeSkewLimit(0))
	s := &Server{
		http: &http.Server{Handler: decodeAWSChunked(faker.Server()), ReadHeaderTimeout: 10 * time.Second},
		url:  "http://" + l.Addr().String(),
		done: make(chan error, 1),
	}
	if tlsConfig != nil {
		l = tls.NewListener(l, tlsConfig)
		s.url = "https://" + l.Addr().String()
	}
	go func() { s.done <- s.http.Serve(l) }()
	return s, nil
}

// URL is the endpoint to give the S3 client (S3_ENDPOINT).
func (s *Server) URL() string { return s.url }

// ServeTLS serves the same buckets over HTTPS with cert on a second address as well (dev's
// store: the application speaks plain HTTP on the first, pgBackRest, which speaks S3 only over
// TLS, the second). It returns the HTTPS endpoint, named localhost (the certificate's name).
func (s *Server) ServeTLS(addr string, cert tls.Certificate) (string, error) {
	if s.tlsDone != nil {
		return "", errors.New("object store: already serves TLS")
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("object store (TLS) on %s: %w", addr, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l = tls.NewListener(l, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	s.tlsDone = make(chan error, 1)
	go func() { s.tlsDone <- s.http.Serve(l) }()
	return fmt.Sprintf("https://localhost:%d", port), nil
}

// Close stops the server, letting requests in flight finish for a few seconds.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.http.Shutdown(ctx)
	for _, done := range []chan error{s.done, s.tlsDone} {
		if done == nil {
			continue
		}
		if serveErr := <-done; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
			return serveErr
		}
	}
	return err
}

// fileBackend is the file-backed store, answering as S3 does where s3afero does not: a
// listing under a prefix no object has yet (a directory that does not exist) is an empty list,
// not NoSuchBucket. pgBackRest lists such prefixes before it writes its first files.
type fileBackend struct{ *s3afero.MultiBucketBackend }

func (b fileBackend) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	list, err := b.MultiBucketBackend.ListBucket(bucket, prefix, page)
	if gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchBucket) {
		if exists, existsErr := b.BucketExists(bucket); existsErr == nil && exists {
			return gofakes3.NewObjectList(), nil
		}
	}
	return list, err
}
