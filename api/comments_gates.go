package api

import (
	"context"
	"sync"
	"time"

	"github.com/creatorvault/orchestrator/db"
)

// How an instance checks the gates and versions of listings served from kept pages: at most
// commentGateRunners statements at a time, each answering the listings that arrived while the
// previous ones ran (at most commentGateBatchMax).
// One runner: under load the next batch gathers everything that waited, and PostgreSQL (on the
// same cores) answers one statement of many rows faster than several at once (measured in one
// run, 100 connections: 1 runner 41–56% of /health, 2 runners 23–52%, 4 runners 28–30%).
const (
	commentGateRunners  = 1
	commentGateBatchMax = 256
)

// commentGates gathers the per-request check of listings served from kept pages (the reader's
// gate and the page's versions) into shared statements, like a group commit: a request that
// finds a runner free is checked at once, alone; requests that arrive while the runners'
// statements are in flight are checked together by the next one (db.ProbeCommentGates, one
// row per distinct creator and reader). Every request's check is read by a statement that
// started after the request arrived, so its answer is exactly what it would have been with a
// statement of its own.
type commentGates struct {
	mu      sync.Mutex
	queue   []*gateCheck
	running int // runners at work, at most commentGateRunners
	// probe reads a batch; nil means db.ProbeCommentGates (tests wrap it to hold a batch).
	probe func(ctx context.Context, q db.Querier, keys []db.CommentGateKey) ([]db.CommentGateState, error)
}

type gateCheck struct {
	q     db.Querier
	key   db.CommentGateKey
	state db.CommentGateState
	err   error
	done  chan struct{}
}

// check reads key's gate state and page versions with a statement that starts after the call.
func (g *commentGates) check(ctx context.Context, q db.Querier, key db.CommentGateKey) (db.CommentGateState, error) {
	w := &gateCheck{q: q, key: key, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, w)
	start := g.running < commentGateRunners
	if start {
		g.running++
	}
	g.mu.Unlock()
	if start {
		// This request runs the first batch (itself and whatever joined meanwhile) on its own
		// goroutine; a runner goroutine carries on while more are waiting.
		g.run(true)
	}
	select {
	case <-w.done:
		return w.state, w.err
	case <-ctx.Done():
		return db.CommentGateState{}, ctx.Err()
	}
}

// run takes batches off the queue and checks them until it is empty; with once, it checks one
// batch and hands its place to a new runner goroutine if more are waiting.
func (g *commentGates) run(once bool) {
	for {
		g.mu.Lock()
		batch := g.take()
		if len(batch) == 0 {
			g.running--
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.checkBatch(batch)
		if once {
			go g.run(false)
			return
		}
	}
}

// take removes up to commentGateBatchMax checks with the first one's querier from the queue
// (the API has one pool, so in practice all of them). Called with g.mu held.
func (g *commentGates) take() []*gateCheck {
	if len(g.queue) == 0 {
		return nil
	}
	q := g.queue[0].q
	batch := make([]*gateCheck, 0, min(len(g.queue), commentGateBatchMax))
	rest := g.queue[:0]
	for _, w := range g.queue {
		if w.q == q && len(batch) < commentGateBatchMax {
			batch = append(batch, w)
		} else {
			rest = append(rest, w)
		}
	}
	clear(g.queue[len(rest):])
	g.queue = rest
	return batch
}

// checkBatch reads the batch's distinct keys in one statement and answers every check.
func (g *commentGates) checkBatch(batch []*gateCheck) {
	index := make(map[db.CommentGateKey]int, len(batch))
	var keys []db.CommentGateKey
	for _, w := range batch {
		if _, ok := index[w.key]; !ok {
			index[w.key] = len(keys)
			keys = append(keys, w.key)
		}
	}
	// Not a request's context: the statement answers every request of the batch.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	probe := g.probe
	if probe == nil {
		probe = db.ProbeCommentGates
	}
	states, err := probe(ctx, batch[0].q, keys)
	cancel()
	for _, w := range batch {
		if err != nil {
			w.err = err
		} else {
			w.state = states[index[w.key]]
		}
		close(w.done)
	}
}
