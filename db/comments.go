package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// Limits of comments.
const (
	// MaxCommentDepth is the deepest a reply may sit: 0 is a top-level comment, so a thread
	// shows at most five levels. A reply to a comment at this depth is refused.
	MaxCommentDepth = 4
	// MaxCommentChars is the longest a comment may be, in characters (Unicode code points).
	MaxCommentChars = 10_000
	// RepliesPerThread is how many replies a thread carries in a page of threads; the rest
	// are paged with ListReplies, so no thread can make every page arbitrarily large.
	RepliesPerThread = 50
)

// Comment is a comment on a creator's page. A deleted comment keeps its place in its thread
// (its replies stay) but not its content.
type Comment struct {
	ID         uuid.UUID
	CreatorID  uuid.UUID
	AuthorID   uuid.UUID
	AuthorName string
	ParentID   *uuid.UUID
	RootID     uuid.UUID
	Depth      int
	Content    string
	CreatedAt  time.Time
	EditedAt   *time.Time
	DeletedAt  *time.Time
	LikeCount  int
	// LikedByMe is whether the user the comment was read for liked it.
	LikedByMe bool
	// Replies are the direct replies, oldest first (filled by ListCommentsFor).
	Replies []Comment
	// MoreReplies, on a top-level comment of a page of threads, is set when the thread has
	// more than RepliesPerThread replies: ListReplies after it returns the rest.
	MoreReplies *Cursor
}

// CommentInput is a new comment. The author comes from the caller's token, never the body.
type CommentInput struct {
	CreatorID uuid.UUID
	AuthorID  uuid.UUID
	ParentID  *uuid.UUID
	Content   string
}

// CommentViewer is who acts on a comment: a user id, and whether they are an admin (who reads and
// deletes on every page).
type CommentViewer struct {
	UserID uuid.UUID
	Admin  bool
}

func commentDenied(code, msg string) error {
	return &Error{Kind: KindForbidden, Code: code, Message: msg}
}

// commentGate is the SQL condition "user $u may write on creator $c's page at $at": the
// creator themself, or a fan whose subscription is active. FOR SHARE makes a cancellation or
// expiry being written at the same instant wait for, or be waited on by, the statement that
// uses it: either the comment is written before the cancellation or it is refused.
func commentGate(u, c, at string) string {
	return `(` + u + ` = ` + c + ` OR ` + activeSubscriptionSQL(u, c, at, "FOR SHARE") + `)`
}

// activeSubscriptionSQL is the SQL condition "fan u has an active subscription to creator c at
// at": active_subscription_level's rule (status active and period not yet over) written
// inline, which the planner folds into the statement; a function call costs a listing's
// gate more than the rest of it.
func activeSubscriptionSQL(u, c, at, lock string) string {
	return `EXISTS (SELECT 1 FROM subscriptions s
		 WHERE s.fan_id = ` + u + ` AND s.creator_id = ` + c + `
		   AND s.status = 'active' AND s.current_period_end > ` + at + ` ` + lock + `)`
}

// CreateComment writes a comment when its author may: the creator of the page, or a fan with
// an active subscription to them. The check and the insert are one statement. A reply must
// answer a live comment of the same page, at most MaxCommentDepth deep.
func CreateComment(ctx context.Context, q Querier, in CommentInput, now time.Time) (Comment, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Comment{}, err
	}
	tag, err := q.Exec(ctx, `
		INSERT INTO comments (id, creator_id, author_id, parent_id, root_id, depth, content, created_at)
		SELECT $1, $2, $3, p.id, coalesce(p.root_id, $1), coalesce(p.depth + 1, 0), $5, $6
		  FROM (SELECT 1) one
		  LEFT JOIN comments p ON p.id = $4::uuid AND p.creator_id = $2::uuid AND p.deleted_at IS NULL
		 WHERE ($4::uuid IS NULL OR (p.id IS NOT NULL AND p.depth < $7))
		   AND `+commentGate("$3::uuid", "$2::uuid", "$6::timestamptz"),
		id, in.CreatorID, in.AuthorID, in.ParentID, in.Content, now, MaxCommentDepth)
	switch pgCode(err) {
	case "":
	case codeForeignKeyViolation:
		return Comment{}, missing("creator_not_found", "there is no creator with this id")
	default:
		return Comment{}, err
	}
	if tag.RowsAffected() == 0 {
		return Comment{}, whyNoComment(ctx, q, in, now)
	}
	return GetComment(ctx, q, id, in.AuthorID)
}

