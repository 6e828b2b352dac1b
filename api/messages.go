package api

import (
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/google/uuid"

	"github.com/creatorvault/orchestrator/db"
)

// messageLimit is how many direct messages one user may send per minute, over REST and the
// WebSocket together, across every API instance.
var messageLimit = db.Limit{Max: 20, Window: time.Minute}

// registerMessages adds the endpoints of keys and end-to-end encrypted direct messages. The
// server stores and relays public keys, ciphertext and nonces; it never sees a plaintext or a
// private key (see the appclient package for the client side).
func (s *Server) registerMessages(g *gin.RouterGroup) {
	g.PUT("/keys", s.putKey)
	g.GET("/keys/:user_id", s.getKey)
	g.POST("/messages", s.postMessage)
	g.GET("/messages/conversations", s.listConversations)
	// GET takes the other user's id, DELETE a message's: one name, as OpenAPI requires.
	g.GET("/messages/:id", s.listMessages)
	g.POST("/messages/:message_id/read", s.markRead)
	g.DELETE("/messages/:id", s.deleteMessage)
}

// ---- keys ----

type keyJSON struct {
	UserID    uuid.UUID `json:"user_id"`
	PublicKey string    `json:"public_key"`
	UpdatedAt time.Time `json:"updated_at"`
}

func toKeyJSON(k db.PublicKey) keyJSON {
	return keyJSON{UserID: k.UserID, PublicKey: base64.StdEncoding.EncodeToString(k.Key), UpdatedAt: utc(k.UpdatedAt)}
}

type keyRequest struct {
	PublicKey string `json:"public_key"`
}

// putKey publishes the caller's X25519 public key (base64 of 32 bytes).
func (s *Server) putKey(c *gin.Context) {
	p := principal(c)
	var req keyRequest
	if !decodeJSON(c, &req) {
		return
	}
	key, err := base64.StdEncoding.Strict().DecodeString(req.PublicKey)
	if err != nil || len(key) != db.PublicKeyBytes {
		badRequest(c, "invalid_public_key", "public_key must be the base64 of a 32-byte X25519 public key")
		return
	}
	if !usableX25519Key(key) {
		badRequest(c, "invalid_public_key", "public_key is a low-order X25519 point: no shared secret can be agreed with it")
		return
	}
	k, created, err := db.PutPublicKey(c, s.pool, p.UserID, key, s.now())
	if err != nil {
		s.respondErr(c, err)
		return
	}
	s.audit(c, &p, "key.put", p.UserID.String(), "")
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, toKeyJSON(k))
}

// usableX25519Key reports whether key is a public key a sender can agree a secret with. An
// all-zero or other low-order point makes every X25519 result all zero (so messages to that
// user would be encrypted under a key anyone knows); crypto/ecdh refuses to return such a
// result, so one agreement with a throwaway private key tells them apart.
func usableX25519Key(key []byte) bool {
	pub, err := ecdh.X25519().NewPublicKey(key)
	if err != nil {
		return false
	}
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return false
	}
	_, err = priv.ECDH(pub)
	return err == nil
}

// getKey returns a user's public key; public keys are public to every authenticated caller.
func (s *Server) getKey(c *gin.Context) {
	id, ok := pathUUID(c, "user_id")
	if !ok {
		return
	}
	k, err := db.GetPublicKey(c, s.pool, id)
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, toKeyJSON(k))
}

// ---- messages ----

type messageJSON struct {
	ID               uuid.UUID  `json:"id"`
	SenderID         uuid.UUID  `json:"sender_id"`
	RecipientID      uuid.UUID  `json:"recipient_id"`
	EncryptedContent *string    `json:"encrypted_content"`
	Nonce            *string    `json:"nonce"`
	SentAt           time.Time  `json:"sent_at"`
	ReadAt           *time.Time `json:"read_at"`
	DeletedAt        *time.Time `json:"deleted_at"`
}

