package api

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/creatorvault/orchestrator/db"
)

// commentPageCacheBytes bounds what one API instance keeps of pages of comments it has read
// (an estimate of the kept threads plus the answers kept per reader).
const commentPageCacheBytes = 32 << 20

var commentPageReads = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "orchestrator_comment_page_reads_total",
	Help: "Listings of a creator's comments, by how they were answered: kept (page and reader's answer kept), liked (page kept, the reader's likes read), read (the page read in full).",
}, []string{"result"})

// commentPages keeps pages of comment threads an instance has read, so that a listing costs one
// small statement (db.ProbeCommentPage: the reader's gate, the page's version, the reader's
// likes; or, when the reader's answer is kept too, a share of a db.ProbeCommentGates statement
// with concurrent listings, see commentGates) instead of reading up to 50 threads again. A kept
// page is served only while the database still holds the version it was read at, and the gate
// is checked on every request: answers are exactly what a full read would give, on every
// instance, with no invalidation messages to miss.
type commentPages struct {
	mu      sync.Mutex
	pages   map[commentPageKey]*keptPage
	readers map[commentReaderKey]*keptAnswer
	size    int // estimated bytes kept
	limit   int
	gates   commentGates
	// kept, liked and read count this instance's listings by result (the metric's labels).
	kept, liked, read atomic.Int64
}

// commentPageKey is one page of one creator's threads: the cursor it starts after and its size.
type commentPageKey struct {
	creator  uuid.UUID
	hasAfter bool
	afterAt  int64
	afterID  uuid.UUID
	limit    int
}

// commentReaderKey is a page as one user reads it (liked_by_me is theirs).
type commentReaderKey struct {
	page   commentPageKey
	reader uuid.UUID
}

type keptPage struct {
	version db.CommentPageVersion
	threads []db.Comment
	next    *db.Cursor
	ids     []uuid.UUID // every comment of the page
	size    int
}

type keptAnswer struct {
	version db.CommentPageVersion
	body    []byte
}

func newCommentPages(limit int) *commentPages {
	return &commentPages{pages: map[commentPageKey]*keptPage{}, readers: map[commentReaderKey]*keptAnswer{}, limit: limit}
}

func pageKeyOf(creator uuid.UUID, p db.Page) commentPageKey {
	k := commentPageKey{creator: creator, limit: p.Limit}
	if p.After != nil {
		k.hasAfter, k.afterAt, k.afterID = true, p.After.At.UnixNano(), p.After.ID
	}
	return k
}

// list answers GET /api/v1/comments/{creator_id} as JSON: from a kept page when its version
// still holds, else by reading the page.
func (cp *commentPages) list(ctx context.Context, q db.Querier, v db.CommentViewer, creator uuid.UUID, now time.Time, p db.Page) ([]byte, error) {
	key := pageKeyOf(creator, p)
	rkey := commentReaderKey{page: key, reader: v.UserID}
	cp.mu.Lock()
	page, answer := cp.pages[key], cp.readers[rkey]
	cp.mu.Unlock()
	switch {
	case page != nil && answer != nil && answer.version == page.version:
		// The reader's answer is kept: only the gate and the versions are needed, read
		// together with those of concurrent listings.
		st, err := cp.gates.check(ctx, q, db.CommentGateKey{Creator: creator, Reader: v.UserID})
		if err != nil {
			return nil, err
		}
		if err := st.Check(v, creator, now); err != nil {
			return nil, err
		}
		if st.Version == page.version {
			cp.count("kept", &cp.kept)
			return answer.body, nil
		}
	case page != nil:
		// The page is kept but not this reader's answer: the gate, the versions and the
		// reader's likes of the page's comments.
		ver, liked, err := db.ProbeCommentPage(ctx, q, v, creator, now, page.ids)
		if err != nil {
			return nil, err
		}
		if ver == page.version {
			body, err := renderCommentPage(page.threads, page.next, liked)
			if err != nil {
				return nil, err
			}
			cp.count("liked", &cp.liked)
			cp.keep(rkey, nil, &keptAnswer{version: ver, body: body})
			return body, nil
		}
	}
	read, err := db.ReadCommentPage(ctx, q, v, creator, now, p)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(mapList(read.Threads, read.Next, toCommentJSON))
	if err != nil {
		return nil, err
	}
	cp.count("read", &cp.read)
	kept := &keptPage{version: read.Version, threads: read.Threads, next: read.Next, size: len(body)}
	walkComments(read.Threads, func(c *db.Comment) { kept.ids = append(kept.ids, c.ID) })
	kept.size += 16 * len(kept.ids)
	cp.keep(rkey, kept, &keptAnswer{version: read.Version, body: body})
	return body, nil
}

func (cp *commentPages) count(result string, n *atomic.Int64) {
	commentPageReads.WithLabelValues(result).Inc()
	n.Add(1)
}

// keep stores a page (when not nil) and a reader's answer, dropping entries at random while
// over the size limit.
func (cp *commentPages) keep(rkey commentReaderKey, page *keptPage, answer *keptAnswer) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if page != nil {
		if old := cp.pages[rkey.page]; old != nil {
			cp.size -= old.size
		}
		cp.pages[rkey.page] = page
		cp.size += page.size
	}
	if old := cp.readers[rkey]; old != nil {
		cp.size -= len(old.body)
	}
	cp.readers[rkey] = answer
	cp.size += len(answer.body)
	for cp.size > cp.limit {
		for k, a := range cp.readers { // map order is random enough for eviction
			delete(cp.readers, k)
			cp.size -= len(a.body)
			break
		}
		if cp.size <= cp.limit {
			break
		}
		for k, pg := range cp.pages {
			delete(cp.pages, k)
			cp.size -= pg.size
			break
		}
		if len(cp.pages) == 0 && len(cp.readers) == 0 {
			cp.size = 0
		}
	}
}

// renderCommentPage is the JSON of a kept page for a reader who likes the comments in liked.
func renderCommentPage(threads []db.Comment, next *db.Cursor, liked map[uuid.UUID]bool) ([]byte, error) {
	out := mapList(threads, next, toCommentJSON)
	var mark func(cs []commentJSON)
	mark = func(cs []commentJSON) {
		for i := range cs {
			cs[i].LikedByMe = liked[cs[i].ID]
			mark(cs[i].Replies)
		}
	}
	mark(out.Items)
	return json.Marshal(out)
}

// walkComments calls f on every comment of threads, replies included.
func walkComments(threads []db.Comment, f func(*db.Comment)) {
	for i := range threads {
		f(&threads[i])
		walkComments(threads[i].Replies, f)
	}
}