// whyNoComment explains a refused comment. The decision was made atomically by the insert;
// this only finds the words for it.
func whyNoComment(ctx context.Context, q Querier, in CommentInput, now time.Time) error {
	if err := requireCreator(ctx, q, in.CreatorID, missing); err != nil {
		return err
	}
	ok, err := MayComment(ctx, q, in.AuthorID, in.CreatorID, now)
	if err != nil {
		return err
	}
	if !ok {
		return commentDenied("no_subscription", "commenting on this page needs an active subscription to the creator")
	}
	if in.ParentID == nil {
		return errors.New("comment insert refused for no known reason")
	}
	var depth int
	var deleted bool
	err = q.QueryRow(ctx, `SELECT depth, deleted_at IS NOT NULL FROM comments WHERE id = $1 AND creator_id = $2`,
		*in.ParentID, in.CreatorID).Scan(&depth, &deleted)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return invalid("parent_not_found", "parent_id is not a comment on this creator's page")
	case err != nil:
		return err
	case deleted:
		return invalid("parent_deleted", "the comment replied to has been deleted")
	case depth >= MaxCommentDepth:
		return invalid("depth_limit", "replies nest at most 4 levels deep; reply higher up the thread")
	}
	return errors.New("comment insert refused for no known reason")
}

// MayComment reports whether user may comment on and like comments of creator's page at now:
// the creator, or a fan with an active subscription.
func MayComment(ctx context.Context, q Querier, user, creator uuid.UUID, now time.Time) (bool, error) {
	if user == creator {
		return true, nil
	}
	_, ok, err := ActiveLevel(ctx, q, user, creator, now)
	return ok, err
}

// mayReadComments reports whether v reads creator's page: an admin, or whoever may write there.
func mayReadComments(ctx context.Context, q Querier, v CommentViewer, creator uuid.UUID, now time.Time) (bool, error) {
	if v.Admin {
		return true, nil
	}
	return MayComment(ctx, q, v.UserID, creator, now)
}

// CheckCommentReader fails unless v may read creator's comments: 404 for an unknown creator,
// 403 for a reader who is neither the creator, an active subscriber nor an admin.
func CheckCommentReader(ctx context.Context, q Querier, v CommentViewer, creator uuid.UUID, now time.Time) error {
	var found, allowed bool
	err := q.QueryRow(ctx, `SELECT g.found, g.allowed FROM (`+commentGateSQL+`) g`,
		creator, v.UserID, v.Admin, now).Scan(&found, &allowed)
	if err != nil {
		return err
	}
	return commentGateErr(found, allowed)
}

const commentColumns = `c.id, c.creator_id, c.author_id, u.display_name, c.parent_id, c.root_id, c.depth, c.content,
	c.created_at, c.edited_at, c.deleted_at, c.like_count,
	EXISTS (SELECT 1 FROM comment_likes l WHERE l.comment_id = c.id AND l.user_id = $2)`

// commentJoins adds the author's name. The like count is the comment's own column (kept by a
// trigger); whether $2 liked it is one primary-key lookup.
const commentJoins = ` JOIN users u ON u.id = c.author_id `

func scanComment(row pgx.Row) (Comment, error) {
	var c Comment
	err := row.Scan(&c.ID, &c.CreatorID, &c.AuthorID, &c.AuthorName, &c.ParentID, &c.RootID, &c.Depth, &c.Content,
		&c.CreatedAt, &c.EditedAt, &c.DeletedAt, &c.LikeCount, &c.LikedByMe)
	return c, err
}

