// Package fuzz holds the fuzzers of the API's request decoders (make fuzz). They live apart
// from the api package's tests so that the instrumented fuzz build takes only what the decoders
// need, not the embedded Temporal server the api tests start (a cold CI run built ~2,000
// instrumented packages for them before, ~800 now). Their seed corpora also run in make test.
package fuzz

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/creatorvault/orchestrator/api"
	"github.com/creatorvault/orchestrator/db"
)

// FuzzCommentRequest feeds arbitrary bodies to the decoding of POST /api/v1/comments (and,
// through the content, PUT): it never panics, and whatever it accepts is content the database
// takes: valid UTF-8, 1 to 10,000 characters, no NUL, and exactly what the JSON said.
// Run longer with: go test ./api/fuzz/ -run '^$' -fuzz FuzzCommentRequest -fuzztime 30s
func FuzzCommentRequest(f *testing.F) {
	for _, seed := range []string{
		`{"creator_id":"0b7c2a44-1f8e-4c1e-9a57-1c6e2f3d4b5a","content":"hello"}`,
		`{"creator_id":"0b7c2a44-1f8e-4c1e-9a57-1c6e2f3d4b5a","content":"pair \ud83c\udfb6","parent_id":null}`,
		`{"content":"half \ud800 a pair"}`,
		`{"content":"\udc00\ud800"}`,
		`{"content":"esc \\ud800 not a surrogate"}`,
		"{\"content\":\"bad \xff byte\"}",
		`{"content":"a\u0000b"}`,
		`{"content":"   "}`,
		`{"content":7}`,
		`{"content":null}`,
		`{"content":"` + strings.Repeat("é", db.MaxCommentChars) + `"}`,
		`{"creator_id":"x","content":"y","extra":1}`,
		`[]`, `{`, ``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req api.CreateCommentRequest
		if err := api.DecodeStrict(bytes.NewReader(body), &req); err != nil {
			return
		}
		content, err := api.ParseCommentContent(req.Content)
		if err != nil {
			if _, ok := err.(*api.DecodeError); !ok {
				t.Fatalf("not a DecodeError: %v", err)
			}
			return
		}
		n := utf8.RuneCountInString(content)
		if !utf8.ValidString(content) || n < 1 || n > db.MaxCommentChars || strings.ContainsRune(content, 0) {
			t.Fatalf("accepted bad content %q", content)
		}
		// What was accepted is what the JSON said: a lossless round trip.
		again, err := json.Marshal(content)
		if err != nil {
			t.Fatal(err)
		}
		back, err := api.ParseCommentContent(again)
		if err != nil || back != content {
			t.Fatalf("round trip of %q: %q, %v", content, back, err)
		}
		if strings.ContainsRune(content, utf8.RuneError) && !bytes.Contains(req.Content, []byte("\uFFFD")) &&
			!bytes.Contains(bytes.ToLower(req.Content), []byte(`\ufffd`)) {
			t.Fatalf("content %q holds a replacement character the body did not send", content)
		}
	})
}

// FuzzDecodeMessageRequest: decoding and checking a message body never panics, and whatever
// passes has a UUID recipient, 1 byte to 64 KiB of ciphertext and a 24-byte nonce.
func FuzzDecodeMessageRequest(f *testing.F) {
	f.Add(`{"recipient_id":"` + uuid.NewString() + `","encrypted_content":"` + randomB64(10) + `","nonce":"` + randomB64(24) + `"}`)
	f.Add(`{"recipient_id":1}`)
	f.Add(`{"nonce":"AAAA"} {}`)
	f.Fuzz(func(t *testing.T, body string) {
		var req api.MessageRequest
		if err := api.DecodeStrict(strings.NewReader(body), &req); err != nil {
			return
		}
		to, ct, nonce, fl := api.ParseMessageRequest(req)
		if fl != nil {
			require.Equal(t, http.StatusBadRequest, fl.Status)
			return
		}
		require.NotEqual(t, uuid.Nil.String()+"x", to.String())
		require.Len(t, nonce, 24)
		require.NotEmpty(t, ct)
		require.LessOrEqual(t, len(ct), 64<<10)
	})
}

func randomB64(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}
