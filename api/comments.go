package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/db"
)

// commentLimit is how many comments one user may post: 100 a minute, counted in PostgreSQL
// so that it holds across API instances.
var commentLimit = db.Limit{Max: 100, Window: time.Minute}

// registerComments adds the endpoints of subscriber-only threaded comments. A page's
// comments are read by its creator, its fans with an active subscription and admins; they
// are written and liked by its creator and its active subscribers.
func (s *Server) registerComments(g *gin.RouterGroup) {
	g.POST("/comments", s.createComment)
	// One parameter name per position: OpenAPI forbids paths that differ only by it. The id
	// is a creator's for GET, a comment's otherwise.
	g.GET("/comments/:id", s.listComments)
	g.PUT("/comments/:id", s.editComment)
	g.DELETE("/comments/:id", s.deleteComment)
	g.GET("/comments/:id/replies", s.listReplies)
	g.POST("/comments/:id/like", s.likeComment)
	g.DELETE("/comments/:id/like", s.unlikeComment)
}

func commentViewer(p Principal) db.CommentViewer {
	return db.CommentViewer{UserID: p.UserID, Admin: p.Role == RoleAdmin}
}

type commentJSON struct {
	ID         uuid.UUID  `json:"id"`
	CreatorID  uuid.UUID  `json:"creator_id"`
	AuthorID   uuid.UUID  `json:"author_id"`
	AuthorName string     `json:"author_name"`
	ParentID   *uuid.UUID `json:"parent_id"`
	Depth      int        `json:"depth"`
	// Content is null for a deleted comment.
	Content   *string       `json:"content"`
	Deleted   bool          `json:"deleted"`
	CreatedAt time.Time     `json:"created_at"`
	EditedAt  *time.Time    `json:"edited_at"`
	DeletedAt *time.Time    `json:"deleted_at"`
	LikeCount int           `json:"like_count"`
	LikedByMe bool          `json:"liked_by_me"`
	Replies   []commentJSON `json:"replies"`
	// MoreReplies is set on a top-level comment of a page of threads whose thread has more
	// replies than the page carries: GET /api/v1/comments/{id}/replies?after= pages the rest.
	MoreReplies *string `json:"more_replies,omitempty"`
}

func toCommentJSON(c db.Comment) commentJSON {
	out := commentJSON{ID: c.ID, CreatorID: c.CreatorID, AuthorID: c.AuthorID, AuthorName: c.AuthorName,
		ParentID: c.ParentID, Depth: c.Depth, Deleted: c.DeletedAt != nil, CreatedAt: utc(c.CreatedAt),
		EditedAt: utcPtr(c.EditedAt), DeletedAt: utcPtr(c.DeletedAt), LikeCount: c.LikeCount, LikedByMe: c.LikedByMe,
		Replies: make([]commentJSON, len(c.Replies))}
	if c.DeletedAt == nil {
		content := c.Content
		out.Content = &content
	}
	for i, r := range c.Replies {
		out.Replies[i] = toCommentJSON(r)
	}
	if c.MoreReplies != nil {
		cur := c.MoreReplies.Encode()
		out.MoreReplies = &cur
	}
	return out
}

// CreateCommentRequest is the body of POST /api/v1/comments. Content stays raw JSON until
// checked, so that invalid UTF-8 is refused rather than silently replaced.
type CreateCommentRequest struct {
	CreatorID string          `json:"creator_id"`
	Content   json.RawMessage `json:"content"`
	ParentID  *string         `json:"parent_id"`
}

// EditCommentRequest is the body of PUT /api/v1/comments/{comment_id}.
type EditCommentRequest struct {
	Content json.RawMessage `json:"content"`
}

// ParseCommentContent checks a comment's content as sent: a JSON string of valid UTF-8 (no
// invalid bytes, no unpaired surrogate escapes, no NUL), 1 to 10,000 characters, not only
// white space. It returns the content or a *DecodeError for a 400.
func ParseCommentContent(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return "", &DecodeError{Code: "missing_field", Message: "content is required"}
	}
	if raw[0] != '"' {
		return "", &DecodeError{Code: "wrong_type", Message: "field content must be a JSON string"}
	}
	if !utf8.Valid(raw) || !surrogatesPaired(raw) {
		return "", &DecodeError{Code: "invalid_utf8", Message: "content must be valid UTF-8"}
	}
	var content string
	if err := json.Unmarshal(raw, &content); err != nil {
		return "", &DecodeError{Code: "invalid_json", Message: "content is not a valid JSON string"}
	}
	switch n := utf8.RuneCountInString(content); {
	case n == 0 || strings.TrimSpace(content) == "":
		return "", &DecodeError{Code: "invalid_content", Message: "content must not be empty"}
	case n > db.MaxCommentChars:
		return "", &DecodeError{Code: "invalid_content", Message: "content must be at most 10000 characters"}
	case strings.ContainsRune(content, 0):
		return "", &DecodeError{Code: "invalid_content", Message: "content must not contain NUL characters"}
	}
	return content, nil
}

