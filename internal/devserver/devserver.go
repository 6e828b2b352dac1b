// Package devserver runs a real Temporal server (go.temporal.io/server) and the Temporal Web UI
// inside the current process, for `orchestrator dev` and for tests.
//
// State lives in one SQLite file, so workflows, schedules and timers survive a restart; with no
// file it runs in memory. The server is the same code a production cluster runs, only with all
// four services (frontend, history, matching, worker) in one process and one history shard.
package devserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	uiserver "github.com/temporalio/ui-server/v2/server"
	uiconfig "github.com/temporalio/ui-server/v2/server/config"
	uioptions "github.com/temporalio/ui-server/v2/server/server_options"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/api/serviceerror"
	taskqueuepb "go.temporal.io/api/taskqueue/v1"
	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/server/common/authorization"
	"go.temporal.io/server/common/cluster"
	"go.temporal.io/server/common/config"
	"go.temporal.io/server/common/dynamicconfig"
	tlog "go.temporal.io/server/common/log"
	"go.temporal.io/server/common/metrics"
	persistencesql "go.temporal.io/server/common/persistence/sql"
	"go.temporal.io/server/common/persistence/sql/sqlplugin"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	"go.temporal.io/server/common/resolver"
	"go.temporal.io/server/schema/sqlite"
	"go.temporal.io/server/temporal"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Options configure an embedded server. The zero value runs in memory on free ports without UI.
type Options struct {
	// DatabaseFile is the SQLite file that keeps state across restarts; empty runs in memory.
	DatabaseFile string
	// IP is the address every listener binds to; default 127.0.0.1.
	IP string
	// FrontendPort is the gRPC frontend port; 0 picks a free one.
	FrontendPort int
	// UIPort is the Web UI port; 0 runs no UI.
	UIPort int
	// Namespaces are registered at start (if missing); default just "default".
	Namespaces []string
	// LogFile receives the server's own log; empty discards it. The server logs transient
	// membership errors at start and stop that would only alarm a terminal.
	LogFile string
	// LogLevel of the server's own log: debug, info, warn (default) or error.
	LogLevel string
}

// Server is a running embedded Temporal server.
type Server struct {
	server       temporal.Server
	ui           *uiserver.Server
	uiDone       chan struct{}
	frontendAddr string
	uiURL        string
	stopOnce     sync.Once
	stopErr      error
}

// Start starts the server and waits until its frontend answers, or ctx ends.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.IP == "" {
		opts.IP = "127.0.0.1"
	}
	if len(opts.Namespaces) == 0 {
		opts.Namespaces = []string{"default"}
	}
	if opts.LogLevel == "" {
		opts.LogLevel = "warn"
	}
	if opts.FrontendPort == 0 {
		p, err := freePort(opts.IP)
		if err != nil {
			return nil, err
		}
		opts.FrontendPort = p
	} else if err := portFree(opts.IP, opts.FrontendPort); err != nil {
		return nil, fmt.Errorf("temporal frontend: %w", err)
	}
	if opts.UIPort != 0 {
		if err := portFree(opts.IP, opts.UIPort); err != nil {
			return nil, fmt.Errorf("temporal web UI: %w", err)
		}
	}

	cfg, err := serverConfig(opts)
	if err != nil {
		return nil, err
	}
	sqlCfg := cfg.Persistence.DataStores[sqliteplugin.PluginName].SQL
	if opts.DatabaseFile != "" {
		if err := os.MkdirAll(filepath.Dir(opts.DatabaseFile), 0o700); err != nil {
			return nil, fmt.Errorf("temporal state directory: %w", err)
		}
		if _, err := os.Stat(opts.DatabaseFile); errors.Is(err, os.ErrNotExist) {
			if err := sqlite.SetupSchema(sqlCfg); err != nil {
				return nil, fmt.Errorf("temporal sqlite schema: %w", err)
			}
		} else if err := forgetMembers(sqlCfg); err != nil {
			return nil, err
		}
	}
	var namespaces []*sqlite.NamespaceConfig
	for _, ns := range opts.Namespaces {
		nc, err := sqlite.NewNamespaceConfig(cfg.ClusterMetadata.CurrentClusterName, ns, false, nil)
		if err != nil {
			return nil, fmt.Errorf("temporal namespace %s: %w", ns, err)
		}
		// Dev state is kept for a week, long enough to look back at last night's runs.
		nc.Detail.Config.Retention = durationpb.New(7 * 24 * time.Hour)
		namespaces = append(namespaces, nc)
	}
	if err := sqlite.CreateNamespaces(sqlCfg, namespaces...); err != nil {
		return nil, fmt.Errorf("temporal namespaces: %w", err)
	}

	var logger tlog.Logger = tlog.NewNoopLogger()
	if opts.LogFile != "" {
		logger = tlog.NewZapLogger(tlog.BuildZapLogger(tlog.Config{Level: opts.LogLevel, Format: "console", OutputFile: opts.LogFile}))
	}
	authorizer, err := authorization.GetAuthorizerFromConfig(&cfg.Global.Authorization)
	if err != nil {
		return nil, fmt.Errorf("temporal authorizer: %w", err)
	}
	claimMapper, err := authorization.GetClaimMapperFromConfig(&cfg.Global.Authorization, logger)
	if err != nil {
		return nil, fmt.Errorf("temporal claim mapper: %w", err)
	}
	srv, err := temporal.NewServer(
		temporal.WithConfig(cfg),
		temporal.ForServices(temporal.DefaultServices),
		temporal.WithLogger(logger),
		temporal.WithAuthorizer(authorizer),
		temporal.WithClaimMapper(func(*config.Config) authorization.ClaimMapper { return claimMapper }),
		// The process's own /metrics belongs to the orchestrator; the embedded server's
		// internal metrics are not exported in dev.
		temporal.WithCustomMetricsHandler(metrics.NoopMetricsHandler),
		temporal.WithDynamicConfigClient(dynamicconfig.StaticClient{
			// A search attribute added at start is usable at once.
			dynamicconfig.ForceSearchAttributesCacheRefreshOnRead.Key(): []dynamicconfig.ConstrainedValue{{Value: true}},
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("temporal server: %w", err)
	}
	if err := srv.Start(); err != nil {
		return nil, fmt.Errorf("temporal server start: %w", err)
	}
	s := &Server{server: srv, frontendAddr: net.JoinHostPort(opts.IP, strconv.Itoa(opts.FrontendPort))}
	if err := s.waitReady(ctx, opts.Namespaces); err != nil {
		_ = srv.Stop()
		return nil, err
	}
	if opts.UIPort != 0 {
		s.startUI(opts)
	}
	return s, nil
}

// FrontendAddr is the host:port a Temporal client dials.
func (s *Server) FrontendAddr() string { return s.frontendAddr }

// UIURL is the Web UI's address, or "" when no UI runs.
func (s *Server) UIURL() string { return s.uiURL }

// Stop shuts the UI and the server down. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.ui != nil {
			s.ui.Stop()
			<-s.uiDone
		}
		s.stopErr = s.server.Stop()
	})
	return s.stopErr
}