// GetComment returns comment id as seen by viewer (for LikedByMe), without replies. It does
// not check that the viewer may read it.
func GetComment(ctx context.Context, q Querier, id, viewer uuid.UUID) (Comment, error) {
	c, err := scanComment(q.QueryRow(ctx, `SELECT `+commentColumns+` FROM comments c`+commentJoins+`WHERE c.id = $1`, id, viewer))
	if errors.Is(err, pgx.ErrNoRows) {
		return Comment{}, missing("comment_not_found", "comment not found")
	}
	return c, err
}

// CommentPageVersion is what a page of comments was read at (migration 00019): the version of
// its creator's page and the version of authors' display names. Every change that can alter a
// page moves one of them, in the change's own transaction, to a value never used before.
type CommentPageVersion struct {
	Page, Names int64
}

// CommentPage is a page of threads as ListCommentsFor returns it, with the version it was read
// at.
type CommentPage struct {
	Threads []Comment
	Next    *Cursor
	Version CommentPageVersion
}

// commentGateSQL is the reader's gate of a page (CheckCommentReader's rule) and the page's
// versions, for $1 the creator, $2 the reader, $3 whether the reader is an admin, $4 now.
var commentGateSQL = `SELECT EXISTS (SELECT 1 FROM creators WHERE id = $1) AS found,
	       $3::boolean OR $2::uuid = $1::uuid OR ` + activeSubscriptionSQL("$2::uuid", "$1::uuid", "$4::timestamptz", "") + ` AS allowed,
	       coalesce((SELECT version FROM comment_page_versions WHERE creator_id = $1), 0) AS page_version,
	       coalesce((SELECT version FROM comment_page_versions WHERE creator_id = '00000000-0000-0000-0000-000000000000'), 0) AS names_version`

func commentGateErr(found, allowed bool) error {
	switch {
	case !found:
		return missing("creator_not_found", "there is no creator with this id")
	case !allowed:
		return commentDenied("no_subscription", "this page's comments are for its subscribers")
	}
	return nil
}

// ListCommentsFor pages through creator's top-level comments as v reads them, newest first,
// each with its whole thread nested under it (replies oldest first), LikedByMe for v. The
// reader's gate (CheckCommentReader's rule: an admin, the creator, or an active subscriber at
// now) is part of the same statement: one round trip, and nothing is read for whom may not.
func ListCommentsFor(ctx context.Context, q Querier, v CommentViewer, creator uuid.UUID, now time.Time, p Page) ([]Comment, *Cursor, error) {
	pg, err := ReadCommentPage(ctx, q, v, creator, now, p)
	return pg.Threads, pg.Next, err
}

