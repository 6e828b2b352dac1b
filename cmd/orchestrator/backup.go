package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"filippo.io/age"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/objstore"
	"github.com/creatorvault/orchestrator/pitr"
	"github.com/creatorvault/orchestrator/recovery"
	"github.com/creatorvault/orchestrator/workflows"
)

// backupCommands are the operator commands of the backup domain.
func (a *app) backupCommands() []*cobra.Command {
	return []*cobra.Command{a.backupCmd(), a.restoreCmd(), a.drillCmd()}
}

// s3Client builds the S3 client from configuration; a loopback endpoint without AWS
// credentials in the environment is taken to be the dev store of `make run`.
func (a *app) s3Client(ctx context.Context) (*s3.Client, error) {
	opts := objstore.Options{}
	if u, err := url.Parse(a.cfg.S3.Endpoint); err == nil && a.cfg.S3.Endpoint != "" && os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		if h := u.Hostname(); h == "127.0.0.1" || h == "localhost" || h == "::1" {
			opts.StaticCredentials = objstore.DevCredentials()
		}
	}
	return objstore.NewClient(ctx, a.cfg.S3, opts)
}

func (a *app) backupCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "backup", Short: "Encrypted backups of the database"}
	var wait bool
	now := &cobra.Command{
		Use:   "now",
		Short: "Start a backup now on the backup task queue (TEMPORAL_ADDRESS) and wait for it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tc, err := a.temporalClient(ctx)
			if err != nil {
				return err
			}
			defer tc.Close()
			run, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.BackupWorkflowID(time.Now()), TaskQueue: workflows.BackupTaskQueue},
				workflows.BackupWorkflow, workflows.BackupInput{Kind: "manual"})
			if err != nil {
				return fmt.Errorf("start backup: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "backup started: workflow %s\n", run.GetID())
			if !wait {
				return nil
			}
			var res workflows.BackupResult
			if err := run.Get(ctx, &res); err != nil {
				return fmt.Errorf("backup failed: %w", err)
			}
			fmt.Fprintf(out, "backup %s complete: %d bytes stored, %d tables, sha256 %s\n", res.BackupID, res.StoredBytes, res.Tables, res.SHA256)
			if len(res.Pruned) > 0 {
				fmt.Fprintf(out, "retention pruned: %s\n", strings.Join(res.Pruned, ", "))
			}
			return nil
		},
	}
	now.Flags().BoolVar(&wait, "wait", true, "wait for the backup to finish")

	var limit int
	var status string
	list := &cobra.Command{
		Use:   "list",
		Short: "List backups, newest first: logical dumps (the store's manifests, reconciled into the catalog) and physical (pgBackRest)",
		Long: "Reads every manifest in the object store (the truth), makes the catalog agree with it (a backup the\n" +
			"catalog lacks is added; one whose manifest is gone is marked missing), prints the drift it found, then\n" +
			"lists the catalog, which also remembers failed and pruned attempts and which backups a drill verified.\n" +
			"With point-in-time recovery configured (PITR_CIPHER_PASS), the physical backups of pgBackRest's\n" +
			"repository follow, with their kind (full or diff).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			pool, err := a.openPool(ctx)
			if err != nil {
				return err
			}
			defer pool.Close()
			s3c, err := a.s3Client(ctx)
			if err != nil {
				return err
			}
			drift, err := recovery.ReconcileCatalog(ctx, pool, backup.Store{S3: s3c, Bucket: a.cfg.S3.Bucket})
			if err != nil {
				return err
			}
			if !drift.Empty() {
				fmt.Fprintln(cmd.ErrOrStderr(), drift.String())
			}
			rows, err := db.ListBackups(ctx, pool, status, limit)
			if err != nil {
				return err
			}
			physical, note, err := physicalBackups(ctx)
			if err != nil {
				return err
			}
			if note != "" {
				fmt.Fprintln(cmd.ErrOrStderr(), note)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tLAYER\tKIND\tSTATUS\tSTARTED\tSTORED\tTABLES\tVERIFIED")
			for _, b := range rows {
				verified := "-"
				if b.VerifiedAt != nil {
					verified = b.VerifiedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\tlogical\t%s\t%s\t%s\t%d\t%d\t%s\n", b.ID, b.Kind, b.Status, b.StartedAt.UTC().Format(time.RFC3339), b.StoredBytes, b.Tables, verified)
			}
			for i := len(physical) - 1; i >= 0; i-- {
				b := physical[i]
				st := "complete"
				if b.Error {
					st = "error"
				}
				if status != "" && status != st {
					continue
				}
				fmt.Fprintf(w, "%s\tphysical\t%s\t%s\t%s\t%d\t-\t-\n", b.Label, b.Type, st, b.Started().Format(time.RFC3339), b.Info.Repository.Size)
			}
			return w.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 50, "how many backups to show")
	list.Flags().StringVar(&status, "status", "", "only running, complete, failed, pruned or missing")
	cmd.AddCommand(now, list)
	return cmd
}

func (a *app) restoreCmd() *cobra.Command {
	var ref, at, target, identity, passphraseFile, temporalFile, temporalTarget, runtimeURL, treasuryURL string
	var clean, create, withTemporal, noOwner, pitrMode bool
	var jobs int
	var dataDir string
	cmd := &cobra.Command{
		Use: "restore --backup <id|latest> [--at <time>] --target <database URL> (--identity <file> | --passphrase-file <file>)\n" +
			"  orchestrator restore --pitr --at <RFC 3339> --data-dir <new data directory>",
		Short: "Restore a backup from S3 into a working system: roles, data with its owners, Temporal's state, serving check",
		Long: "Resolves the backup from the object store alone (S3_ENDPOINT, S3_BUCKET; no catalog: works on a new server),\n" +
			"checks that the identity or passphrase opens it and that the target is usable before touching anything,\n" +
			"creates the target database (--create), runs the role bootstrap, restores with the owners and grants the\n" +
			"source had, verifies the SHA-256 and the fingerprint, clears ephemeral rows (WebSocket sessions, rate-limit\n" +
			"buckets), reconciles the backup catalog with the store, restores Temporal's state (--with-temporal) and\n" +
			"ends with a serving check as the runtime role and the treasury login. --target connects an administrator.\n" +
			"The runbook from an empty machine is docs/DR.md.\n\n" +
			"With --pitr, restores pgBackRest's physical backup and WAL to the moment --at (RFC 3339) into a new data\n" +
			"directory (PITR_* and S3_* configure the repository; PITR_PG_PASSWORD is the postgres password), starts it,\n" +
			"lets it replay to the moment and promote, runs the serving check as DATABASE_URL's and\n" +
			"TREASURY_DATABASE_URL's users on it, prints the moment and the last transaction replayed, and shuts it\n" +
			"down cleanly, ready for the machine's service manager.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pitrMode {
				return a.restorePITR(cmd, at, dataDir, runtimeURL, treasuryURL)
			}
			if target == "" {
				return errors.New(`required flag "--target" not set (or --pitr)`)
			}
			var atTime time.Time
			if at != "" {
				t, err := parseWhen(at)
				if err != nil {
					return err
				}
				atTime = t
			}
			ids, err := restoreIdentities(identity, passphraseFile)
			if err != nil {
				return err
			}
			if jobs < 1 {
				return errors.New("--jobs must be at least 1")
			}
			passwords, err := a.rolePasswords()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			s3c, err := a.s3Client(ctx)
			if err != nil {
				return err
			}
			st := backup.Store{S3: s3c, Bucket: a.cfg.S3.Bucket}
			m, err := backup.Resolve(ctx, st, ref, atTime)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "restoring backup %s (%s, %d bytes stored) into %s\n", m.ID, m.StartedAt.Format(time.RFC3339), m.StoredBytes, redact(target))
			bar := newBar(cmd.ErrOrStderr())
			res, err := recovery.Restore(ctx, recovery.Options{
				Store: st, Manifest: m, TargetURL: target, Create: create, Clean: clean, NoOwner: noOwner,
				Identities: ids, Jobs: jobs, PGBinDir: a.cfg.Backup.PGBinDir,
				RuntimeURL: runtimeURL, TreasuryURL: treasuryURL, Passwords: passwords,
				RuntimeTemplate: a.cfg.DatabaseURL, TreasuryTemplate: a.cfg.Treasury.DatabaseURL,
				WithTemporal: withTemporal, TemporalFile: temporalFile, TemporalServerURL: temporalTarget,
				Progress: bar.update,
			})
			bar.finish()
			printRestore(out, m, res)
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&ref, "backup", "latest", "a backup id, or latest")
	f.StringVar(&at, "at", "", "with latest: the newest backup at or before this time (RFC 3339 or YYYY-MM-DD); with --pitr: the moment (RFC 3339)")
	f.BoolVar(&pitrMode, "pitr", false, "restore to the moment --at from pgBackRest's physical backups and WAL (point-in-time recovery)")
	f.StringVar(&dataDir, "data-dir", "", "with --pitr: the new data directory (must not exist or be empty)")
	f.StringVar(&target, "target", "", "the database URL to restore into, as an administrator (required)")
	f.StringVar(&identity, "identity", "", "the age identity file that decrypts the backup")
	f.StringVar(&passphraseFile, "passphrase-file", "", "the passphrase of a passphrase-mode backup (BACKUP_PASSPHRASE_FILE's file)")
	f.BoolVar(&create, "create", false, "create the target database when it does not exist")
	f.BoolVar(&clean, "clean", false, "restore into a non-empty database, dropping the backup's objects first")
	f.BoolVar(&noOwner, "no-owner", false, "restore everything as --target's user, without the source's owners and grants (docs/DR.md)")
	f.IntVar(&jobs, "jobs", 1, "pg_restore --jobs")
	f.BoolVar(&withTemporal, "with-temporal", false, "also restore Temporal's state from the backup")
	f.StringVar(&temporalFile, "temporal-file", "", "with --with-temporal: where the dev server's SQLite state goes (must not exist)")
	f.StringVar(&temporalTarget, "temporal-target", "", "with --with-temporal: an administrator's URL of the server that gets Temporal's PostgreSQL databases")
	f.StringVar(&runtimeURL, "runtime-url", "", "serving check: the runtime role's URL (default: the target as DATABASE_URL's user and password, else orchestrator_app)")
	f.StringVar(&treasuryURL, "treasury-url", "", "serving check: the treasury login's URL (default: the target as TREASURY_DATABASE_URL's user and password, else orchestrator_treasury_login)")
	cmd.MarkFlagsMutuallyExclusive("identity", "passphrase-file")
	return cmd
}