func (s *Server) startUI(opts Options) {
	cfg := &uiconfig.Config{
		TemporalGRPCAddress: s.frontendAddr,
		Host:                opts.IP,
		Port:                opts.UIPort,
		EnableUI:            true,
		DefaultNamespace:    opts.Namespaces[0],
		HideLogs:            true,
		CORS:                uiconfig.CORS{CookieInsecure: true},
		DisableNewsFetch:    true,
	}
	s.ui = uiserver.NewServer(uioptions.WithConfigProvider(cfg))
	s.uiDone = make(chan struct{})
	s.uiURL = "http://" + net.JoinHostPort(opts.IP, strconv.Itoa(opts.UIPort))
	go func() {
		defer close(s.uiDone)
		_ = s.ui.Start()
	}()
}

// waitReady dials the frontend until every service answers: each namespace is described
// (frontend), a task queue is described (matching) and a missing workflow is reported missing
// (history), so callers never meet a half-started cluster.
func (s *Server) waitReady(ctx context.Context, namespaces []string) error {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	var last error
	for {
		last = s.probe(ctx, namespaces)
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("temporal server did not become ready: %w", errors.Join(ctx.Err(), last))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (s *Server) probe(ctx context.Context, namespaces []string) error {
	c, err := client.Dial(client.Options{HostPort: s.frontendAddr, Logger: quietLogger{}})
	if err != nil {
		return err
	}
	defer c.Close()
	svc := c.WorkflowService()
	for _, ns := range namespaces {
		if _, err := svc.DescribeNamespace(ctx, &workflowservice.DescribeNamespaceRequest{Namespace: ns}); err != nil {
			return err
		}
		if _, err := svc.DescribeTaskQueue(ctx, &workflowservice.DescribeTaskQueueRequest{
			Namespace: ns, TaskQueue: &taskqueuepb.TaskQueue{Name: "readiness-probe"},
		}); err != nil {
			return err
		}
		_, err := svc.DescribeWorkflowExecution(ctx, &workflowservice.DescribeWorkflowExecutionRequest{
			Namespace: ns, Execution: &commonpb.WorkflowExecution{WorkflowId: "readiness-probe"},
		})
		var nf *serviceerror.NotFound
		if !errors.As(err, &nf) {
			return fmt.Errorf("history service: %w", err)
		}
	}
	return nil
}

func serverConfig(opts Options) (*config.Config, error) {
	sqlCfg := config.SQL{
		PluginName:        sqliteplugin.PluginName,
		ConnectAttributes: map[string]string{"mode": "rwc", "_journal_mode": "wal", "_synchronous": "2"},
		DatabaseName:      opts.DatabaseFile,
	}
	if opts.DatabaseFile == "" {
		// A private in-memory database per server: several servers may run in one test binary.
		sqlCfg.ConnectAttributes = map[string]string{"mode": "memory", "cache": "shared"}
		sqlCfg.DatabaseName = fmt.Sprintf("temporal-%d-%d", os.Getpid(), time.Now().UnixNano())
	}
	ports := make([]int, 0, 7)
	for range 7 {
		p, err := freePort(opts.IP)
		if err != nil {
			return nil, err
		}
		ports = append(ports, p)
	}
	service := func(grpcPort, membershipPort int) config.Service {
		return config.Service{RPC: config.RPC{GRPCPort: grpcPort, MembershipPort: membershipPort, BindOnIP: opts.IP}}
	}
	frontendAddr := net.JoinHostPort(opts.IP, strconv.Itoa(opts.FrontendPort))
	cfg := &config.Config{
		Global: config.Global{
			Membership: config.Membership{MaxJoinDuration: 30 * time.Second, BroadcastAddress: opts.IP},
		},
		Persistence: config.Persistence{
			DefaultStore:     sqliteplugin.PluginName,
			VisibilityStore:  sqliteplugin.PluginName,
			NumHistoryShards: 1,
			DataStores:       map[string]config.DataStore{sqliteplugin.PluginName: {SQL: &sqlCfg}},
		},
		ClusterMetadata: &cluster.Config{
			EnableGlobalNamespace:    false,
			FailoverVersionIncrement: 10,
			MasterClusterName:        "active",
			CurrentClusterName:       "active",
			ClusterInformation: map[string]cluster.ClusterInformation{
				"active": {Enabled: true, InitialFailoverVersion: 1, RPCAddress: frontendAddr},
			},
		},
		DCRedirectionPolicy: config.DCRedirectionPolicy{Policy: "noop"},
		Services: map[string]config.Service{
			"frontend": service(opts.FrontendPort, ports[0]),
			"history":  service(ports[1], ports[2]),
			"matching": service(ports[3], ports[4]),
			"worker":   service(ports[5], ports[6]),
		},
		Archival: config.Archival{
			History:    config.HistoryArchival{State: "disabled"},
			Visibility: config.VisibilityArchival{State: "disabled"},
		},
		NamespaceDefaults: config.NamespaceDefaults{
			Archival: config.ArchivalNamespaceDefaults{
				History:    config.HistoryArchivalNamespaceDefaults{State: "disabled"},
				Visibility: config.VisibilityArchivalNamespaceDefaults{State: "disabled"},
			},
		},
		PublicClient: config.PublicClient{HostPort: frontendAddr},
	}
	return cfg, nil
}

// forgetMembers drops the cluster membership a previous run left in the state file. This
// process is the whole cluster; left in place, the old (dead) hosts are the seeds the new
// services try to join, and the matching service waits many seconds before it serves.
func forgetMembers(cfg *config.SQL) error {
	adb, err := persistencesql.NewSQLAdminDB(sqlplugin.DbKindMain, cfg, resolver.NewNoopResolver(), tlog.NewNoopLogger(), metrics.NoopMetricsHandler)
	if err != nil {
		return fmt.Errorf("temporal state file: %w", err)
	}
	defer func() { _ = adb.Close() }()
	if err := adb.Exec("DELETE FROM cluster_membership"); err != nil {
		return fmt.Errorf("temporal state file: forget old cluster members: %w", err)
	}
	return nil
}

// freePort finds a port that is free now, below the kernel's ephemeral range. The server binds
// its ports a moment later, and a port the kernel handed out for ":0" can be handed out again
// in between as the local end of any outgoing connection (the tests open hundreds); the
// server's listener then fails, and the embedded server, whose logger does not exit on Fatal,
// crashes its process serving a nil listener (seen in CI). Ports below the ephemeral range are
// never given to outgoing connections. Where none is found, the kernel's choice.
func freePort(ip string) (int, error) {
	low := ephemeralLow()
	for range 64 {
		port := 10000 + rand.IntN(low-10000)
		if l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
			_ = l.Close()
			return port, nil
		}
	}
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (Linux's default where it
// cannot be read).
func ephemeralLow() int {
	low := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil && n > 11000 {
				low = n
			}
		}
	}
	return low
}

// portFree fails with a clear message when something already listens on ip:port.
func portFree(ip string, port int) error {
	addr := net.JoinHostPort(ip, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s is already in use (another `orchestrator dev` running?)", addr)
	}
	return l.Close()
}

// quietLogger drops the SDK client's logs while polling for readiness.
type quietLogger struct{}

func (quietLogger) Debug(string, ...any) {}
func (quietLogger) Info(string, ...any)  {}
func (quietLogger) Warn(string, ...any)  {}
func (quietLogger) Error(string, ...any) {}