// ReadCommentPage is ListCommentsFor with the version the page was read at (in the same
// statement, so the same snapshot): while ProbeCommentPage finds that version, the page is
// unchanged.
func ReadCommentPage(ctx context.Context, q Querier, v CommentViewer, creator uuid.UUID, now time.Time, p Page) (CommentPage, error) {
	at, after := cursorArgs(p.After)
	rows, err := q.Query(ctx, `
		WITH gate AS MATERIALIZED (`+commentGateSQL+`
		), top AS (
			SELECT id, created_at FROM comments, gate
			 WHERE gate.found AND gate.allowed AND creator_id = $1 AND parent_id IS NULL
			   AND ($5::timestamptz IS NULL OR (created_at, id) < ($5, $6))
			 ORDER BY created_at DESC, id DESC
			 LIMIT $7)
		SELECT g.found, g.allowed, g.page_version, g.names_version, t.*
		  FROM gate g LEFT JOIN (
			SELECT r.* FROM top CROSS JOIN LATERAL (
				SELECT `+commentColumns+`
				  FROM comments c`+commentJoins+`
				 WHERE c.root_id = top.id
				 ORDER BY c.depth, c.created_at, c.id
				 LIMIT $8) r) t ON true
		 ORDER BY t.parent_id IS NULL DESC,
		       CASE WHEN t.parent_id IS NULL THEN t.created_at END DESC,
		       CASE WHEN t.parent_id IS NULL THEN t.id END DESC,
		       t.depth, t.created_at, t.id`,
		creator, v.UserID, v.Admin, now, at, after, p.Limit+1, RepliesPerThread+2) // the thread's top, its replies, one more
	if err != nil {
		return CommentPage{}, err
	}
	var found, allowed bool
	var ver CommentPageVersion
	flat, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Comment, error) {
		var c Comment
		var id, creatorID, author, root *uuid.UUID
		var name, content *string
		var depth, likes *int
		var created *time.Time
		var mine *bool
		err := r.Scan(&found, &allowed, &ver.Page, &ver.Names, &id, &creatorID, &author, &name, &c.ParentID, &root, &depth, &content,
			&created, &c.EditedAt, &c.DeletedAt, &likes, &mine)
		if err != nil || id == nil {
			return Comment{}, err
		}
		c.ID, c.CreatorID, c.AuthorID, c.AuthorName, c.RootID, c.Depth = *id, *creatorID, *author, *name, *root, *depth
		c.Content, c.CreatedAt, c.LikeCount, c.LikedByMe = *content, *created, *likes, *mine
		return c, nil
	})
	if err != nil {
		return CommentPage{}, err
	}
	if err := commentGateErr(found, allowed); err != nil {
		return CommentPage{}, err
	}
	if len(flat) == 1 && flat[0].ID == uuid.Nil {
		flat = nil // the page is empty: the one row is the gate's
	}
	flat, more := capReplies(flat)
	threads := nestComments(flat)
	for i := range threads {
		threads[i].MoreReplies = more[threads[i].ID]
	}
	items, next := pageOf(threads, p.Limit, func(c Comment) Cursor { return Cursor{At: c.CreatedAt, ID: c.ID} })
	return CommentPage{Threads: items, Next: next, Version: ver}, nil
}

// ProbeCommentPage is the small read that lets a page read earlier be served again: v's gate
// on creator's page at now (the same errors as ReadCommentPage), the page's current version,
// and which of ids (comments of that page) v likes, all in one statement.
func ProbeCommentPage(ctx context.Context, q Querier, v CommentViewer, creator uuid.UUID, now time.Time, ids []uuid.UUID) (CommentPageVersion, map[uuid.UUID]bool, error) {
	var found, allowed bool
	var ver CommentPageVersion
	var liked []uuid.UUID
	err := q.QueryRow(ctx, `SELECT g.*, CASE WHEN g.found AND g.allowed THEN ARRAY(
		SELECT comment_id FROM comment_likes WHERE user_id = $2 AND comment_id = ANY($5::uuid[])) END
		  FROM (`+commentGateSQL+`) g`,
		creator, v.UserID, v.Admin, now, ids).Scan(&found, &allowed, &ver.Page, &ver.Names, &liked)
	if err != nil {
		return ver, nil, err
	}
	if err := commentGateErr(found, allowed); err != nil {
		return ver, nil, err
	}
	mine := make(map[uuid.UUID]bool, len(liked))
	for _, id := range liked {
		mine[id] = true
	}
	return ver, mine, nil
}

// CommentGateKey is one reader of one creator's page of comments, as ProbeCommentGates reads
// it.
type CommentGateKey struct {
	Creator, Reader uuid.UUID
}

// CommentGateState is what ProbeCommentGates read for one key: the page's versions and what
// the reader's gate needs to be decided at any moment (Check).
type CommentGateState struct {
	// Found is whether the creator exists.
	Found bool
	// Until is the end of the period of the reader's active subscription to the creator (at
	// most one: subscriptions_one_live); not Valid when there is none.
	Until   pgtype.Timestamptz
	Version CommentPageVersion
}

