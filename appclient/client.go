package appclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Client talks to the app API as one user, holding that user's key pair.
type Client struct {
	// BaseURL is the API's root, such as http://127.0.0.1:8080.
	BaseURL string
	// Token is the user's bearer token; UserID its subject. Set it before use; while the
	// client is in use, SetToken changes it (Realtime does when it renews an expired one).
	Token  string
	UserID uuid.UUID
	// Keys is the user's key pair.
	Keys *KeyPair
	// HTTP is the client used; nil means http.DefaultClient.
	HTTP *http.Client

	mu     sync.Mutex
	shared map[uuid.UUID][]byte

	// A signed-in client (SignIn) refreshes its access token by itself: ahead of its
	// expiry, and once after a 401.
	auth        sync.Mutex
	refresh     string
	expires     time.Time
	signedIn    bool
	SessionID   uuid.UUID
	currentRole string
}

// New returns a client for user with token and key pair.
func New(baseURL, token string, user uuid.UUID, keys *KeyPair) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, UserID: user, Keys: keys}
}

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	tok, err := c.accessToken(ctx)
	if err != nil {
		return err
	}
	err = c.send(req, tok, out)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusUnauthorized && c.canRefresh() {
		// The access token was refused (expired early, or the role changed): refresh once
		// and retry. A refused refresh (session ended) is the answer.
		if rerr := c.Refresh(ctx); rerr != nil {
			return rerr
		}
		if req, err = http.NewRequestWithContext(ctx, method, c.BaseURL+path, bytesOf(in)); err != nil {
			return err
		}
		if in != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		tok, _ := c.accessToken(ctx)
		return c.send(req, tok, out)
	}
	return err
}

func bytesOf(in any) io.Reader {
	if in == nil {
		return nil
	}
	b, _ := json.Marshal(in)
	return bytes.NewReader(b)
}

// send performs req with the bearer token and decodes the answer into out.
func (c *Client) send(req *http.Request, token string, out any) error {
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &e)
		return &APIError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// refreshAhead is how long before its expiry an access token is replaced.
const refreshAhead = 30 * time.Second

// tokenPair is the API's answer to a sign-in or refresh.
type tokenPair struct {
	AccessToken  string    `json:"access_token"`
	ExpiresIn    int       `json:"expires_in"`
	RefreshToken string    `json:"refresh_token"`
	SessionID    uuid.UUID `json:"session_id"`
	UserID       uuid.UUID `json:"user_id"`
	Role         string    `json:"role"`
}

// SignIn signs in with an email and password (POST /api/v1/auth/login) and returns a client
// that refreshes its access token by itself (POST /api/v1/auth/refresh) for as long as the
// session lasts. keys may be nil for a client that sends no messages.
func SignIn(ctx context.Context, baseURL, email, password string, keys *KeyPair) (*Client, error) {
	c := &Client{BaseURL: strings.TrimRight(baseURL, "/"), Keys: keys}
	if err := c.exchange(ctx, "/api/v1/auth/login", map[string]string{"email": email, "password": password}); err != nil {
		return nil, err
	}
	return c, nil
}

// exchange posts body to a sign-in endpoint and keeps the token pair it answers.
func (c *Client) exchange(ctx context.Context, path string, body any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.BaseURL+path, bytesOf(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	var p tokenPair
	if err := c.send(req, "", &p); err != nil {
		return err
	}
	c.Token, c.UserID = p.AccessToken, p.UserID
	c.refresh, c.SessionID, c.currentRole = p.RefreshToken, p.SessionID, p.Role
	c.expires = time.Now().Add(time.Duration(p.ExpiresIn) * time.Second)
	c.signedIn = true
	return nil
}

// SetToken replaces the bearer token of every later call and socket (a client made with New;
// a signed-in one refreshes its own).
func (c *Client) SetToken(token string) {
	c.auth.Lock()
	c.Token = token
	c.auth.Unlock()
}

// Role is the role of the signed-in user as of the last sign-in or refresh.
func (c *Client) Role() string {
	c.auth.Lock()
	defer c.auth.Unlock()
	return c.currentRole
}

func (c *Client) canRefresh() bool {
	c.auth.Lock()
	defer c.auth.Unlock()
	return c.signedIn && c.refresh != ""
}

// accessToken returns the token to send, refreshing it first when it is about to expire.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.auth.Lock()
	defer c.auth.Unlock()
	if c.signedIn && c.refresh != "" && time.Until(c.expires) < refreshAhead {
		if err := c.exchange(ctx, "/api/v1/auth/refresh", map[string]string{"refresh_token": c.refresh}); err != nil {
			return "", err
		}
	}
	return c.Token, nil
}

// Refresh exchanges the refresh token for a new pair now (the old refresh token is spent).
func (c *Client) Refresh(ctx context.Context) error {
	c.auth.Lock()
	defer c.auth.Unlock()
	if !c.signedIn || c.refresh == "" {
		return errors.New("appclient: not signed in with a password (SignIn)")
	}
	return c.exchange(ctx, "/api/v1/auth/refresh", map[string]string{"refresh_token": c.refresh})
}

// Logout ends the client's session (POST /api/v1/auth/logout); its tokens stop working.
func (c *Client) Logout(ctx context.Context) error {
	err := c.do(ctx, http.MethodPost, "/api/v1/auth/logout", nil, nil)
	c.auth.Lock()
	c.refresh, c.signedIn = "", false
	c.auth.Unlock()
	return err
}

