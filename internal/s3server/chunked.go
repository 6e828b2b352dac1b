package s3server

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// unsignedTrailer is how aws-sdk-go-v2 sends a body over HTTPS when it adds a checksum
// (its default since 2025): aws-chunked encoding, unsigned, the checksum in a trailer.
// gofakes3 decodes only the signed streaming form and would store the chunk framing as the
// object's bytes, so the store decodes this form before gofakes3 sees it, as S3 does.
const unsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

func decodeAWSChunked(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Amz-Content-Sha256") != unsignedTrailer {
			next.ServeHTTP(w, r)
			return
		}
		size, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
		if err != nil || size < 0 {
			http.Error(w, "aws-chunked body without a valid x-amz-decoded-content-length", http.StatusBadRequest)
			return
		}
		r.Body = struct {
			io.Reader
			io.Closer
		}{io.LimitReader(&chunkReader{r: bufio.NewReader(r.Body)}, size), r.Body}
		r.ContentLength = size
		r.Header.Set("Content-Length", strconv.FormatInt(size, 10))
		r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
		var enc []string
		for _, e := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
			if e = strings.TrimSpace(e); e != "" && e != "aws-chunked" {
				enc = append(enc, e)
			}
		}
		if len(enc) == 0 {
			r.Header.Del("Content-Encoding")
		} else {
			r.Header.Set("Content-Encoding", strings.Join(enc, ","))
		}
		next.ServeHTTP(w, r)
	})
}

// chunkReader reads the data of an aws-chunked body: "<hex size>[;ext]\r\n<data>\r\n" chunks
// up to a zero-size one, after which come the trailers (ignored).
type chunkReader struct {
	r    *bufio.Reader
	left int64
	done bool
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for c.left == 0 {
		if c.done {
			return 0, io.EOF
		}
		line, err := c.r.ReadString('\n')
		if err != nil {
			return 0, fmt.Errorf("aws-chunked body: %w", err)
		}
		sizeHex, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		n, err := strconv.ParseInt(strings.TrimSpace(sizeHex), 16, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("aws-chunked body: bad chunk size %q", sizeHex)
		}
		if n == 0 {
			c.done = true
			continue
		}
		c.left = n
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	c.left -= int64(n)
	if c.left == 0 && err == nil {
		_, err = c.r.Discard(2) // the chunk's closing CRLF
	}
	return n, err
}