// Check is the reader's gate at now, with ReadCommentPage's rule and errors: an admin, the
// creator, or a fan whose active subscription's period ends after now. (Timestamps are
// microseconds in the database and now goes to it truncated to them, so "the end is after now"
// decides here exactly as the statement would.)
func (s CommentGateState) Check(v CommentViewer, creator uuid.UUID, now time.Time) error {
	active := s.Until.Valid && (s.Until.InfinityModifier == pgtype.Infinity ||
		s.Until.InfinityModifier == pgtype.Finite && s.Until.Time.After(now))
	return commentGateErr(s.Found, v.Admin || v.UserID == creator || active)
}

// ProbeCommentGates is ProbeCommentPage without the likes for many readers at once, in one
// statement (so one snapshot): for each key, whether its creator exists, its reader's active
// subscription's end, and the page's versions. The API gathers the listings of concurrent
// requests into one call.
func ProbeCommentGates(ctx context.Context, q Querier, keys []CommentGateKey) ([]CommentGateState, error) {
	creators := make([]uuid.UUID, len(keys))
	readers := make([]uuid.UUID, len(keys))
	for i, k := range keys {
		creators[i], readers[i] = k.Creator, k.Reader
	}
	rows, err := q.Query(ctx, `SELECT EXISTS (SELECT 1 FROM creators WHERE id = k.creator),
	       (SELECT max(s.current_period_end) FROM subscriptions s
	         WHERE s.fan_id = k.reader AND s.creator_id = k.creator AND s.status = 'active'),
	       coalesce((SELECT version FROM comment_page_versions WHERE creator_id = k.creator), 0),
	       coalesce((SELECT version FROM comment_page_versions WHERE creator_id = '00000000-0000-0000-0000-000000000000'), 0)
	  FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS k(creator, reader, n)
	 ORDER BY k.n`, creators, readers)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (CommentGateState, error) {
		var s CommentGateState
		err := r.Scan(&s.Found, &s.Until, &s.Version.Page, &s.Version.Names)
		return s, err
	})
	if err == nil && len(out) != len(keys) {
		err = fmt.Errorf("probe comment gates: %d rows for %d keys", len(out), len(keys))
	}
	return out, err
}

// capReplies keeps at most RepliesPerThread replies of each thread, breadth first (by depth,
// then time), so every kept reply's parent is kept too. For a thread that had more, it
// returns the cursor of its last kept reply, keyed by the thread's top.
func capReplies(flat []Comment) ([]Comment, map[uuid.UUID]*Cursor) {
	kept := flat[:0:0]
	count := map[uuid.UUID]int{}
	last := map[uuid.UUID]Cursor{}
	more := map[uuid.UUID]*Cursor{}
	for _, c := range flat {
		if c.ParentID != nil {
			n := count[c.RootID] + 1
			count[c.RootID] = n
			if n > RepliesPerThread {
				cur := last[c.RootID]
				more[c.RootID] = &cur
				continue
			}
			last[c.RootID] = Cursor{At: c.CreatedAt, ID: c.ID}
		}
		kept = append(kept, c)
	}
	return kept, more
}

// ListReplies pages through the replies of comment id's thread as v reads them, after the
// ones a page of threads (or an earlier call) carried: flat, breadth first (by depth, then
// oldest first), each with its parent_id, so each reply's parent always came before it. The
// reader's rule is ListCommentsFor's; an unknown comment is a 404, a comment of a page v does
// not read a 403.
func ListReplies(ctx context.Context, q Querier, v CommentViewer, id uuid.UUID, now time.Time, p Page) ([]Comment, *Cursor, error) {
	var creator, root uuid.UUID
	err := q.QueryRow(ctx, `SELECT creator_id, root_id FROM comments WHERE id = $1`, id).Scan(&creator, &root)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil, missing("comment_not_found", "comment not found")
	}
	if err != nil {
		return nil, nil, err
	}
	if err := CheckCommentReader(ctx, q, v, creator, now); err != nil {
		return nil, nil, err
	}
	at, after := cursorArgs(p.After)
	rows, err := q.Query(ctx, `
		SELECT `+commentColumns+`
		  FROM comments c`+commentJoins+`
		 WHERE c.root_id = $1 AND c.parent_id IS NOT NULL
		   AND ($3::timestamptz IS NULL OR (c.depth, c.created_at, c.id) >
		        ((SELECT depth FROM comments WHERE id = $4 AND root_id = $1), $3, $4))
		 ORDER BY c.depth, c.created_at, c.id
		 LIMIT $5`, root, v.UserID, at, after, p.Limit+1)
	if err != nil {
		return nil, nil, err
	}
	replies, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Comment, error) { return scanComment(r) })
	if err != nil {
		return nil, nil, err
	}
	items, next := pageOf(replies, p.Limit, func(c Comment) Cursor { return Cursor{At: c.CreatedAt, ID: c.ID} })
	return items, next, nil
}

