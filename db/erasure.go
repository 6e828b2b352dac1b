package db

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The right to be forgotten (issue 18). An erasure removes what identifies a person and keeps
// what others' records and the accounts need, in pseudonymised form:
//
//   - sessions revoked, refresh tokens, credentials (email, password hash), the public key,
//     presence rows: deleted;
//   - the users row: kept as a pseudonym (the id, now linked to nobody): display name replaced,
//     Stellar account removed, a creator's handle replaced; erased_at set;
//   - direct messages sent or received: ciphertext and nonce wiped (the envelope, who and
//     when, stays for the other party's conversation list);
//   - comments: content replaced by the tombstone (deleted_at set), replies keep their
//     place in the thread; the user's likes deleted;
//   - subscriptions and revenue events: kept, pointing at the pseudonymous id: accounting and
//     tax law require them (GDPR Art. 17(3)(b) with Art. 6(1)(c));
//   - access log: the user's rows re-keyed to a fresh random pseudonym, IP and user agent
//     cleared, so security analysis keeps the pattern but not the person.
//
// Each step is idempotent: running it again changes nothing more.

// ErasureCounts says what an erasure changed.
type ErasureCounts struct {
	SessionsRevoked    int `json:"sessions_revoked"`
	IdentityRows       int `json:"identity_rows"`
	MessagesWiped      int `json:"messages_wiped"`
	CommentsTombstoned int `json:"comments_tombstoned"`
	LikesRemoved       int `json:"likes_removed"`
	AccessLogRows      int `json:"access_log_rows"`
}

// Add sums two counts.
func (c ErasureCounts) Add(o ErasureCounts) ErasureCounts {
	return ErasureCounts{c.SessionsRevoked + o.SessionsRevoked, c.IdentityRows + o.IdentityRows,
		c.MessagesWiped + o.MessagesWiped, c.CommentsTombstoned + o.CommentsTombstoned,
		c.LikesRemoved + o.LikesRemoved, c.AccessLogRows + o.AccessLogRows}
}

// ErasedDisplayName replaces an erased user's display name.
const ErasedDisplayName = "Erased user"

// BeginErasure records that user's erasure was requested (the first request's time wins). It
// returns NotFound for a user that does not exist.
func BeginErasure(ctx context.Context, q Querier, user uuid.UUID, now time.Time) (time.Time, error) {
	var at time.Time
	err := q.QueryRow(ctx, `
		WITH u AS (SELECT id FROM users WHERE id = $1),
		     ins AS (INSERT INTO erasures (user_id, requested_at) SELECT id, $2 FROM u
		             ON CONFLICT (user_id) DO NOTHING RETURNING requested_at)
		SELECT requested_at FROM ins UNION ALL SELECT requested_at FROM erasures WHERE user_id = $1`, user, now).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, missing("user_not_found", "user not found")
	}
	return at, err
}

// Erasure is a recorded erasure.
type Erasure struct {
	UserID      uuid.UUID
	RequestedAt time.Time
	CompletedAt *time.Time
	Result      ErasureCounts
}

// GetErasure returns user's erasure record.
func GetErasure(ctx context.Context, q Querier, user uuid.UUID) (Erasure, error) {
	var e Erasure
	var raw []byte
	err := q.QueryRow(ctx, `SELECT user_id, requested_at, completed_at, result FROM erasures WHERE user_id = $1`, user).
		Scan(&e.UserID, &e.RequestedAt, &e.CompletedAt, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return Erasure{}, missing("erasure_not_found", "no erasure of this user")
	}
	if err != nil {
		return Erasure{}, err
	}
	_ = json.Unmarshal(raw, &e.Result)
	return e, nil
}

// CompleteErasure records the result (the first completion wins).
func CompleteErasure(ctx context.Context, q Querier, user uuid.UUID, c ErasureCounts, now time.Time) error {
	b, _ := json.Marshal(c)
	_, err := q.Exec(ctx, `UPDATE erasures SET completed_at = $2, result = $3 WHERE user_id = $1 AND completed_at IS NULL`, user, now, b)
	return err
}

// EraseSessions revokes every session of user and deletes their refresh tokens.
func EraseSessions(ctx context.Context, q Querier, user uuid.UUID, now time.Time) (ErasureCounts, error) {
	ids, err := RevokeUserSessions(ctx, q, user, "erased", now)
	if err != nil {
		return ErasureCounts{}, err
	}
	if _, err := q.Exec(ctx, `DELETE FROM refresh_tokens WHERE session_id IN (SELECT id FROM auth_sessions WHERE user_id = $1)`, user); err != nil {
		return ErasureCounts{}, err
	}
	if _, err := q.Exec(ctx, `UPDATE auth_sessions SET ip = '', user_agent = '' WHERE user_id = $1`, user); err != nil {
		return ErasureCounts{}, err
	}
	return ErasureCounts{SessionsRevoked: len(ids)}, nil
}