func toMessageJSON(m db.Message) messageJSON {
	out := messageJSON{ID: m.ID, SenderID: m.SenderID, RecipientID: m.RecipientID, SentAt: utc(m.SentAt),
		ReadAt: utcPtr(m.ReadAt), DeletedAt: utcPtr(m.DeletedAt)}
	if m.DeletedAt == nil {
		ct := base64.StdEncoding.EncodeToString(m.Ciphertext)
		n := base64.StdEncoding.EncodeToString(m.Nonce)
		out.EncryptedContent, out.Nonce = &ct, &n
	}
	return out
}

type messageRequest struct {
	RecipientID      string `json:"recipient_id"`
	EncryptedContent string `json:"encrypted_content"`
	Nonce            string `json:"nonce"`
}

// failure is a refusal that REST answers as an error body and the WebSocket as an Error
// frame.
type failure struct {
	Status     int
	Code       string
	Message    string
	RetryAfter int // seconds, for 429
}

func (f *failure) Error() string { return f.Message }

// parseMessageRequest checks a message request's fields without touching the database.
func parseMessageRequest(req messageRequest) (uuid.UUID, []byte, []byte, *failure) {
	bad := func(code, msg string) *failure {
		return &failure{Status: http.StatusBadRequest, Code: code, Message: msg}
	}
	if req.RecipientID == "" {
		return uuid.Nil, nil, nil, bad("missing_field", "recipient_id is required")
	}
	to, err := uuid.Parse(req.RecipientID)
	if err != nil {
		return uuid.Nil, nil, nil, bad("invalid_id", "recipient_id must be a UUID")
	}
	if base64.StdEncoding.DecodedLen(len(req.EncryptedContent)) > db.MaxCiphertextBytes+3 {
		return uuid.Nil, nil, nil, bad("invalid_encrypted_content", "encrypted_content must be at most 64 KiB")
	}
	ct, err := base64.StdEncoding.Strict().DecodeString(req.EncryptedContent)
	if err != nil {
		return uuid.Nil, nil, nil, bad("invalid_encrypted_content", "encrypted_content must be standard base64")
	}
	if len(ct) == 0 || len(ct) > db.MaxCiphertextBytes {
		return uuid.Nil, nil, nil, bad("invalid_encrypted_content", "encrypted_content must be 1 byte to 64 KiB")
	}
	nonce, err := base64.StdEncoding.Strict().DecodeString(req.Nonce)
	if err != nil || len(nonce) != db.NonceBytes {
		return uuid.Nil, nil, nil, bad("invalid_nonce", "nonce must be the standard base64 of 24 bytes")
	}
	return to, ct, nonce, nil
}

// sendMessage is the one delivery path of a direct message, for REST and the WebSocket:
// validation, then the rate limit, the tier rule, the insert, the NOTIFY to every instance's
// hub and the access-log row in one statement (one round trip; all or nothing).
func (s *Server) sendMessage(c *gin.Context, p Principal, req messageRequest) (db.Message, *failure) {
	to, ct, nonce, f := parseMessageRequest(req)
	if f != nil {
		return db.Message{}, f
	}
	r := s.sends.send(c, db.SendRequest{In: db.MessageInput{SenderID: p.UserID, RecipientID: to, Ciphertext: ct, Nonce: nonce},
		Limit: db.SendLimit{Bucket: "messages:" + p.UserID.String(), Limit: messageLimit}, Audit: s.accessEntry(c, &p), Now: s.now()})
	m, d, err := r.Message, r.Decision, r.Err
	switch {
	case err != nil:
		return db.Message{}, s.domainFailure(c, err)
	case !d.Allowed:
		secs := max(int(math.Ceil(d.RetryAfter.Seconds())), 1)
		return db.Message{}, &failure{Status: http.StatusTooManyRequests, Code: "rate_limited", RetryAfter: secs,
			Message: "messages: at most " + strconv.Itoa(messageLimit.Max) + " per minute; retry in " + strconv.Itoa(secs) + "s"}
	}
	return m, nil
}

