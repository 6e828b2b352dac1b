package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stellar/go-stellar-sdk/keypair"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"sigs.k8s.io/yaml"

	"github.com/creatorvault/orchestrator/api"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/pgcluster"
	"github.com/creatorvault/orchestrator/internal/s3server"
	"github.com/creatorvault/orchestrator/internal/testharness"
	"github.com/creatorvault/orchestrator/workflows"
)

// composeService is what the replay reads of a service in docker-compose.yml.
type composeService struct {
	Build       any               `json:"build"`
	Command     any               `json:"command"`
	Environment map[string]string `json:"environment"`
	Volumes     []string          `json:"volumes"`
	Secrets     []string          `json:"secrets"`
}

var (
	composeVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?:(:?[-?])([^}]*))?\}`)
	secretVar  = regexp.MustCompile(`PASSWORD|SECRET|MINIO_ROOT_USER|_KEY`)
)

// interpolate does what `docker compose` does to the file's ${VAR}, ${VAR:-default} and
// ${VAR:?message} (comment lines are not interpolated), with vars as the shell's environment.
// It returns the names that fell back to a default and those that were required but unset.
func interpolate(file string, vars map[string]string) (out string, defaulted, missing []string) {
	var b strings.Builder
	for _, line := range strings.SplitAfter(file, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line)
			continue
		}
		b.WriteString(composeVar.ReplaceAllStringFunc(line, func(m string) string {
			p := composeVar.FindStringSubmatch(m)
			name, op, arg := p[1], p[2], p[3]
			if v, ok := vars[name]; ok && (v != "" || !strings.HasPrefix(op, ":")) {
				return v
			}
			switch op {
			case ":-", "-":
				defaulted = append(defaulted, name)
				return arg
			case ":?", "?":
				missing = append(missing, name)
			}
			return ""
		}))
	}
	return b.String(), defaulted, missing
}

// TestComposeStackReplay replays docker-compose.yml's order on this machine with the same
// scripts and the environment parsed from the file (service hosts mapped to loopback): init.sh
// against a fresh cluster, `db bootstrap` as the db-bootstrap service, `migrate up` as the
// migrate service, then the worker, drill-worker and api processes (the built binary) against
// the embedded Temporal server and the in-process S3 store. The API is ready, a yield is
// recorded, a backup is taken (pg_dump as orchestrator_backup, Temporal's databases with it) and
// restored by a fire drill on the separate drill server (postgres-drill), whose serving check
// passes, and a bailout is requested
// (reserved by the worker as the treasury login). No secret falls back to a default.
func TestComposeStackReplay(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docker-compose.yml"))
	require.NoError(t, err)

	// A fresh cluster: the postgres container's first start, with the service's command-line
	// settings (WAL archiving with pgBackRest), its container paths mapped to directories here.
	// (Under a directory the cluster's user can reach: archive_command reads pgBackRest's
	// configuration and the store's CA as that user.)
	dir, err := os.MkdirTemp("", "compose-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	paths := map[string]string{
		"/var/lib/orchestrator/pgbackrest": filepath.Join(dir, "pgbackrest"),
		"/var/lib/postgresql/data":         filepath.Join(dir, "pg"),
		"/var/run/postgresql":              filepath.Join(dir, "sock"),
	}
	mapPaths := func(v string) string {
		for from, to := range paths {
			v = strings.ReplaceAll(v, from, to)
		}
		return v
	}
	require.NoError(t, os.MkdirAll(paths["/var/run/postgresql"], 0o755))
	require.NoError(t, pgcluster.GiveToOwner(paths["/var/run/postgresql"]))
	settings := []string{"unix_socket_directories=" + paths["/var/run/postgresql"]} // the image's default
	settings = append(settings, postgresSettings(t, raw, mapPaths)...)
	cluster, err := pgcluster.StartCluster(ctx, filepath.Join(dir, "pg"), pgcluster.ClusterOptions{Ephemeral: true, Settings: settings})
	require.NoError(t, err)
	t.Cleanup(func() { _ = cluster.Stop() })
	superURL, err := url.Parse(cluster.URL("postgres"))
	require.NoError(t, err)
	superPW, _ := superURL.User.Password()
	pgAddr := superURL.Host
	// The postgres-drill container: a second, empty server for fire drills.
	drillCluster, err := pgcluster.StartCluster(ctx, filepath.Join(dir, "pg-drill"), pgcluster.ClusterOptions{Ephemeral: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = drillCluster.Stop() })
	drillURL, err := url.Parse(drillCluster.URL("postgres"))
	require.NoError(t, err)
	drillPW, _ := drillURL.User.Password()

	// The operator's shell: every secret set, each a fresh random value.
	council := make([]string, 5)
	for i := range council {
		council[i] = keypair.MustRandom().Address()
	}
	vars := map[string]string{
		"POSTGRES_PASSWORD":   superPW,
		"DRILL_DB_PASSWORD":   drillPW,
		"TREASURY_ACCOUNT":    keypair.MustRandom().Address(),
		"COUNCIL_PUBLIC_KEYS": strings.Join(council, ","),
		// Not a secret; keeps the test off the network.
		"HORIZON_URL": "http://127.0.0.1:1",
	}
	for _, v := range []string{"OWNER_DB_PASSWORD", "APP_DB_PASSWORD", "TREASURY_DB_PASSWORD", "BACKUP_DB_PASSWORD",
		"TEMPORAL_DB_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"} {
		vars[v] = "s" + hexID(12)
	}
	// Without a secret compose refuses to start: each is required.
	for name := range vars {
		if !secretVar.MatchString(name) {
			continue
		}
		less := map[string]string{}
		for k, v := range vars {
			if k != name {
				less[k] = v
			}
		}
		_, _, missing := interpolate(string(raw), less)
		require.Contains(t, missing, name, "compose must refuse to start without %s", name)
	}
	text, defaulted, missing := interpolate(string(raw), vars)
	require.Empty(t, missing)
	for _, d := range defaulted {
		require.False(t, secretVar.MatchString(d), "%s falls back to a default", d)
	}
	var compose struct {
		Services map[string]composeService `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal([]byte(text), &compose))
	svc := func(name string) composeService {
		s, ok := compose.Services[name]
		require.True(t, ok, "docker-compose.yml has no service %s", name)
		return s
	}
	// command: an orchestrator service's argument list.
	command := func(name string) []string {
		list, ok := svc(name).Command.([]any)
		require.True(t, ok && len(list) > 0, "service %s: command must be a list", name)
		out := make([]string, len(list))
		for i, a := range list {
			out[i] = fmt.Sprint(a)
		}
		return out
	}

	// The outside parts: Temporal (embedded) and the object store (in-process, serving TLS
	// as MinIO does with deploy/secrets/minio-tls; its certificate is the minio_ca secret).
	temporal := testharness.TemporalAddr(t)
	cert, caFile, err := s3server.LocalCert(filepath.Join(dir, "tls"), time.Hour)
	require.NoError(t, err)
	s3, err := s3server.StartTLS("127.0.0.1:0", "", cert)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s3.Close() })
	// Cleanups run last first: the archiving server stops while the store it archives to still
	// answers (else its last archive-push hangs and the shutdown waits for pgcluster's limit).
	t.Cleanup(func() { _ = cluster.Stop() })
	s3URL, err := url.Parse(s3.URL())
	require.NoError(t, err)
	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)

	// File secrets: ./deploy/secrets as the README makes them (the cluster's user reads the CA).
	secrets := filepath.Join(dir, "secrets")
	require.NoError(t, os.Mkdir(secrets, 0o711))
	require.NoError(t, os.WriteFile(filepath.Join(secrets, "minio_ca"), caPEM, 0o644))
	jwtSecret := hexID(32)
	id, err := age.GenerateX25519Identity()
	require.NoError(t, err)
	for name, body := range map[string]string{
		"jwt_secret": jwtSecret + "\n", "backup_identity": id.String() + "\n", "backup_recipients": id.Recipient().String() + "\n",
		"treasury_channels": keypair.MustRandom().Seed() + "\n", "pitr_cipher_pass": hexID(32) + "\n",
	} {
		require.NoError(t, os.WriteFile(filepath.Join(secrets, name), []byte(body), 0o600))
	}

	// Hosts of the compose network mapped to loopback; listeners on free ports.
	hosts := map[string]string{"postgres:5432": pgAddr, "postgres-drill:5432": drillURL.Host, "temporal:7233": temporal,
		"https://minio:9000": "https://localhost:" + s3URL.Port()}
	envOf := func(name string) []string {
		s := svc(name)
		var env []string
		for k, v := range s.Environment {
			for from, to := range hosts {
				v = strings.ReplaceAll(v, from, to)
			}
			if strings.HasPrefix(v, "0.0.0.0:") {
				v = freeAddr(t)
			}
			if strings.HasPrefix(v, "/run/secrets/") {
				v = filepath.Join(secrets, strings.TrimPrefix(v, "/run/secrets/"))
			}
			env = append(env, k+"="+mapPaths(v))
		}
		for _, sec := range s.Secrets {
			require.FileExists(t, filepath.Join(secrets, sec))
		}
		return env
	}
	get := func(env []string, key string) string {
		for _, e := range env {
			if k, v, _ := strings.Cut(e, "="); k == key {
				return v
			}
		}
		return ""
	}
	// No orchestrator service carries a password that is not one of the operator's.
	for name, s := range compose.Services {
		if s.Build == nil {
			continue
		}
		for k, v := range s.Environment {
			u, err := url.Parse(v)
			if err != nil || u.User == nil || !strings.HasPrefix(u.Scheme, "postgres") {
				continue
			}
			pw, ok := u.User.Password()
			require.True(t, ok && pw != "", "%s %s has no password", name, k)
			found := false
			for _, sv := range vars {
				found = found || sv == pw
			}
			require.True(t, found, "%s %s uses a password the operator did not set", name, k)
		}
	}

	// 1. postgres: init.sh, the file the compose file mounts, as the entrypoint runs it.
	pgSvc := svc("postgres")
	script := ""
	for _, v := range pgSvc.Volumes {
		if host, target, ok := strings.Cut(v, ":"); ok && strings.Contains(target, "docker-entrypoint-initdb.d") {
			script = filepath.Join("..", "..", host)
		}
	}
	require.NotEmpty(t, script, "the postgres service mounts an init script")
	initEnv := []string{"PATH=" + os.Getenv("PATH"), "PGHOST=" + superURL.Hostname(), "PGPORT=" + superURL.Port(), "PGPASSWORD=" + superPW, "PGSSLMODE=disable"}
	for k, v := range pgSvc.Environment {
		initEnv = append(initEnv, k+"="+v)
	}
	cmd := exec.CommandContext(ctx, "sh", script)
	cmd.Env = initEnv
	var initOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &initOut, &initOut
	require.NoError(t, cmd.Run(), "init.sh: %s", initOut.String())

	// temporal-schema: Temporal's two databases, made by its role (the worker backs them up).
	pgAdmin, err := db.Open(ctx, cluster.URL("postgres"))
	require.NoError(t, err)
	for _, name := range []string{"temporal", "temporal_visibility"} {
		_, err := pgAdmin.Exec(ctx, "CREATE DATABASE "+name+" OWNER temporal")
		require.NoError(t, err)
	}
	pgAdmin.Close()

	// 2. db-bootstrap, 3. migrate: one-shot services, run to completion in order.
	for _, name := range []string{"db-bootstrap", "migrate"} {
		code, out, stderr := run(t, envOf(name), command(name)...)
		require.Zero(t, code, "%s: %s%s", name, out, stderr)
	}
	migrateEnv := envOf("migrate")
	require.Contains(t, get(migrateEnv, "MIGRATE_DATABASE_URL"), "://"+db.OwnerRole+":", "migrate runs as the owner")

	// 4. worker, drill-worker, api.
	workerEnv, drillEnv, apiEnv, pitrEnv := envOf("worker"), envOf("drill-worker"), envOf("api"), envOf("pitr-worker")
	// The image's socket trusts local connections; this cluster asks for the password, and
	// listens on a port of its own.
	pitrEnv = append(pitrEnv, "PITR_PG_PASSWORD="+superPW, "PITR_PG_PORT="+superURL.Port())
	for _, env := range [][]string{workerEnv, drillEnv, apiEnv, pitrEnv} {
		require.Contains(t, get(env, "DATABASE_URL"), "://"+db.AppRole+":", "services run as the runtime role")
	}
	// The compose network's address of Temporal is the embedded server's here.
	require.Equal(t, temporal, get(workerEnv, "TEMPORAL_ADDRESS"))
	worker := start(t, workerEnv, command("worker")...)
	drill := start(t, drillEnv, command("drill-worker")...)
	pitrProc := start(t, pitrEnv, command("pitr-worker")...)
	apiProc := start(t, apiEnv, command("api")...)
	base := "http://" + get(apiEnv, "HTTP_ADDR")
	apiProc.waitHTTP(t, base+"/ready", http.StatusOK, time.Minute)
	worker.waitHTTP(t, "http://"+get(workerEnv, "METRICS_ADDR")+"/health", http.StatusOK, time.Minute)
	drill.waitHTTP(t, "http://"+get(drillEnv, "METRICS_ADDR")+"/health", http.StatusOK, time.Minute)
	pitrProc.waitHTTP(t, "http://"+get(pitrEnv, "METRICS_ADDR")+"/health", http.StatusOK, time.Minute)

	call := func(method, path string, role api.Role, body any) (int, []byte) {
		tok, err := api.IssueToken([]byte(jwtSecret), uuid.New(), role, time.Hour, time.Now())
		require.NoError(t, err)
		b, err := json.Marshal(body)
		require.NoError(t, err)
		req, err := http.NewRequestWithContext(ctx, method, base+path, bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var out bytes.Buffer
		_, _ = out.ReadFrom(resp.Body)
		return resp.StatusCode, out.Bytes()
	}

	// A yield recorded (the API writes through the treasury login).
	code, body := call(http.MethodPost, "/api/v1/treasury/yield", api.RoleService,
		map[string]any{"id": uuid.New(), "asset": "XLM", "gross_stroops": 100_000_000_000, "occurred_at": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)})
	require.Equal(t, http.StatusCreated, code, string(body))

	// A backup taken: the worker's pg_dump as orchestrator_backup, into the object store.
	backupEnv := []string{"TEMPORAL_ADDRESS=" + temporal, "TEMPORAL_NAMESPACE=default"}
	code, out, stderr := run(t, backupEnv, "backup", "now")
	require.Zero(t, code, "backup now: %s%s\nworker: %s", out, stderr, worker.Output())
	require.Contains(t, out, "complete:")

	// A fire drill on the drill worker: restores that backup on the drill server (never the
	// production one) with the roles bootstrapped there, verifies it and runs the serving check.
	code, out, stderr = run(t, backupEnv, "drill", "run")
	require.Zero(t, code, "drill run: %s%s\ndrill worker: %s", out, stderr, drill.Output())
	var rep struct {
		Outcome string `json:"outcome"`
		Serving struct {
			OK bool `json:"ok"`
		} `json:"serving"`
	}
	require.NoError(t, json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &rep), out)
	require.Equal(t, "pass", rep.Outcome, out)
	require.True(t, rep.Serving.OK, out)

	// A bailout requested: the worker's workflow reserves it as the treasury login.
	dest := keypair.MustRandom().Address()
	code, body = call(http.MethodPost, "/api/v1/bailouts", api.RoleCouncil,
		map[string]any{"asset": "XLM", "amount_stroops": 400_000_000, "destination": dest, "reason": "compose replay"})
	require.Equal(t, http.StatusAccepted, code, string(body))
	admin, err := db.Open(ctx, pgcluster.WithDatabase(cluster.URL("postgres"), "orchestrator"))
	require.NoError(t, err)
	defer admin.Close()
	require.Eventually(t, func() bool {
		var state string
		err := admin.QueryRow(ctx, `SELECT state FROM treasury.bailouts WHERE destination = $1`, dest).Scan(&state)
		return err == nil && state == "pending"
	}, time.Minute, 200*time.Millisecond, "the bailout is reserved; worker: %s", worker.Output())
	var reserved int64
	require.NoError(t, admin.QueryRow(ctx, `SELECT reserved_stroops FROM treasury.balances WHERE asset = 'XLM'`).Scan(&reserved))
	require.Equal(t, int64(400_000_000), reserved)

	// The roles are the bootstrap's: the runtime role is no treasury member, and the API and
	// workers logged in with the operator's passwords.
	var member bool
	require.NoError(t, admin.QueryRow(ctx, `SELECT pg_has_role('orchestrator_app', 'orchestrator_treasury', 'MEMBER')`).Scan(&member))
	require.False(t, member)
	// Point-in-time recovery: the server archives into the repository pitr-worker configured
	// (the stanza it made at start), a full physical backup runs on the pitr queue, and
	// `backup list` with pitr-worker's settings shows it.
	checkComposePITR(ctx, t, admin, temporal, pitrProc, pitrEnv, get(pitrEnv, "METRICS_ADDR"))
	for _, p := range []*proc{worker, drill, apiProc, pitrProc} {
		require.False(t, p.exited(), "still running: %s", p.Output())
		require.NotContains(t, p.Output(), vars["APP_DB_PASSWORD"], "no secret in the logs")
	}
	pass, err := os.ReadFile(filepath.Join(secrets, "pitr_cipher_pass"))
	require.NoError(t, err)
	require.NotContains(t, pitrProc.Output(), strings.TrimSpace(string(pass)), "no secret in the logs")
	t.Logf("replayed %d services", len(compose.Services))
}