// EraseIdentity removes credentials, key, presence, display name, Stellar account and handle,
// and marks the user erased (which every API instance learns at once).
func EraseIdentity(ctx context.Context, q Querier, user uuid.UUID, now time.Time) (ErasureCounts, error) {
	n := 0
	for _, sql := range []string{
		`DELETE FROM credentials WHERE user_id = $1`,
		`DELETE FROM user_keys WHERE user_id = $1`,
		`DELETE FROM ws_sessions WHERE user_id = $1`,
		`DELETE FROM user_last_seen WHERE user_id = $1`,
	} {
		tag, err := q.Exec(ctx, sql, user)
		if err != nil {
			return ErasureCounts{}, err
		}
		n += int(tag.RowsAffected())
	}
	sum := sha256.Sum256([]byte(user.String()))
	tag, err := q.Exec(ctx, `UPDATE creators SET handle = $2, updated_at = $3 WHERE id = $1 AND handle <> $2`,
		user, "erased_"+hex.EncodeToString(sum[:])[:16], now)
	if err != nil {
		return ErasureCounts{}, err
	}
	n += int(tag.RowsAffected())
	tag, err = q.Exec(ctx, `
		UPDATE users SET display_name = $2, stellar_account = NULL, erased_at = COALESCE(erased_at, $3), updated_at = $3
		 WHERE id = $1 AND (erased_at IS NULL OR display_name <> $2 OR stellar_account IS NOT NULL)`, user, ErasedDisplayName, now)
	if err != nil {
		return ErasureCounts{}, err
	}
	n += int(tag.RowsAffected())
	return ErasureCounts{IdentityRows: n}, nil
}

// WipeMessages wipes the ciphertext and nonce of every message user sent or received, as a
// sender's delete does.
func WipeMessages(ctx context.Context, q Querier, user uuid.UUID, now time.Time) (ErasureCounts, error) {
	tag, err := q.Exec(ctx, `
		UPDATE messages SET deleted_at = COALESCE(deleted_at, $2), ciphertext = '\x00'::bytea, nonce = $3
		 WHERE (sender_id = $1 OR recipient_id = $1) AND (ciphertext <> '\x00'::bytea OR nonce <> $3 OR deleted_at IS NULL)`,
		user, now, make([]byte, 24))
	return ErasureCounts{MessagesWiped: int(tag.RowsAffected())}, err
}

// TombstoneComments replaces the content of user's comments by the tombstone (the thread
// keeps its shape: replies stay under it) and deletes the user's likes.
func TombstoneComments(ctx context.Context, q Querier, user uuid.UUID, now time.Time) (ErasureCounts, error) {
	tag, err := q.Exec(ctx, `
		UPDATE comments SET content = '', edited_at = NULL, deleted_at = COALESCE(deleted_at, $2), deleted_by = COALESCE(deleted_by, $1)
		 WHERE author_id = $1 AND (deleted_at IS NULL OR content <> '' OR edited_at IS NOT NULL)`, user, now)
	if err != nil {
		return ErasureCounts{}, err
	}
	likes, err := q.Exec(ctx, `DELETE FROM comment_likes WHERE user_id = $1`, user)
	return ErasureCounts{CommentsTombstoned: int(tag.RowsAffected()), LikesRemoved: int(likes.RowsAffected())}, err
}

// PseudonymiseAccessLog re-keys user's access-log rows (as actor, target or named in the
// detail) to pseudonym, and clears the IP and user agent of the rows the user acted in
// (others' rows keep theirs: they are the other person's data).
func PseudonymiseAccessLog(ctx context.Context, q Querier, user, pseudonym uuid.UUID) (ErasureCounts, error) {
	tag, err := q.Exec(ctx, `
		UPDATE access_log SET user_id = CASE WHEN user_id = $1 THEN $2 ELSE user_id END,
		       target = replace(target, $1::text, $2::text), detail = replace(detail, $1::text, $2::text),
		       ip = CASE WHEN user_id = $1 THEN '' ELSE ip END,
		       user_agent = CASE WHEN user_id = $1 THEN '' ELSE user_agent END
		 WHERE user_id = $1 OR strpos(target, $1::text) > 0 OR strpos(detail, $1::text) > 0`, user, pseudonym)
	return ErasureCounts{AccessLogRows: int(tag.RowsAffected())}, err
}