// physicalBackups lists pgBackRest's backups when point-in-time recovery is configured; when
// it is not, note says so.
func physicalBackups(ctx context.Context) ([]pitr.PhysicalBackup, string, error) {
	if os.Getenv("PITR_CIPHER_PASS") == "" && os.Getenv("PITR_CIPHER_PASS_FILE") == "" {
		return nil, "physical backups (point-in-time recovery): off, PITR_CIPHER_PASS is not set", nil
	}
	cfg, err := pitr.LoadConfig(os.LookupEnv)
	if err != nil {
		return nil, "", err
	}
	e, err := pitr.New(cfg)
	if err != nil {
		return nil, "", err
	}
	if err := e.WriteConfig(); err != nil {
		return nil, "", err
	}
	info, err := e.Info(ctx)
	if err != nil {
		return nil, "", err
	}
	if info.Status.Code != 0 && len(info.Backup) == 0 {
		return nil, fmt.Sprintf("physical backups (stanza %s): %s", cfg.Stanza, info.Status.Message), nil
	}
	return info.Sorted(), "", nil
}

// restorePITR is `restore --pitr`.
func (a *app) restorePITR(cmd *cobra.Command, at, dataDir, runtimeURL, treasuryURL string) error {
	if at == "" {
		return errors.New("--pitr needs --at <RFC 3339 moment>, e.g. 2026-12-07T03:04:05Z")
	}
	moment, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return fmt.Errorf("--at %q: not an RFC 3339 moment (e.g. 2026-12-07T03:04:05Z)", at)
	}
	if dataDir == "" {
		return errors.New("--pitr needs --data-dir, the new data directory to restore into")
	}
	if runtimeURL == "" {
		runtimeURL = a.cfg.DatabaseURL
	}
	if treasuryURL == "" {
		treasuryURL = a.cfg.Treasury.DatabaseURL
	}
	if runtimeURL == "" || treasuryURL == "" {
		return errors.New("the serving check needs DATABASE_URL and TREASURY_DATABASE_URL (or --runtime-url and --treasury-url)")
	}
	cfg, err := pitr.LoadConfig(os.LookupEnv)
	if err != nil {
		return err
	}
	e, err := pitr.New(cfg)
	if err != nil {
		return err
	}
	if err := e.WriteConfig(); err != nil {
		return err
	}
	ctx := cmd.Context()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "restoring stanza %s to %s into %s\n", cfg.Stanza, moment.UTC().Format(time.RFC3339Nano), dataDir)
	res, err := e.Restore(ctx, pitr.RestoreOptions{At: moment, DataDir: dataDir, Password: cfg.PGPassword,
		RuntimeURL: runtimeURL, TreasuryURL: treasuryURL})
	if res != nil {
		fmt.Fprintf(out, "from %s backup %s (ended %s)\n", res.Backup.Type, res.Backup.Label, res.Backup.Stopped().Format(time.RFC3339))
		for _, c := range res.Serving.Checks {
			mark := "ok"
			if !c.OK {
				mark = "FAILED: " + c.Error
			}
			fmt.Fprintf(out, "serving check  %-45s %-28s %s\n", c.Name, c.Role, mark)
		}
	}
	if err != nil {
		return err
	}
	last := "none replayed (the backup already held every commit before the moment)"
	if !res.LastTransaction.IsZero() {
		last = res.LastTransaction.Format(time.RFC3339Nano)
	}
	fmt.Fprintf(out, "recovered to %s\nlast transaction %s\n", res.Target.Format(time.RFC3339Nano), last)
	fmt.Fprintf(out, "restore %.1fs, recovery %.1fs; %s is shut down cleanly, ready to be started by the machine's service manager\n",
		res.RestoreSeconds, res.RecoverySeconds, dataDir)
	return nil
}

