package allreduce

import (
	"context"
	"sync"
)

// queue is an unbounded FIFO with one blocking consumer side. Bounds come from
// the protocol (credit windows), not from the queue; close makes pop return
// the given error at once, dropping what is queued (the drop callback
// releases it).
type queue[T any] struct {
	mu     sync.Mutex
	items  []T
	head   int
	err    error
	signal chan struct{} // capacity 1: "something changed"
	drop   func(T)
}

func newQueue[T any](drop func(T)) *queue[T] {
	return &queue[T]{signal: make(chan struct{}, 1), drop: drop}
}

// push appends v; it reports false (and drops v) once the queue is closed.
func (q *queue[T]) push(v T) bool {
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		if q.drop != nil {
			q.drop(v)
		}
		return false
	}
	q.items = append(q.items, v)
	q.mu.Unlock()
	q.wake()
	return true
}

func (q *queue[T]) wake() {
	select {
	case q.signal <- struct{}{}:
	default:
	}
}

// pop returns the oldest item, waiting until there is one, the queue is
// closed, or ctx is done.
func (q *queue[T]) pop(ctx context.Context) (T, error) {
	var zero T
	for {
		q.mu.Lock()
		if q.err != nil {
			err := q.err
			q.mu.Unlock()
			q.wake() // let another waiter see it too
			return zero, err
		}
		if q.head < len(q.items) {
			v := q.items[q.head]
			q.items[q.head] = zero
			q.head++
			if q.head == len(q.items) {
				q.items, q.head = q.items[:0], 0
			}
			q.mu.Unlock()
			return v, nil
		}
		q.mu.Unlock()
		select {
		case <-q.signal:
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

// close makes every pop return err and drops the queued items.
func (q *queue[T]) close(err error) {
	q.mu.Lock()
	if q.err != nil {
		q.mu.Unlock()
		return
	}
	q.err = err
	items := q.items[q.head:]
	q.items, q.head = nil, 0
	q.mu.Unlock()
	if q.drop != nil {
		for _, v := range items {
			q.drop(v)
		}
	}
	q.wake()
}
