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
// boundary, the write in the background, the Raft record once durable.
type checkpointer struct {
	store  *checkpoint.Store
	writer *checkpoint.Writer
	wg     sync.WaitGroup
}

// openCheckpoints opens the store lazily: only the rank that writes or
// restores holds its lock.
func (w *Worker) openCheckpoints() (*checkpointer, error) {
	if w.ckpt != nil {
		return w.ckpt, nil
	}
	if w.cfg.CheckpointDir == "" {
		return nil, errors.New("worker: no checkpoint directory configured")
	}
	dir, err := filepath.Abs(w.cfg.CheckpointDir)
	if err != nil {
		return nil, fmt.Errorf("worker: checkpoint dir: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("worker: checkpoint dir: %w", err)
	}
	keep := max(w.job.CheckpointRetain, 1)
	s, err := checkpoint.Open(filepath.Join(dir, StoreFile), checkpoint.Options{Keep: keep})
	if err != nil {
		return nil, fmt.Errorf("worker: open checkpoint store: %w", err)
	}
	w.ckpt = &checkpointer{store: s, writer: checkpoint.NewWriter(s)}
	return w.ckpt, nil
}

func (w *Worker) closeCheckpoints() {
	c := w.ckpt
	if c == nil {
		return
	}
	w.ckpt = nil
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := c.writer.Close(ctx); err != nil {
		w.log.Warn("checkpoint writer close", "err", err)
	}
	c.wg.Wait()
	c.store.Close()
}

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

// checkpointNow snapshots the state and hands it to the background writer;
// with wait it returns only once the checkpoint is durable and recorded.
func (w *Worker) checkpointNow(ctx context.Context, gen coordinator.GenerationInfo, wait bool) error {
	if w.cfg.CheckpointDir == "" {
		return nil
	}
	c, err := w.openCheckpoints()
	if err != nil {
		return err
	}
	log := w.log // the record runs in the background; a rejoin replaces w.log
	hook := w.beforeRecord
	t0 := time.Now()
	snap, err := w.learner.Snapshot() // the host copy: the part of the stall that grows with the model
	if err != nil {
		return fmt.Errorf("worker: checkpoint snapshot: %w", err)
	}
	spec, _ := json.Marshal(w.job)
	snap.Meta = checkpoint.Meta{Step: int64(w.rec.Step), Epoch: int64(w.rec.Epoch), JobSpec: spec, Checksums: w.cfg.Checksums}
	for _, cur := range w.rec.Cursors {
		b, _ := json.Marshal(cur)
		snap.Meta.Cursors = append(snap.Meta.Cursors, b)
	}
	step, epoch := w.rec.Step, w.rec.Epoch
	cursors := append([]coordinator.RankCursor(nil), w.rec.Cursors...)
	// Only a step whose progress the coordinator acknowledged may be
	// recorded: a rollback to it must find its finished units marked done.
	acked := w.rec.Acked >= step
	sctx, cancel := context.WithTimeout(ctx, w.cfg.StepTimeout)
	results, err := c.writer.Save(sctx, snap)
	cancel()
	if err != nil {
		return fmt.Errorf("worker: checkpoint %d: %w", step, err)
	}
	stall := time.Since(t0)
	w.lastCkpt = step
	if m := w.cfg.Metrics; m != nil {
		m.ckptStall.Observe(stall.Seconds())
	}
	record := func(r checkpoint.Result) error {
		if r.Err != nil {
			return fmt.Errorf("worker: checkpoint %d write: %w", step, r.Err)
		}
		if m := w.cfg.Metrics; m != nil {
			m.ckptSeconds.Observe(r.Duration.Seconds())
			m.ckptBytes.Add(float64(r.Info.Bytes))
		}
		log.Info("checkpoint durable", "step", step, "bytes", r.Info.Bytes, "write", r.Duration.Round(time.Millisecond), "stall", stall.Round(time.Microsecond))
		if !acked {
			log.Warn("checkpoint not recorded: its step's progress was not acknowledged", "step", step)
			return nil
		}
		if hook != nil {
			hook()
		}
		req := coordinator.CheckpointRequest{
			Step: step, Epoch: epoch, Location: Location(c.store.Path(), r.Info.ID), Checksum: checksumOf(r.Info),
			Bytes: r.Info.Bytes, Cursors: cursors, Status: coordinator.CheckpointDurable,
		}
		rctx, cancel := context.WithTimeout(context.Background(), w.cfg.RequestTimeout)
		defer cancel()
		if _, err := w.coord.RecordCheckpoint(rctx, req); err != nil {
			return fmt.Errorf("worker: record checkpoint %d: %w", step, err)
		}
		if err := c.store.Verify(r.Info.ID); err != nil {
			req.Status = coordinator.CheckpointCorrupt
			_, _ = w.coord.RecordCheckpoint(rctx, req)
			return fmt.Errorf("worker: checkpoint %d does not verify: %w", step, err)
		}
		req.Status = coordinator.CheckpointVerified
		if _, err := w.coord.RecordCheckpoint(rctx, req); err != nil {
			log.Warn("recording the verification failed", "step", step, "err", err)
		}
		return nil
	}
	if wait {
		select {
		case r := <-results:
			return record(r)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := record(<-results); err != nil {
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
	var s *checkpoint.Store
	if w.cfg.CheckpointDir != "" && sameFile(path, filepath.Join(w.cfg.CheckpointDir, StoreFile)) {
		c, err := w.openCheckpoints()
		if err != nil {
			return nil, err
		}
		s = c.store
	} else {
		s, err = checkpoint.Open(path, checkpoint.Options{ReadOnly: true})
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrRestore, err)
		}
		defer s.Close()
	}
	_, snap, err := s.Load(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRestore, err)
	}
	return snap, nil
}

func sameFile(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && aa == bb
}
