//go:build !nodev

package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/internal/config"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/s3server"
	"github.com/creatorvault/orchestrator/pitr"
	"github.com/creatorvault/orchestrator/workflows"
)

// devPITR is point-in-time recovery in `orchestrator dev`. With the throwaway cluster dev
// starts, dev configures archiving itself: the cluster starts with archive_mode and
// archive_command (pgBackRest's archive-push), its repository is the in-process store's
// bucket served over TLS (pgBackRest speaks S3 only over TLS) with a certificate made for
// localhost, and its key is a generated dev secret. A server dev does not own (DATABASE_URL,
// the machine's 5432), an object store of S3_ENDPOINT, or a machine without pgbackrest leaves
// PITR off, and the banner says why; dev starts either way.
type devPITR struct {
	// Off is why PITR is off ("" when on).
	Off string
	// Endpoint is the store's HTTPS endpoint, CipherFile the key's file.
	Endpoint, CipherFile string
	// Settings are the throwaway cluster's archiving settings.
	Settings []string
	env      map[string]string
}

// notOwned is why PITR is off on a server dev found rather than started.
func notOwned(source pgcluster.Source) string {
	server := "the machine's server"
	if source == pgcluster.SourceURL {
		server = "DATABASE_URL's server"
	}
	return "PostgreSQL is " + server + ", which dev does not own: archive_mode and archive_command are its administrator's (README \"Point-in-time recovery\")"
}

// planDevPITR decides whether dev's throwaway cluster archives, just before it starts (the
// settings are its start options). store is the in-process object store, nil when S3_ENDPOINT
// is set.
func planDevPITR(cfg *config.Config, dataDir, tlsAddr string, store *s3server.Server) *devPITR {
	off := func(why string) *devPITR { return &devPITR{Off: why} }
	if store == nil {
		return off("S3_ENDPOINT is set: dev archives only into its own in-process store")
	}
	bin := cfg.PITR.Lookup(os.LookupEnv)
	program, _ := bin("PITR_PGBACKREST")
	if program == "" {
		program = "pgbackrest"
	}
	if _, err := exec.LookPath(program); err != nil {
		return off(fmt.Sprintf("%s is not installed (Debian: apt-get install pgbackrest)", program))
	}
	clusterDir, err := pgcluster.ClusterPath(filepath.Join(dataDir, "pg"))
	if err != nil {
		return off(err.Error())
	}
	// Beside the cluster, where its user (postgres, when dev runs as root) can reach them:
	// pgBackRest's configuration, the socket it connects through, the store's certificate.
	base := filepath.Dir(clusterDir)
	sock, tlsDir := filepath.Join(base, "pgsock"), filepath.Join(base, "s3-tls")
	for _, d := range []string{sock, tlsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return off(err.Error())
		}
	}
	if err := pgcluster.GiveToOwner(sock); err != nil {
		return off(err.Error())
	}
	cert, caFile, err := s3server.LocalCert(tlsDir, 365*24*time.Hour)
	if err != nil {
		return off("object store certificate: " + err.Error())
	}
	endpoint, err := store.ServeTLS(tlsAddr, cert)
	if err != nil {
		return off(err.Error())
	}
	cipherFile := filepath.Join(dataDir, "pitr-cipher-pass")
	pass, err := devSecret(cipherFile)
	if err != nil {
		return off(err.Error())
	}
	creds := objstore.DevCredentials()
	p := &devPITR{Endpoint: endpoint, CipherFile: cipherFile, env: map[string]string{
		"PITR_CIPHER_PASS": string(pass), "PITR_PGBACKREST": program,
		"PITR_PG_DATA": clusterDir, "PITR_PG_SOCKET_DIR": sock, "PITR_PG_USER": "postgres",
		"PITR_DIR": filepath.Join(base, "pgbackrest"), "PITR_S3_CA_FILE": caFile,
		"S3_ENDPOINT": endpoint, "S3_BUCKET": cfg.S3.Bucket, "AWS_REGION": config.DefaultAWSRegion, "S3_FORCE_PATH_STYLE": "true",
		"AWS_ACCESS_KEY_ID": creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
	}}
	e, err := p.engine()
	if err != nil {
		return off(err.Error())
	}
	if err := e.WriteConfig(); err != nil {
		return off(err.Error())
	}
	p.Settings = append(e.ServerSettings(), "unix_socket_directories="+sock)
	return p
}