// domainFailure maps a *db.Error like respondErr does; anything else is logged as a 500.
func (s *Server) domainFailure(c *gin.Context, err error) *failure {
	e, ok := db.AsError(err)
	if !ok {
		return s.internalFailure(c, err)
	}
	status := map[db.Kind]int{
		db.KindInvalid:   http.StatusUnprocessableEntity,
		db.KindConflict:  http.StatusConflict,
		db.KindNotFound:  http.StatusNotFound,
		db.KindForbidden: http.StatusForbidden,
	}[e.Kind]
	if status == 0 {
		status = http.StatusBadRequest
	}
	return &failure{Status: status, Code: e.Code, Message: e.Message}
}

func (s *Server) internalFailure(c *gin.Context, err error) *failure {
	s.logger.ErrorContext(c.Request.Context(), "request failed", "route", c.FullPath(), "error", err)
	return &failure{Status: http.StatusInternalServerError, Code: "internal", Message: "the server could not complete the request"}
}

func respondFailure(c *gin.Context, f *failure) {
	if f.RetryAfter > 0 {
		c.Header("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	fail(c, f.Status, f.Code, f.Message)
}

// postMessage sends a direct message.
func (s *Server) postMessage(c *gin.Context) {
	p := principal(c)
	var req messageRequest
	if !decodeJSON(c, &req) {
		return
	}
	m, f := s.sendMessage(c, p, req)
	if f != nil {
		respondFailure(c, f)
		return
	}
	c.JSON(http.StatusCreated, toMessageJSON(m))
}

type conversationJSON struct {
	UserID        uuid.UUID `json:"user_id"`
	LastMessageAt time.Time `json:"last_message_at"`
	UnreadCount   int       `json:"unread_count"`
}

// listConversations lists the caller's conversations, most recent first.
func (s *Server) listConversations(c *gin.Context) {
	p := principal(c)
	page, ok := pageParams(c)
	if !ok {
		return
	}
	convs, next, err := db.ListConversations(c, s.pool, p.UserID, page)
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(http.StatusOK, mapList(convs, next, func(v db.Conversation) conversationJSON {
		return conversationJSON{UserID: v.UserID, LastMessageAt: utc(v.LastMessageAt), UnreadCount: v.UnreadCount}
	}))
}

// listMessages lists the caller's history with one user, newest first. There is only ever
// the caller's own conversation to read: the other party is the path's user.
func (s *Server) listMessages(c *gin.Context) {
	p := principal(c)
	other, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	page, ok := pageParams(c)
	if !ok {
		return
	}
	msgs, next, err := db.ListMessages(c, s.pool, p.UserID, other, page)
	if err != nil {
		s.internalError(c, err)
		return
	}
	c.JSON(http.StatusOK, mapList(msgs, next, toMessageJSON))
}

// markRead records that the caller, the recipient, read a message.
func (s *Server) markRead(c *gin.Context) {
	p := principal(c)
	id, ok := pathUUID(c, "message_id")
	if !ok {
		return
	}
	m, err := db.MarkRead(c, s.pool, p.UserID, id, s.now())
	if err != nil {
		s.respondErr(c, err)
		return
	}
	c.JSON(http.StatusOK, toMessageJSON(m))
}

// deleteMessage soft-deletes a message, by its sender.
func (s *Server) deleteMessage(c *gin.Context) {
	p := principal(c)
	id, ok := pathUUID(c, "id")
	if !ok {
		return
	}
	m, err := db.DeleteMessage(c, s.pool, p.UserID, id, s.now())
	if err != nil {
		var e *db.Error
		if errors.As(err, &e) && e.Kind == db.KindNotFound {
			notFound(c, "message")
			return
		}
		s.respondErr(c, err)
		return
	}
	s.audit(c, &p, "message.delete", m.ID.String(), "")
	c.JSON(http.StatusOK, toMessageJSON(m))
}