// nestComments builds threads from comments ordered top-level first (in page order), then replies by
// depth and time: top-level comments keep their order, replies sit under their parents
// oldest first.
func nestComments(flat []Comment) []Comment {
	children := map[uuid.UUID][]int{}
	var tops []int
	for i, c := range flat {
		if c.ParentID == nil {
			tops = append(tops, i)
			continue
		}
		children[*c.ParentID] = append(children[*c.ParentID], i)
	}
	var build func(i int) Comment
	build = func(i int) Comment {
		c := flat[i]
		c.Replies = make([]Comment, 0, len(children[c.ID]))
		for _, j := range children[c.ID] {
			c.Replies = append(c.Replies, build(j))
		}
		return c
	}
	out := make([]Comment, 0, len(tops))
	for _, i := range tops {
		out = append(out, build(i))
	}
	return out
}

// commentState is what the permission checks of edits, deletes and likes need.
type commentState struct {
	creator, author uuid.UUID
	deleted         bool
}

func getCommentState(ctx context.Context, q Querier, id uuid.UUID) (commentState, error) {
	var s commentState
	err := q.QueryRow(ctx, `SELECT creator_id, author_id, deleted_at IS NOT NULL FROM comments WHERE id = $1`, id).
		Scan(&s.creator, &s.author, &s.deleted)
	if errors.Is(err, pgx.ErrNoRows) {
		return s, missing("comment_not_found", "comment not found")
	}
	return s, err
}

// commentNotYours is the answer for a comment that exists but that the viewer may not act on: 403
// with reason when they can see the page, 404 when they cannot (its existence is not theirs
// to learn).
func commentNotYours(ctx context.Context, q Querier, v CommentViewer, s commentState, now time.Time, code, reason string) error {
	ok, err := mayReadComments(ctx, q, v, s.creator, now)
	if err != nil {
		return err
	}
	if !ok {
		return missing("comment_not_found", "comment not found")
	}
	return commentDenied(code, reason)
}

// EditComment replaces the content of the author's own live comment and stamps edited_at.
// The author must still be allowed to write on the page.
func EditComment(ctx context.Context, q Querier, id uuid.UUID, v CommentViewer, content string, now time.Time) (Comment, error) {
	tag, err := q.Exec(ctx, `
		UPDATE comments c SET content = $3, edited_at = $4
		 WHERE c.id = $1 AND c.author_id = $2 AND c.deleted_at IS NULL
		   AND `+commentGate("$2::uuid", "c.creator_id", "$4::timestamptz"),
		id, v.UserID, content, now)
	if err != nil {
		return Comment{}, err
	}
	if tag.RowsAffected() == 0 {
		s, err := getCommentState(ctx, q, id)
		if err != nil {
			return Comment{}, err
		}
		switch {
		case s.author != v.UserID:
			return Comment{}, commentNotYours(ctx, q, v, s, now, "not_author", "only the author edits a comment")
		case s.deleted:
			return Comment{}, conflict("comment_deleted", "a deleted comment cannot be edited")
		default:
			return Comment{}, commentDenied("no_subscription", "editing on this page needs an active subscription to the creator")
		}
	}
	return GetComment(ctx, q, id, v.UserID)
}