func (p *devPITR) engine() (*pitr.Engine, error) {
	cfg, err := pitr.LoadConfig(func(k string) (string, bool) {
		if v, ok := p.env[k]; ok {
			return v, true
		}
		return os.LookupEnv(k)
	})
	if err != nil {
		return nil, err
	}
	return pitr.New(cfg)
}

// start finishes the setup once PostgreSQL runs: on dev's own cluster it writes the
// configuration with the cluster's port and password, creates the stanza and checks that a
// segment reaches the repository, and turns the pitr worker and its schedules on. When
// anything fails, PITR is off (with the reason) and the cluster restarts without archiving,
// so that it does not keep its WAL for an archiver that cannot succeed.
func (p *devPITR) start(ctx context.Context, cfg *config.Config, pg *pgcluster.Server, logger *slog.Logger) {
	if p.Off != "" {
		return
	}
	if pg.Source != pgcluster.SourceThrowaway {
		p.Off = notOwned(pg.Source)
		return
	}
	c := pg.Cluster()
	p.env["PITR_PG_PORT"], p.env["PITR_PG_PASSWORD"] = strconv.Itoa(c.Port), c.Password()
	err := func() error {
		e, err := p.engine()
		if err != nil {
			return err
		}
		if err := e.WriteConfig(); err != nil {
			return err
		}
		if err := e.StanzaCreate(ctx); err != nil {
			return err
		}
		return e.Check(ctx)
	}()
	if err != nil {
		p.Off = err.Error()
		logger.Warn("pitr: dev's archiving does not work; restarting PostgreSQL without it", "error", err)
		if rerr := pg.Restart(ctx, pgcluster.ClusterOptions{}); rerr != nil {
			logger.Error("pitr: restart PostgreSQL without archiving", "error", rerr)
		}
		return
	}
	cfg.PITR.Enabled = true
	cfg.PITR.Overrides = p.env
}

// firstBackup starts a full physical backup (PhysicalBackupWorkflow, not waited for) when
// the repository has none, so that a restore to a moment works soon after the first start
// rather than after the weekly schedule.
func (p *devPITR) firstBackup(ctx context.Context, tc client.Client, logger *slog.Logger) {
	if p.Off != "" {
		return
	}
	e, err := p.engine()
	if err != nil {
		return
	}
	info, err := e.Info(ctx)
	if err != nil || len(info.Backup) > 0 {
		return
	}
	_, err = tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "pitr-dev-first-full", TaskQueue: workflows.PITRTaskQueue},
		workflows.PhysicalBackupWorkflow, workflows.PhysicalBackupInput{Kind: string(pitr.Full)})
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if err != nil && !errors.As(err, &started) {
		logger.Warn("pitr: first full backup", "error", err)
	}
}

// banner is the banner's PITR line.
func (p *devPITR) banner(dataDir string) string {
	if p.Off != "" {
		return "PITR         off: " + p.Off
	}
	return fmt.Sprintf("PITR         on: pgBackRest archives the cluster's WAL into %s (prefix pgbackrest/, key %s)",
		p.Endpoint, filepath.Join(dataDir, "pitr-cipher-pass"))
}

// appendEnv adds pgBackRest's settings to the tour's env file (0600) when PITR is on, so that
// `orchestrator backup list` and `orchestrator restore --pitr` reach the repository after one
// `source .data/demo.env`: the HTTPS endpoint (PITR_S3_ENDPOINT, beside the application's plain
// one), its CA, the key's file, the cluster's password, and a configuration directory of the
// CLI's own (the running cluster's archive_command reads the worker's).
func (p *devPITR) appendEnv(path string) error {
	if p.Off != "" {
		return nil
	}
	cipherFile, err := filepath.Abs(p.CipherFile)
	if err != nil {
		return err
	}
	block := "\n# Point-in-time recovery (pgBackRest) of the dev cluster, for the CLI\n"
	for _, kv := range [][2]string{
		{"PITR_CIPHER_PASS_FILE", cipherFile}, {"PITR_S3_ENDPOINT", p.Endpoint}, {"PITR_S3_CA_FILE", p.env["PITR_S3_CA_FILE"]},
		{"PITR_DIR", p.env["PITR_DIR"] + "-cli"}, {"PITR_PG_PASSWORD", p.env["PITR_PG_PASSWORD"]},
		{"AWS_ACCESS_KEY_ID", p.env["AWS_ACCESS_KEY_ID"]}, {"AWS_SECRET_ACCESS_KEY", p.env["AWS_SECRET_ACCESS_KEY"]},
	} {
		block += "export " + kv[0] + "=" + shellQuote(kv[1]) + "\n"
	}
	return appendEnvFile(path, block)
}