// restoreIdentities reads the identity file or the passphrase file (exactly one).
func restoreIdentities(identity, passphraseFile string) ([]age.Identity, error) {
	switch {
	case identity != "":
		return backup.ReadIdentities(identity)
	case passphraseFile != "":
		return backup.ReadPassphraseFile(passphraseFile)
	}
	return nil, errors.New("--identity or --passphrase-file is required")
}

// printRestore prints what a restore did, as far as it got.
func printRestore(out io.Writer, m *backup.Manifest, res *recovery.Result) {
	if res == nil {
		return
	}
	if r := res.Restore; r != nil {
		if len(r.Mismatches) > 0 {
			fmt.Fprintln(out, backup.Summary(r.Mismatches, len(m.Tables)))
		} else if len(r.Tables) > 0 {
			fmt.Fprintln(out, backup.Summary(nil, len(r.Tables)))
		}
	}
	if len(res.Cleared) > 0 {
		fmt.Fprintf(out, "ephemeral rows cleared: %s\n", strings.Join(res.Cleared, ", "))
	}
	if !res.Drift.Empty() {
		fmt.Fprintln(out, res.Drift.String())
	}
	if slices.ContainsFunc(res.Steps, func(s recovery.Step) bool { return s.Name == "re-apply erasures" }) {
		fmt.Fprintf(out, "re-applied %d erasure(s) newer than the backup (erasure register)\n", res.ErasuresReapplied)
	}
	if len(res.Temporal) > 0 {
		fmt.Fprintf(out, "Temporal state restored: %s\n", strings.Join(res.Temporal, ", "))
	}
	for _, c := range res.Serving.Checks {
		mark := "ok"
		if !c.OK {
			mark = "FAILED: " + c.Error
		}
		fmt.Fprintf(out, "serving check  %-45s %-28s %s\n", c.Name, c.Role, mark)
	}
	var total float64
	for _, s := range res.Steps {
		total += s.Seconds
		fmt.Fprintf(out, "  %-48s %8.2fs\n", s.Name, s.Seconds)
	}
	if res.Serving.OK {
		fmt.Fprintf(out, "restored and serving in %.1fs\n", total)
	}
}