// DeleteComment soft-deletes a comment: its content is erased, its replies and likes stay.
// The author, the creator of the page, or an admin may. Deleting a deleted comment changes
// nothing and succeeds.
func DeleteComment(ctx context.Context, q Querier, id uuid.UUID, v CommentViewer, now time.Time) error {
	tag, err := q.Exec(ctx, `
		UPDATE comments SET content = '', deleted_at = $3, deleted_by = $2
		 WHERE id = $1 AND deleted_at IS NULL AND (author_id = $2 OR creator_id = $2 OR $4)`,
		id, v.UserID, now, v.Admin)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	s, err := getCommentState(ctx, q, id)
	if err != nil {
		return err
	}
	if s.author == v.UserID || s.creator == v.UserID || v.Admin {
		return nil // already deleted
	}
	return commentNotYours(ctx, q, v, s, now, "not_allowed", "only the author, the page's creator or an admin deletes a comment")
}

// CommentLikes is a comment's like count and whether the viewer is among them.
type CommentLikes struct {
	CommentID uuid.UUID
	Count     int
	LikedByMe bool
}

func getCommentLikes(ctx context.Context, q Querier, id, user uuid.UUID) (CommentLikes, error) {
	l := CommentLikes{CommentID: id}
	err := q.QueryRow(ctx, `SELECT like_count, EXISTS (SELECT 1 FROM comment_likes WHERE comment_id = $1 AND user_id = $2)
		FROM comments WHERE id = $1`, id, user).Scan(&l.Count, &l.LikedByMe)
	if errors.Is(err, pgx.ErrNoRows) {
		return l, missing("comment_not_found", "comment not found")
	}
	return l, err
}

// LikeComment records v's like of a live comment on a page they may write on; liking twice
// is one like.
func LikeComment(ctx context.Context, q Querier, id uuid.UUID, v CommentViewer, now time.Time) (CommentLikes, error) {
	tag, err := q.Exec(ctx, `
		INSERT INTO comment_likes (comment_id, user_id, created_at)
		SELECT c.id, $2, $3 FROM comments c
		 WHERE c.id = $1 AND c.deleted_at IS NULL
		   AND `+commentGate("$2::uuid", "c.creator_id", "$3::timestamptz")+`
		ON CONFLICT (comment_id, user_id) DO NOTHING`, id, v.UserID, now)
	if err != nil {
		return CommentLikes{}, err
	}
	if tag.RowsAffected() == 0 {
		s, err := getCommentState(ctx, q, id)
		if err != nil {
			return CommentLikes{}, err
		}
		l, err := getCommentLikes(ctx, q, id, v.UserID)
		if err != nil {
			return CommentLikes{}, err
		}
		if l.LikedByMe {
			return l, nil // liked already
		}
		may, err := MayComment(ctx, q, v.UserID, s.creator, now)
		switch {
		case err != nil:
			return CommentLikes{}, err
		case !may:
			return CommentLikes{}, commentNotYours(ctx, q, v, s, now, "no_subscription", "liking on this page needs an active subscription to the creator")
		case s.deleted:
			return CommentLikes{}, conflict("comment_deleted", "a deleted comment cannot be liked")
		}
		return CommentLikes{}, errors.New("like refused for no known reason")
	}
	return getCommentLikes(ctx, q, id, v.UserID)
}

// UnlikeComment removes v's like; unliking what v does not like changes nothing. The comment
// must be one v may read.
func UnlikeComment(ctx context.Context, q Querier, id uuid.UUID, v CommentViewer, now time.Time) (CommentLikes, error) {
	s, err := getCommentState(ctx, q, id)
	if err != nil {
		return CommentLikes{}, err
	}
	ok, err := mayReadComments(ctx, q, v, s.creator, now)
	if err != nil {
		return CommentLikes{}, err
	}
	if !ok {
		return CommentLikes{}, missing("comment_not_found", "comment not found")
	}
	if _, err := q.Exec(ctx, `DELETE FROM comment_likes WHERE comment_id = $1 AND user_id = $2`, id, v.UserID); err != nil {
		return CommentLikes{}, err
	}
	return getCommentLikes(ctx, q, id, v.UserID)
}
