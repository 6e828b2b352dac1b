package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/creatorvault/orchestrator/backup"
	"github.com/creatorvault/orchestrator/db"
	"github.com/creatorvault/orchestrator/internal/objstore"
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
		Short: "List backups from the catalog (DATABASE_URL), newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pool, err := a.openPool(cmd.Context())
			if err != nil {
				return err
			}
			defer pool.Close()
			rows, err := db.ListBackups(cmd.Context(), pool, status, limit)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tKIND\tSTATUS\tSTARTED\tSTORED\tTABLES\tVERIFIED")
			for _, b := range rows {
				verified := "-"
				if b.VerifiedAt != nil {
					verified = b.VerifiedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", b.ID, b.Kind, b.Status, b.StartedAt.UTC().Format(time.RFC3339), b.StoredBytes, b.Tables, verified)
			}
			return w.Flush()
		},
	}
	list.Flags().IntVar(&limit, "limit", 50, "how many backups to show")
	list.Flags().StringVar(&status, "status", "", "only running, complete, failed or pruned")
	cmd.AddCommand(now, list)
	return cmd
}

func (a *app) restoreCmd() *cobra.Command {
	var ref, at, target, identity string
	var clean bool
	var jobs int
	cmd := &cobra.Command{
		Use:   "restore --backup <id|latest> [--at <time>] --target <database URL> --identity <file>",
		Short: "Restore a backup from S3 into a database, verify it and print the result",
		Long: "Downloads the backup (S3_ENDPOINT, S3_BUCKET), checks its SHA-256 against the manifest and that the\n" +
			"identity opens it before writing anything, restores it into --target and compares the data with the\n" +
			"manifest's fingerprint. The target must be empty unless --clean. Needs no catalog: works on a new server.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var atTime time.Time
			if at != "" {
				t, err := parseWhen(at)
				if err != nil {
					return err
				}
				atTime = t
			}
			ids, err := backup.ReadIdentities(identity)
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
			res, err := backup.Restore(ctx, st, backup.RestoreOptions{
				ID: m.ID, TargetURL: target, Identities: ids, Clean: clean, Jobs: jobs, PGBinDir: a.cfg.Backup.PGBinDir,
				Progress: bar.update,
			})
			bar.finish()
			if res != nil && len(res.Mismatches) > 0 {
				fmt.Fprintln(out, backup.Summary(res.Mismatches, len(res.Manifest.Tables)))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "restored in %s (download and verify %s, pg_restore %s, fingerprint %s)\n",
				(res.Download + res.Restore + res.Verify).Round(time.Millisecond), res.Download.Round(time.Millisecond),
				res.Restore.Round(time.Millisecond), res.Verify.Round(time.Millisecond))
			fmt.Fprintln(out, backup.Summary(nil, len(res.Tables)))
			// Backups are immutable; the erasure register is not restored. Every erasure
			// the backup does not hold as completed is applied again before the database
			// serves anyone.
			n, err := db.ReapplyErasuresTo(ctx, target, db.ErasureRegister{S3: s3c, Bucket: a.cfg.S3.Bucket}, time.Now())
			if err != nil {
				return fmt.Errorf("restored, but re-applying erasures failed (do not serve this database): %w", err)
			}
			fmt.Fprintf(out, "re-applied %d erasure(s) newer than the backup (erasure register)\n", n)
			return nil
		},
	}
	cmd.Flags().StringVar(&ref, "backup", "latest", "a backup id, or latest")
	cmd.Flags().StringVar(&at, "at", "", "with latest: the newest backup at or before this time (RFC 3339 or YYYY-MM-DD)")
	cmd.Flags().StringVar(&target, "target", "", "the database URL to restore into (required; must exist)")
	cmd.Flags().StringVar(&identity, "identity", "", "the age identity file that decrypts the backup (required)")
	cmd.Flags().BoolVar(&clean, "clean", false, "restore into a non-empty database, dropping the backup's objects first")
	cmd.Flags().IntVar(&jobs, "jobs", 1, "pg_restore --jobs; above 1 the dump is decrypted to a local file first")
	_ = cmd.MarkFlagRequired("target")
	_ = cmd.MarkFlagRequired("identity")
	return cmd
}

func (a *app) drillCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "drill", Short: "Restore fire drills"}
	var backupID string
	var wait bool
	run := &cobra.Command{
		Use:     "run",
		Aliases: []string{"now"},
		Short:   "Start a fire drill now on the drill task queue and wait for its report",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			tc, err := a.temporalClient(ctx)
			if err != nil {
				return err
			}
			defer tc.Close()
			r, err := tc.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: workflows.DrillWorkflowID(time.Now()), TaskQueue: workflows.DrillTaskQueue},
				workflows.DrillWorkflow, workflows.DrillInput{BackupID: backupID, RTOTarget: a.cfg.Backup.DrillRTOTarget})
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
