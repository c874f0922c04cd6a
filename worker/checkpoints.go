package worker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
)

// StoreFile is the checkpoint store's file name in Config.CheckpointDir.
const StoreFile = "checkpoints.db"

// checkpointer is rank 0's checkpoint writer: a host copy at the step
// boundary; then, in the background, the store opened, the write and its
// verification, the store closed, and the Raft records. No process holds
// the store between writes, so a new rank 0 (this or another process) and
// readers such as `vlp checkpoint ls` can open it at any time.
type checkpointer struct {
	wg sync.WaitGroup // writes and their records in flight
	// slot is held from the snapshot until the store is closed: one write,
	// and one host copy, at a time.
	slot chan struct{}
}

func newCheckpointer() checkpointer { return checkpointer{slot: make(chan struct{}, 1)} }

// storePath is the absolute path of the checkpoint store in CheckpointDir.
func (w *Worker) storePath() (string, error) {
	if w.cfg.CheckpointDir == "" {
		return "", errors.New("worker: no checkpoint directory configured")
	}
	dir, err := filepath.Abs(w.cfg.CheckpointDir)
	if err != nil {
		return "", fmt.Errorf("worker: checkpoint dir: %w", err)
	}
	return filepath.Join(dir, StoreFile), nil
}

// closeCheckpoints waits for the writes in flight, if any, and their records.
func (w *Worker) closeCheckpoints() {
	w.ckpt.wg.Wait()
}

// writeCheckpoint opens the store, saves snap, verifies it in place and
// closes the store: the lock is held for the write only.
func (w *Worker) writeCheckpoint(path string, snap *checkpoint.Snapshot) (checkpoint.Info, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return checkpoint.Info{}, fmt.Errorf("worker: checkpoint dir: %w", err)
	}
	keep := max(w.job.CheckpointRetain, 1)
	s, err := checkpoint.Open(path, checkpoint.Options{Keep: keep})
	if err != nil {
		return checkpoint.Info{}, fmt.Errorf("worker: open checkpoint store: %w", err)
	}
	info, err := s.Save(snap)
	if err == nil {
		if verr := s.Verify(info.ID); verr != nil {
			err = fmt.Errorf("%w: %w", errCorruptWrite, verr)
		}
	}
	if cerr := s.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("worker: close checkpoint store: %w", cerr)
	}
	return info, err
}

// errCorruptWrite: a checkpoint was written but does not verify.
var errCorruptWrite = errors.New("worker: the checkpoint written does not verify")

// Location names checkpoint id of a store file.
func Location(path string, id uint64) string { return path + "#" + strconv.FormatUint(id, 10) }

// ParseLocation splits a Location.
func ParseLocation(loc string) (string, uint64, error) {
	i := strings.LastIndexByte(loc, '#')
	if i < 0 {
		return "", 0, fmt.Errorf("%w: checkpoint location %q has no #id", ErrRestore, loc)
	}
	id, err := strconv.ParseUint(loc[i+1:], 10, 64)
	if err != nil {
		return "", 0, fmt.Errorf("%w: checkpoint location %q: %v", ErrRestore, loc, err)
	}
	return loc[:i], id, nil
}