func (a *app) drillCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "drill", Short: "Restore fire drills"}
	var backupID, kind string
	var wait bool
	run := &cobra.Command{
		Use:     "run",
		Aliases: []string{"now"},
		Short:   "Start a fire drill now on the drill task queue and wait for its report",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if kind == "" {
				kind = workflows.DefaultDrillKind(a.cfg.PITR.Enabled)
			} else if !workflows.ValidDrillKind(kind) {
				return fmt.Errorf("--kind=%s: want logical, pitr or both", kind)
			}
			tc, err := a.temporalClient(ctx)
			if err != nil {
				return err
			}
			defer tc.Close()
			r, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.DrillWorkflowID(time.Now()), TaskQueue: workflows.DrillTaskQueue},
				workflows.DrillWorkflow, workflows.DrillInput{BackupID: backupID, RTOTarget: a.cfg.Backup.DrillRTOTarget, Kind: kind})
			if err != nil {
				return fmt.Errorf("start drill: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "drill started: workflow %s\n", r.GetID())
			if !wait {
				return nil
			}
			var rep workflows.DrillResult
			if err := r.Get(ctx, &rep); err != nil {
				return fmt.Errorf("drill failed: %w", err)
			}
			return printJSON(cmd.OutOrStdout(), rep)
		},
	}
	run.Flags().StringVar(&backupID, "backup", "", "the backup to restore (default the newest complete one)")
	run.Flags().BoolVar(&wait, "wait", true, "wait for the drill to finish")
	run.Flags().StringVar(&kind, "kind", "", "logical, pitr or both (default both when PITR_CIPHER_PASS is set, else logical)")

	report := &cobra.Command{
		Use:   "report",
		Short: "Print the latest drill's report (DATABASE_URL)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := a.openPool(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			drills, err := db.ListDrills(cmd.Context(), pool, 1)
			if err != nil {
				return err
			}
			if len(drills) == 0 {
				return errors.New("no drill has run yet (orchestrator drill run)")
			}
			return printJSON(cmd.OutOrStdout(), drills[0])
		},
	}
	cmd.AddCommand(run, report)
	return cmd
}

func parseWhen(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t.Add(24*time.Hour - time.Nanosecond), nil
	}
	return time.Time{}, errors.New("--at must be RFC 3339 (2026-11-25T02:00:00Z) or a date (2026-11-25)")
}

// redact hides a URL's password.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(target)"
	}
	return u.Redacted()
}

// bar shows restore progress, one bar per phase.
type bar struct {
	w     io.Writer
	phase string
	pb    *progressbar.ProgressBar
}

func newBar(w io.Writer) *bar { return &bar{w: w} }

func (b *bar) update(phase string, done, total int64) {
	if phase != b.phase {
		b.finish()
		b.phase = phase
		b.pb = progressbar.NewOptions64(total, progressbar.OptionSetWriter(b.w), progressbar.OptionSetDescription(phase),
			progressbar.OptionShowBytes(true), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())
	}
	_ = b.pb.Set64(done)
}

func (b *bar) finish() {
	if b.pb != nil {
		_ = b.pb.Finish()
		b.pb = nil
	}
}