// surrogatesPaired reports whether every \u escape of a UTF-16 surrogate in the JSON string
// lit is a high surrogate directly followed by a low one (anything else decodes to U+FFFD).
func surrogatesPaired(lit []byte) bool {
	hex4 := func(b []byte) (rune, bool) {
		if len(b) < 4 {
			return 0, false
		}
		var r rune
		for _, c := range b[:4] {
			switch {
			case c >= '0' && c <= '9':
				r = r<<4 | rune(c-'0')
			case c >= 'a' && c <= 'f':
				r = r<<4 | rune(c-'a'+10)
			case c >= 'A' && c <= 'F':
				r = r<<4 | rune(c-'A'+10)
			default:
				return 0, false
			}
		}
		return r, true
	}
	for i := 0; i < len(lit); i++ {
		if lit[i] != '\\' || i+1 >= len(lit) {
			continue
		}
		if lit[i+1] != 'u' {
			i++ // a two-character escape such as \\ or \"
			continue
		}
		r, ok := hex4(lit[i+2:])
		if !ok {
			return false
		}
		i += 5
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return false
		case r >= 0xD800 && r <= 0xDBFF:
			if i+6 >= len(lit) || lit[i+1] != '\\' || lit[i+2] != 'u' {
				return false
			}
			lo, ok := hex4(lit[i+3:])
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return false
			}
			i += 6
		}
	}
	return true
}

func commentContent(c *gin.Context, raw json.RawMessage) (string, bool) {
	content, err := ParseCommentContent(raw)
	if err != nil {
		de := err.(*DecodeError)
		badRequest(c, de.Code, de.Message)
		return "", false
	}
	return content, true
}

func (s *Server) createComment(c *gin.Context) {
	p := principal(c)
	var req CreateCommentRequest
	if !decodeJSON(c, &req) {
		return
	}
	creator, ok := fieldUUID(c, "creator_id", req.CreatorID)
	if !ok {
		return
	}
	parent, ok := optionalUUID(c, "parent_id", req.ParentID)
	if !ok {
		return
	}
	content, ok := commentContent(c, req.Content)
	if !ok {
		return
	}
	if !s.allow(c, "comments:"+p.UserID.String(), commentLimit, "comments") {
		return
	}
	cm, err := db.CreateComment(c, s.pool, db.CommentInput{CreatorID: creator, AuthorID: p.UserID, ParentID: parent, Content: content}, s.now())
	if err != nil {
		s.respondErr(c, err)
		return
	}
	s.audit(c, &p, "comment.create", cm.ID.String(), "creator "+creator.String())
	c.JSON(http.StatusCreated, toCommentJSON(cm))
}

func (s *Server) listComments(c *gin.Context) {
	p := principal(c)
	creator, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	page, ok := pageParams(c)
	if !ok {
		return
	}
	body, err := s.comments.list(c, s.pool, commentViewer(p), creator, s.now(), page)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	// With its length declared, net/http writes the kept JSON as it is instead of in chunks.
	c.Header("Content-Length", strconv.Itoa(len(body)))
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

// listReplies pages the replies of a thread beyond those a page of threads carries (see
// db.ListReplies): flat, each with its parent_id.
func (s *Server) listReplies(c *gin.Context) {
	p := principal(c)
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	page, ok := pageParams(c)
	if !ok {
		return
	}
	replies, next, err := db.ListReplies(c, s.pool, commentViewer(p), id, s.now(), page)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, mapList(replies, next, toCommentJSON))
}

func (s *Server) editComment(c *gin.Context) {
	p := principal(c)
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	var req EditCommentRequest
	if !decodeJSON(c, &req) {
		return
	}
	content, ok := commentContent(c, req.Content)
	if !ok {
		return
	}
	cm, err := db.EditComment(c, s.pool, id, commentViewer(p), content, s.now())
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, toCommentJSON(cm))
}

func (s *Server) deleteComment(c *gin.Context) {
	p := principal(c)
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	if err := db.DeleteComment(c, s.pool, id, commentViewer(p), s.now()); err != nil {
		s.respondErr(c, err)
		return
	}
	s.audit(c, &p, "comment.delete", id.String(), "")
	c.Status(http.StatusNoContent)
}

type likesJSON struct {
	CommentID uuid.UUID `json:"comment_id"`
	LikeCount int       `json:"like_count"`
	LikedByMe bool      `json:"liked_by_me"`
}

type likeFunc func(ctx context.Context, q db.Querier, id uuid.UUID, v db.CommentViewer, now time.Time) (db.CommentLikes, error)

// likeComment likes a comment (idempotent: one like per user).
func (s *Server) likeComment(c *gin.Context) { s.likeOrUnlike(c, db.LikeComment) }

// unlikeComment takes the caller's like back (idempotent).
func (s *Server) unlikeComment(c *gin.Context) { s.likeOrUnlike(c, db.UnlikeComment) }

func (s *Server) likeOrUnlike(c *gin.Context, f likeFunc) {
	p := principal(c)
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	l, err := f(c, s.pool, id, commentViewer(p), s.now())
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, likesJSON{CommentID: l.CommentID, LikeCount: l.Count, LikedByMe: l.LikedByMe})
}
