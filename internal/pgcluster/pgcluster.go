// Package pgcluster finds a PostgreSQL server for `orchestrator dev` and the tests, starting a
// throwaway cluster with the machine's own initdb and postgres when there is none.
//
// The order is the one the README promises: DATABASE_URL if set; otherwise the server on
// 127.0.0.1:5432 if one answers and lets us in; otherwise a private cluster in a directory of
// ours, on a free port, that lives exactly as long as this process.
package pgcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
)

// Source says where a Server came from.
type Source string

// The three places a server can come from, in the order they are tried.
const (
	SourceURL       Source = "DATABASE_URL"
	SourceLocal     Source = "local server"
	SourceThrowaway Source = "throwaway cluster"
)

// DefaultProbeAddr is where a machine's own PostgreSQL usually listens.
const DefaultProbeAddr = "127.0.0.1:5432"

// ResolveOptions say where to look.
type ResolveOptions struct {
	// URL is DATABASE_URL; when set it is used as is.
	URL string
	// ProbeAddr is the local server to try; empty means DefaultProbeAddr.
	ProbeAddr string
	// ClusterDir is where a throwaway cluster keeps its files.
	ClusterDir string
	// Logger reports which source was chosen and why the others were not.
	Logger *slog.Logger
	// ClusterSettings, if set, is called only when a throwaway cluster is about to start, for
	// its extra settings (archiving, say); servers found are used as they are.
	ClusterSettings func() []string
}

// Server is a reachable PostgreSQL server.
type Server struct {
	// Source is where the server came from.
	Source Source
	// url points at the maintenance database when we own or found the server, or at the
	// configured database for SourceURL.
	url     string
	cluster *Cluster
}

// Resolve finds a server, starting a throwaway cluster if it has to.
func Resolve(ctx context.Context, opts ResolveOptions) (*Server, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.URL != "" {
		if err := ping(ctx, opts.URL); err != nil {
			return nil, fmt.Errorf("DATABASE_URL: %w", err)
		}
		return &Server{Source: SourceURL, url: opts.URL}, nil
	}
	probe := opts.ProbeAddr
	if probe == "" {
		probe = DefaultProbeAddr
	}
	if u, err := probeLocal(ctx, probe); err == nil {
		return &Server{Source: SourceLocal, url: u}, nil
	} else {
		logger.Info("no usable PostgreSQL at "+probe+"; starting a throwaway cluster", "reason", err.Error(), "dir", opts.ClusterDir)
	}
	if opts.ClusterDir == "" {
		return nil, errors.New("no PostgreSQL server found and no directory for a throwaway cluster")
	}
	var co ClusterOptions
	if opts.ClusterSettings != nil {
		co.Settings = opts.ClusterSettings()
	}
	c, err := StartCluster(ctx, opts.ClusterDir, co)
	if err != nil {
		return nil, err
	}
	return &Server{Source: SourceThrowaway, url: c.URL("postgres"), cluster: c}, nil
}

// URL is the connection string the server was found with.
func (s *Server) URL() string { return s.url }

// DatabaseURL returns the URL of database name on this server.
func (s *Server) DatabaseURL(name string) string { return WithDatabase(s.url, name) }

// EnsureDatabase creates database name unless it exists, and returns its URL.
func (s *Server) EnsureDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up database %s: %w", name, err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("create database %s: %w", name, err)
		}
	}
	return s.DatabaseURL(name), nil
}

// CreateDatabase creates database name, optionally from a template database.
func (s *Server) CreateDatabase(ctx context.Context, name, template string) (string, error) {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return "", fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	sql := "CREATE DATABASE " + pgx.Identifier{name}.Sanitize()
	if template != "" {
		sql += " TEMPLATE " + pgx.Identifier{template}.Sanitize()
	}
	if _, err := conn.Exec(ctx, sql); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.DatabaseURL(name), nil
}

// DropDatabase drops database name if it exists, closing its other sessions first.
func (s *Server) DropDatabase(ctx context.Context, name string) error {
	conn, err := pgx.Connect(ctx, s.url)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	return nil
}

// ClusterDir is the throwaway cluster's data directory, or "" for a server we did not start.
func (s *Server) ClusterDir() string {
	if s.cluster == nil {
		return ""
	}
	return s.cluster.Dir
}

// Restart stops the throwaway cluster and starts it again with opts (other settings), on a
// new port: URLs taken before are stale. A server we did not start is not restarted.
func (s *Server) Restart(ctx context.Context, opts ClusterOptions) error {
	if s.cluster == nil {
		return errors.New("pgcluster: only a throwaway cluster is restarted")
	}
	if err := s.cluster.Stop(); err != nil {
		return err
	}
	c, err := StartCluster(ctx, s.cluster.Dir, opts)
	if err != nil {
		return err
	}
	s.cluster, s.url = c, c.URL("postgres")
	return nil
}

// Cluster is the throwaway cluster, or nil for a server we did not start.
func (s *Server) Cluster() *Cluster { return s.cluster }

// Close stops the throwaway cluster, if this server is one.
func (s *Server) Close() error {
	if s.cluster == nil {
		return nil
	}
	return s.cluster.Stop()
}

// WithDatabase replaces the database in a PostgreSQL URL.
func WithDatabase(rawURL, name string) string {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		// A key=value connection string: append, pgx lets the last dbname win.
		return rawURL + " dbname=" + name
	}
	u.Path = "/" + name
	return u.String()
}

// probeLocal returns a URL of the maintenance database on addr when a server answers there
// and one of the usual local users may log in without a password.
func probeLocal(ctx context.Context, addr string) (string, error) {
	d := net.Dialer{Timeout: time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", fmt.Errorf("nothing listens: %w", err)
	}
	_ = c.Close()
	var errs []error
	for _, user := range []string{"postgres", currentUser()} {
		if user == "" {
			continue
		}
		u := (&url.URL{Scheme: "postgres", User: url.User(user), Host: addr, Path: "/postgres", RawQuery: "sslmode=disable"}).String()
		err := ping(ctx, u)
		if err == nil {
			return u, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("a server answers but will not let us in: %w", errors.Join(errs...))
}

func ping(ctx context.Context, u string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		// pgx names user, database and host in the error, never the password.
		return fmt.Errorf("cannot connect: %w", err)
	}
	return conn.Close(ctx)
}