// postgresSettings are the `-c name=value` settings of the postgres service's command, with
// container paths mapped.
func postgresSettings(t *testing.T, raw []byte, mapPaths func(string) string) []string {
	t.Helper()
	var compose struct {
		Services map[string]composeService `json:"services"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &compose))
	list, ok := compose.Services["postgres"].Command.([]any)
	require.True(t, ok, "the postgres service's command is a list")
	var out []string
	for i := 0; i+1 < len(list); i++ {
		if fmt.Sprint(list[i]) == "-c" {
			out = append(out, mapPaths(fmt.Sprint(list[i+1])))
		}
	}
	joined := strings.Join(out, " ")
	for _, want := range []string{"archive_mode=on", "wal_level=replica", "archive-push %p"} {
		require.Contains(t, joined, want, "the compose PostgreSQL archives its WAL")
	}
	return out
}

// checkComposePITR: WAL switched on the compose PostgreSQL reaches the repository, pitr-worker's
// /metrics shows the archiver, a full PhysicalBackupWorkflow succeeds on the pitr queue, and
// `orchestrator backup list` lists it as physical.
func checkComposePITR(ctx context.Context, t *testing.T, admin *pgxpool.Pool, temporal string, pitrProc *proc, pitrEnv []string, metricsAddr string) {
	t.Helper()
	var before int64
	require.NoError(t, admin.QueryRow(ctx, `SELECT archived_count FROM pg_stat_archiver`).Scan(&before))
	_, err := admin.Exec(ctx, `CREATE TABLE IF NOT EXISTS compose_pitr (n int); INSERT INTO compose_pitr VALUES (1)`)
	require.NoError(t, err)
	_, err = admin.Exec(ctx, `SELECT pg_switch_wal()`)
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		var n int64
		return admin.QueryRow(ctx, `SELECT archived_count FROM pg_stat_archiver`).Scan(&n) == nil && n > before
	}, time.Minute, 200*time.Millisecond, "the segment is archived; pitr-worker: %s", pitrProc.Output())
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	require.NoError(t, err)
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	resp.Body.Close()
	require.Contains(t, body.String(), "\norchestrator_pitr_archiving 1\n")

	tc, err := client.Dial(client.Options{HostPort: temporal})
	require.NoError(t, err)
	defer tc.Close()
	wf, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "compose-pitr-full", TaskQueue: workflows.PITRTaskQueue},
		workflows.PhysicalBackupWorkflow, workflows.PhysicalBackupInput{Kind: "full"})
	require.NoError(t, err)
	var res workflows.PhysicalBackupResult
	require.NoError(t, wf.Get(ctx, &res), "pitr-worker: %s", pitrProc.Output())
	require.Equal(t, "full", res.Backup.Kind)

	code, out, stderr := run(t, pitrEnv, "backup", "list")
	require.Zero(t, code, "backup list: %s%s", out, stderr)
	require.Regexp(t, `(?m)^`+regexp.QuoteMeta(res.Backup.Label)+`\s+physical\s+full\s`, out)
}