// checksumOf digests a stored checkpoint's per-tensor checksums.
func checksumOf(in checkpoint.Info) string {
	h := sha256.New()
	for _, t := range in.Tensors {
		h.Write([]byte(string(t.Group) + "/" + t.Name + ":" + t.SHA256 + "\n"))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// checkpointNow snapshots the state and writes it in the background; with
// wait it returns only once the checkpoint is durable and recorded. While
// a write is in flight a further checkpoint waits for it, at most
// StepTimeout, and is skipped (logged) after that.
func (w *Worker) checkpointNow(ctx context.Context, gen coordinator.GenerationInfo, wait bool) error {
	if w.cfg.CheckpointDir == "" {
		return nil
	}
	path, err := w.storePath()
	if err != nil {
		return err
	}
	c := &w.ckpt
	select {
	case c.slot <- struct{}{}:
	case <-time.After(w.cfg.StepTimeout):
		w.log.Warn("checkpoint skipped: the previous write is still in flight", "step", w.rec.Step, "waited", w.cfg.StepTimeout)
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	var once sync.Once
	unlock := func() { once.Do(func() { <-c.slot }) }
	log := w.log // the record runs in the background; a rejoin replaces w.log
	hook := w.beforeRecord
	t0 := time.Now()
	snap, err := w.learner.Snapshot() // the host copy: the part of the stall that grows with the model
	if err != nil {
		unlock()
		return fmt.Errorf("worker: checkpoint snapshot: %w", err)
	}
	spec, _ := json.Marshal(w.job)
	// The learner's own meta (the model's layout) is kept.
	snap.Meta.Step, snap.Meta.Epoch, snap.Meta.JobSpec, snap.Meta.Checksums = int64(w.rec.Step), int64(w.rec.Epoch), spec, w.cfg.Checksums
	for _, cur := range w.rec.Cursors {
		b, _ := json.Marshal(cur)
		snap.Meta.Cursors = append(snap.Meta.Cursors, b)
	}
	if err := snap.Validate(); err != nil {
		unlock()
		return fmt.Errorf("worker: checkpoint snapshot: %w", err)
	}
	step, epoch := w.rec.Step, w.rec.Epoch
	cursors := append([]coordinator.RankCursor(nil), w.rec.Cursors...)
	// Only a step whose progress the coordinator acknowledged may be
	// recorded: a rollback to it must find its finished units marked done.
	acked := w.rec.Acked >= step
	stall := time.Since(t0)
	w.lastCkpt = step
	if m := w.cfg.Metrics; m != nil {
		m.ckptStall.Observe(stall.Seconds())
	}
	write := func() error {
		t1 := time.Now()
		info, err := w.writeCheckpoint(path, snap)
		unlock() // the store is closed: the next checkpoint may write while this one is recorded
		if err != nil && !errors.Is(err, errCorruptWrite) {
			return fmt.Errorf("worker: checkpoint %d write (not recorded): %w", step, err)
		}
		took := time.Since(t1)
		if m := w.cfg.Metrics; m != nil {
			m.ckptSeconds.Observe(took.Seconds())
			m.ckptBytes.Add(float64(info.Bytes))
		}
		log.Info("checkpoint durable", "step", step, "bytes", info.Bytes, "write", took.Round(time.Millisecond), "stall", stall.Round(time.Microsecond))
		if !acked {
			log.Warn("checkpoint not recorded: its step's progress was not acknowledged", "step", step)
			return nil
		}
		if hook != nil {
			hook()
		}
		req := coordinator.CheckpointRequest{
			Step: step, Epoch: epoch, Location: Location(path, info.ID), Checksum: checksumOf(info),
			Bytes: info.Bytes, Cursors: cursors, Status: coordinator.CheckpointDurable,
		}
		rctx, cancel := context.WithTimeout(context.Background(), w.cfg.RequestTimeout)
		defer cancel()
		if _, rerr := w.coord.RecordCheckpoint(rctx, req); rerr != nil {
			return fmt.Errorf("worker: record checkpoint %d: %w", step, rerr)
		}
		if err != nil {
			req.Status = coordinator.CheckpointCorrupt
			_, _ = w.coord.RecordCheckpoint(rctx, req)
			return fmt.Errorf("worker: checkpoint %d: %w", step, err)
		}
		req.Status = coordinator.CheckpointVerified
		if _, err := w.coord.RecordCheckpoint(rctx, req); err != nil {
			log.Warn("recording the verification failed", "step", step, "err", err)
		}
		return nil
	}
	c.wg.Add(1)
	if wait {
		defer c.wg.Done()
		return write()
	}
	go func() {
		defer c.wg.Done()
		if err := write(); err != nil {
			log.Error("checkpoint", "err", err)
		}
	}()
	return nil
}

// loadCheckpoint reads and verifies the checkpoint at loc.
func (w *Worker) loadCheckpoint(loc string) (*checkpoint.Snapshot, error) {
	path, id, err := ParseLocation(loc)
	if err != nil {
		return nil, err
	}
	// Read-only: a shared lock, held for the load only.
	s, err := checkpoint.Open(path, checkpoint.Options{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRestore, err)
	}
	defer s.Close()
	_, snap, err := s.Load(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRestore, err)
	}
	return snap, nil
}
