package checkpoint

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Result reports how a background write ended.
type Result struct {
	Info     Info          // the stored checkpoint; valid when Err is nil
	Err      error         // nil once the checkpoint is committed and fsync'd
	Duration time.Duration // from hand-over to durability (or failure)
}

// Writer writes checkpoints in the background so that training continues
// while a checkpoint reaches the disk. At most one write is in flight: a
// checkpoint holds a full host copy of the training state, and two at once
// would double that memory and compete for the same disk.
//
// Save waits for the previous write to finish (back-pressure bounded by its
// context); TrySave rejects instead. The caller records a checkpoint as
// durable (in Raft) only after reading a nil Err from its result channel.
type Writer struct {
	store *Store
	slot  chan struct{} // holds a token while a write is in flight

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

// NewWriter returns a writer to s. The writer does not own s: close the
// writer, then the store.
func NewWriter(s *Store) *Writer {
	return &Writer{store: s, slot: make(chan struct{}, 1)}
}

// Save hands snap over and returns as soon as the write has started: the
// snapshot's byte slices then belong to the writer until the result arrives
// on the returned channel (buffered, exactly one Result, then closed). If a
// write is in flight, Save waits for it until ctx ends and then returns an
// error wrapping ErrBusy and ctx's error. An invalid snapshot is rejected at
// once with ErrInvalid.
func (w *Writer) Save(ctx context.Context, snap *Snapshot) (<-chan Result, error) {
	if err := snap.Validate(); err != nil {
		return nil, err
	}
	select {
	case w.slot <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrBusy, ctx.Err())
	}
	return w.start(snap)
}

// TrySave is Save without waiting: with a write in flight it returns
// ErrBusy at once and snap stays the caller's.
func (w *Writer) TrySave(snap *Snapshot) (<-chan Result, error) {
	if err := snap.Validate(); err != nil {
		return nil, err
	}
	select {
	case w.slot <- struct{}{}:
	default:
		return nil, ErrBusy
	}
	return w.start(snap)
}

// start runs the write; the caller holds the slot.
func (w *Writer) start(snap *Snapshot) (<-chan Result, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.slot
		return nil, ErrClosed
	}
	w.wg.Add(1)
	w.mu.Unlock()
	done := make(chan Result, 1)
	began := time.Now()
	go func() {
		defer w.wg.Done()
		info, err := w.store.Save(snap)
		<-w.slot
		done <- Result{Info: info, Err: err, Duration: time.Since(began)}
		close(done)
	}()
	return done, nil
}

// Busy reports whether a write is in flight.
func (w *Writer) Busy() bool { return len(w.slot) > 0 }

// Close refuses new writes and waits for the one in flight, until ctx ends.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	idle := make(chan struct{})
	go func() { w.wg.Wait(); close(idle) }()
	select {
	case <-idle:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("checkpoint: close writer: a write is still in flight: %w", ctx.Err())
	}
}
