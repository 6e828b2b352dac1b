package api

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/creatorvault/orchestrator/db"
)

// How an instance commits direct messages: sendWorkers transactions at a time, each carrying
// the sends that arrived while the previous ones committed (at most sendBatchMax).
const (
	sendWorkers  = 4
	sendBatchMax = 64
)

// messageSends gathers the sends of concurrent requests into shared transactions
// (db.SendMessagesAudited): every send is still its own rate-limit hit, rule check, insert,
// NOTIFY and access-log row, but many commit together. A send that finds a worker free goes
// out at once, alone; under load the batches grow by themselves.
type messageSends struct {
	pool  *pgxpool.Pool
	ctx   context.Context
	queue chan *pendingSend
	once  sync.Once
	// workers ends when every worker has stopped (after the server's context ended).
	workers sync.WaitGroup
}

type pendingSend struct {
	req  db.SendRequest
	done chan db.SendResult
}

func newMessageSends(ctx context.Context, pool *pgxpool.Pool) *messageSends {
	if ctx == nil {
		ctx = context.Background()
	}
	return &messageSends{pool: pool, ctx: ctx, queue: make(chan *pendingSend, sendBatchMax*sendWorkers)}
}

// send commits one send (or has it refused) and returns its result. A send that was handed to
// a worker is waited for even when ctx ends, so its caller learns whether it happened.
func (ms *messageSends) send(ctx context.Context, req db.SendRequest) db.SendResult {
	ms.once.Do(func() {
		ms.workers.Add(sendWorkers)
		for range sendWorkers {
			go func() {
				defer ms.workers.Done()
				ms.work()
			}()
		}
	})
	p := &pendingSend{req: req, done: make(chan db.SendResult, 1)}
	select {
	case ms.queue <- p:
	case <-ctx.Done():
		return db.SendResult{Err: ctx.Err()}
	case <-ms.ctx.Done():
		return db.SendResult{Err: ms.ctx.Err()}
	}
	select {
	case r := <-p.done:
		return r
	case <-ms.ctx.Done(): // the workers finish their batches and refuse the rest
		ms.workers.Wait()
		select {
		case r := <-p.done:
			return r
		default:
			return db.SendResult{Err: ms.ctx.Err()}
		}
	}
}

func (ms *messageSends) work() {
	batch := make([]*pendingSend, 0, sendBatchMax)
	reqs := make([]db.SendRequest, 0, sendBatchMax)
	for {
		batch, reqs = batch[:0], reqs[:0]
		select {
		case <-ms.ctx.Done():
			ms.drain()
			return
		case p := <-ms.queue:
			batch = append(batch, p)
		}
	gather:
		for len(batch) < sendBatchMax {
			select {
			case p := <-ms.queue:
				batch = append(batch, p)
			default:
				break gather
			}
		}
		for _, p := range batch {
			reqs = append(reqs, p.req)
		}
		// Not the server's context: a batch under way completes, so every caller learns
		// what happened to its send.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ms.ctx), 10*time.Second)
		results := db.SendMessagesAudited(ctx, ms.pool, reqs)
		cancel()
		for i, p := range batch {
			p.done <- results[i]
		}
	}
}

// drain refuses what is still queued when the server stops.
func (ms *messageSends) drain() {
	for {
		select {
		case p := <-ms.queue:
			p.done <- db.SendResult{Err: ms.ctx.Err()}
		default:
			return
		}
	}
}