// EraseUser runs every database step of an erasure in one transaction: what a restore
// re-applies. A user the database does not hold is nothing to erase.
func EraseUser(ctx context.Context, pool *pgxpool.Pool, user uuid.UUID, now time.Time) (ErasureCounts, error) {
	var total ErasureCounts
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		total = ErasureCounts{}
		steps := []func() (ErasureCounts, error){
			func() (ErasureCounts, error) { return EraseSessions(ctx, tx, user, now) },
			func() (ErasureCounts, error) { return EraseIdentity(ctx, tx, user, now) },
			func() (ErasureCounts, error) { return WipeMessages(ctx, tx, user, now) },
			func() (ErasureCounts, error) { return TombstoneComments(ctx, tx, user, now) },
			func() (ErasureCounts, error) { return PseudonymiseAccessLog(ctx, tx, user, uuid.New()) },
		}
		for _, step := range steps {
			c, err := step()
			if err != nil {
				return err
			}
			total = total.Add(c)
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO erasures (user_id, requested_at) SELECT id, $2 FROM users WHERE id = $1
			ON CONFLICT (user_id) DO NOTHING`, user, now); err != nil {
			return err
		}
		return CompleteErasure(ctx, tx, user, total, now)
	})
	return total, err
}

// ---- the erasure register ----

// ErasureRegister lists every erasure, ids and times only, outside the database's reach: an
// object per erasure in the object store (under ErasureRegisterPrefix of the backup bucket).
// A restore brings back the database as it was, but never this register, so it re-applies
// what the register holds before the database serves anyone.
type ErasureRegister struct {
	S3     *s3.Client
	Bucket string
}

// ErasureRegisterPrefix is where the register's objects live; backup retention never touches
// it.
const ErasureRegisterPrefix = "erasure-register/"

// RegisteredErasure is one entry of the register.
type RegisteredErasure struct {
	UserID      uuid.UUID `json:"user_id"`
	RequestedAt time.Time `json:"requested_at"`
}

// Record writes user's entry (idempotent: the same key, the same content).
func (r ErasureRegister) Record(ctx context.Context, e RegisteredErasure) error {
	b, _ := json.Marshal(e)
	_, err := r.S3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(r.Bucket), Key: aws.String(ErasureRegisterPrefix + e.UserID.String() + ".json"),
		Body: strings.NewReader(string(b)), ContentType: aws.String("application/json")})
	if err != nil {
		return fmt.Errorf("erasure register: %w", err)
	}
	return nil
}

// List returns every entry of the register.
func (r ErasureRegister) List(ctx context.Context) ([]RegisteredErasure, error) {
	var out []RegisteredErasure
	p := s3.NewListObjectsV2Paginator(r.S3, &s3.ListObjectsV2Input{Bucket: aws.String(r.Bucket), Prefix: aws.String(ErasureRegisterPrefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("erasure register: list: %w", err)
		}
		for _, o := range page.Contents {
			obj, err := r.S3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(r.Bucket), Key: o.Key})
			if err != nil {
				return nil, fmt.Errorf("erasure register: read %s: %w", aws.ToString(o.Key), err)
			}
			b, err := io.ReadAll(io.LimitReader(obj.Body, 4096))
			obj.Body.Close()
			if err != nil {
				return nil, fmt.Errorf("erasure register: read %s: %w", aws.ToString(o.Key), err)
			}
			var e RegisteredErasure
			if err := json.Unmarshal(b, &e); err != nil || e.UserID == uuid.Nil {
				return nil, fmt.Errorf("erasure register: %s is not an entry", aws.ToString(o.Key))
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// ReapplyErasures erases again, in the database pool serves (a restored one), every user the
// register lists whose erasure that database does not record as completed: what a backup
// taken before the erasure (or while it ran) brought back. A completed erasure in the
// restored data means the backup was taken after its last step (a dump is one snapshot), so
// it is skipped. Call it after a restore and before the database serves anyone. It returns
// how many erasures it applied.
func ReapplyErasures(ctx context.Context, pool *pgxpool.Pool, reg ErasureRegister, now time.Time) (int, error) {
	entries, err := reg.List(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		var done bool
		if err := pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM erasures WHERE user_id = $1 AND completed_at IS NOT NULL)`, e.UserID).Scan(&done); err != nil {
			return n, fmt.Errorf("re-apply erasure of %s: %w", e.UserID, err)
		}
		if done {
			continue
		}
		if _, err := EraseUser(ctx, pool, e.UserID, now); err != nil {
			return n, fmt.Errorf("re-apply erasure of %s: %w", e.UserID, err)
		}
		n++
	}
	return n, nil
}

// ReapplyErasuresTo is ReapplyErasures on the database at databaseURL (a restore's target):
// the one hook restore and drills call.
func ReapplyErasuresTo(ctx context.Context, databaseURL string, reg ErasureRegister, now time.Time) (int, error) {
	pool, err := Open(ctx, databaseURL)
	if err != nil {
		return 0, err
	}
	defer pool.Close()
	return ReapplyErasures(ctx, pool, reg, now)
}