// PublishKey publishes the client's public key.
func (c *Client) PublishKey(ctx context.Context) error {
	return c.do(ctx, http.MethodPut, "/api/v1/keys",
		map[string]string{"public_key": base64.StdEncoding.EncodeToString(c.Keys.PublicKey())}, nil)
}

// PublicKeyOf fetches a user's published public key.
func (c *Client) PublicKeyOf(ctx context.Context, user uuid.UUID) ([]byte, error) {
	var out struct {
		PublicKey string `json:"public_key"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/keys/"+user.String(), nil, &out); err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(out.PublicKey)
}

// sharedKey returns (and caches) the conversation key with peer.
func (c *Client) sharedKey(ctx context.Context, peer uuid.UUID) ([]byte, error) {
	c.mu.Lock()
	k, ok := c.shared[peer]
	c.mu.Unlock()
	if ok {
		return k, nil
	}
	pub, err := c.PublicKeyOf(ctx, peer)
	if err != nil {
		return nil, err
	}
	k, err = c.Keys.SharedKey(pub)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.shared == nil {
		c.shared = map[uuid.UUID][]byte{}
	}
	c.shared[peer] = k
	c.mu.Unlock()
	return k, nil
}

// Message is a direct message as the API returns it (ciphertext, base64).
type Message struct {
	ID               uuid.UUID  `json:"id"`
	SenderID         uuid.UUID  `json:"sender_id"`
	RecipientID      uuid.UUID  `json:"recipient_id"`
	EncryptedContent *string    `json:"encrypted_content"`
	Nonce            *string    `json:"nonce"`
	SentAt           time.Time  `json:"sent_at"`
	ReadAt           *time.Time `json:"read_at"`
	DeletedAt        *time.Time `json:"deleted_at"`
}

// Encrypt seals plaintext for recipient and returns the fields of a SendMessage or
// POST /api/v1/messages body (base64).
func (c *Client) Encrypt(ctx context.Context, recipient uuid.UUID, plaintext []byte) (content, nonce string, err error) {
	key, err := c.sharedKey(ctx, recipient)
	if err != nil {
		return "", "", err
	}
	ct, n, err := Seal(key, c.UserID, recipient, plaintext)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(ct), base64.StdEncoding.EncodeToString(n), nil
}

// Send encrypts plaintext for recipient and posts it.
func (c *Client) Send(ctx context.Context, recipient uuid.UUID, plaintext []byte) (Message, error) {
	content, nonce, err := c.Encrypt(ctx, recipient, plaintext)
	if err != nil {
		return Message{}, err
	}
	var m Message
	err = c.do(ctx, http.MethodPost, "/api/v1/messages",
		map[string]string{"recipient_id": recipient.String(), "encrypted_content": content, "nonce": nonce}, &m)
	return m, err
}

// DecryptFields opens a message given its sender, recipient and base64 fields (as a REST
// Message or a WebSocket NewMessage carries them). The client must be one of the two parties.
func (c *Client) DecryptFields(ctx context.Context, sender, recipient uuid.UUID, content, nonce string) ([]byte, error) {
	peer := sender
	if sender == c.UserID {
		peer = recipient
	}
	key, err := c.sharedKey(ctx, peer)
	if err != nil {
		return nil, err
	}
	ct, err := base64.StdEncoding.DecodeString(content)
	if err != nil {
		return nil, ErrDecrypt
	}
	n, err := base64.StdEncoding.DecodeString(nonce)
	if err != nil {
		return nil, ErrDecrypt
	}
	return Open(key, sender, recipient, ct, n)
}

// Decrypt opens a message of the client's.
func (c *Client) Decrypt(ctx context.Context, m Message) ([]byte, error) {
	if m.EncryptedContent == nil || m.Nonce == nil {
		return nil, fmt.Errorf("message %s was deleted", m.ID)
	}
	return c.DecryptFields(ctx, m.SenderID, m.RecipientID, *m.EncryptedContent, *m.Nonce)
}

// History returns one page of the conversation with peer, newest first, and the next cursor
// ("" at the end).
func (c *Client) History(ctx context.Context, peer uuid.UUID, after string, limit int) ([]Message, string, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out struct {
		Items      []Message `json:"items"`
		NextCursor *string   `json:"next_cursor"`
	}
	path := "/api/v1/messages/" + peer.String()
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	if err := c.do(ctx, http.MethodGet, path, nil, &out); err != nil {
		return nil, "", err
	}
	next := ""
	if out.NextCursor != nil {
		next = *out.NextCursor
	}
	return out.Items, next, nil
}

// Conversation is one of the user's conversations.
type Conversation struct {
	UserID        uuid.UUID `json:"user_id"`
	LastMessageAt time.Time `json:"last_message_at"`
	UnreadCount   int       `json:"unread_count"`
}

// Conversations returns the first page of the user's conversations.
func (c *Client) Conversations(ctx context.Context) ([]Conversation, error) {
	var out struct {
		Items []Conversation `json:"items"`
	}
	err := c.do(ctx, http.MethodGet, "/api/v1/messages/conversations", nil, &out)
	return out.Items, err
}

// MarkRead sends a read receipt for a message the user received.
func (c *Client) MarkRead(ctx context.Context, id uuid.UUID) error {
	return c.do(ctx, http.MethodPost, "/api/v1/messages/"+id.String()+"/read", nil, nil)
}

// Delete soft-deletes a message the user sent.
func (c *Client) Delete(ctx context.Context, id uuid.UUID) error {
	return c.do(ctx, http.MethodDelete, "/api/v1/messages/"+id.String(), nil, nil)
}
