package checkpoint

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Load reads checkpoint id, checking every tensor against its sha256 as it
// copies it out of the file. A checkpoint that fails is never returned; the
// error wraps ErrCorrupt and names every tensor that failed.
func (s *Store) Load(id uint64) (Info, *Snapshot, error) {
	var (
		in   Info
		snap *Snapshot
	)
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := readRecord(tx, id)
		if err != nil {
			return err
		}
		in = rec.info(id)
		snap, err = s.check(tx, id, rec, true)
		return err
	})
	if err != nil {
		return Info{}, nil, fmt.Errorf("checkpoint %d in %s: %w", id, s.path, err)
	}
	return in, snap, nil
}

// Verify checks checkpoint id in place, without copying its tensors: the
// metadata against its sha256, every chunk's presence and size, every
// tensor against its sha256. The error wraps ErrCorrupt and names every
// tensor that failed.
func (s *Store) Verify(id uint64) error {
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := readRecord(tx, id)
		if err != nil {
			return err
		}
		_, err = s.check(tx, id, rec, false)
		return err
	})
	if err != nil {
		return fmt.Errorf("checkpoint %d in %s: %w", id, s.path, err)
	}
	return nil
}

// Restored is what LatestVerified found.
type Restored struct {
	Info     Info
	Snapshot *Snapshot
	// Skipped holds one error per newer checkpoint that failed
	// verification, newest first.
	Skipped []error
}

// Read opens the store at path read-only, reads checkpoint id — with id 0, the newest that
// verifies, and the reasons every newer one was skipped — and closes the store: what a reader of a
// running job's store (an evaluation, a fine-tuning job's initialisation) does.
func Read(path string, id uint64) (info Info, snap *Snapshot, skipped []error, err error) {
	s, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		return Info{}, nil, nil, err
	}
	defer s.Close()
	if id > 0 {
		info, snap, err = s.Load(id)
		return info, snap, nil, err
	}
	r, err := s.LatestVerified()
	if err != nil {
		return Info{}, nil, nil, err
	}
	return r.Info, r.Snapshot, r.Skipped, nil
}

// LatestVerified walks back from the newest checkpoint and returns the first
// that verifies, with the reasons every newer one was skipped. With no
// checkpoint at all it returns ErrNotFound; when none verifies, ErrNoVerified
// joined with every failure.
func (s *Store) LatestVerified() (*Restored, error) {
	list, err := s.List()
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("%w: %s holds no checkpoint", ErrNotFound, s.path)
	}
	r := &Restored{}
	for i := len(list) - 1; i >= 0; i-- {
		in, snap, err := s.Load(list[i].ID)
		if err != nil {
			r.Skipped = append(r.Skipped, err)
			continue
		}
		r.Info, r.Snapshot = in, snap
		return r, nil
	}
	return nil, errors.Join(append([]error{fmt.Errorf("%w in %s", ErrNoVerified, s.path)}, r.Skipped...)...)
}

// LatestVerifiedInfo is LatestVerified without copying the tensors out:
// it verifies in place and returns the description of the newest checkpoint
// that verifies, with the reasons every newer one was skipped.
func (s *Store) LatestVerifiedInfo() (Info, []error, error) {
	list, err := s.List()
	if err != nil {
		return Info{}, nil, err
	}
	if len(list) == 0 {
		return Info{}, nil, fmt.Errorf("%w: %s holds no checkpoint", ErrNotFound, s.path)
	}
	var skipped []error
	for i := len(list) - 1; i >= 0; i-- {
		if err := s.Verify(list[i].ID); err != nil {
			skipped = append(skipped, err)
			continue
		}
		return list[i], skipped, nil
	}
	return Info{}, skipped, errors.Join(append([]error{fmt.Errorf("%w in %s", ErrNoVerified, s.path)}, skipped...)...)
}

// tensorChunks returns the stored chunks of tensor i, checking that each is
// present and has the size the record says. The slices point into the
// memory map and are valid only inside tx.
func tensorChunks(data *bolt.Bucket, i int, t tensorRecord) ([][]byte, error) {
	if t.Chunks < 0 || t.ChunkSize <= 0 || int64(t.Chunks) != (t.Bytes+t.ChunkSize-1)/t.ChunkSize {
		return nil, fmt.Errorf("%d chunks of %d bytes cannot hold %d bytes", t.Chunks, t.ChunkSize, t.Bytes)
	}
	chunks := make([][]byte, t.Chunks)
	for c := range chunks {
		v := data.Get(dataKey(i, c))
		want := min(t.ChunkSize, t.Bytes-int64(c)*t.ChunkSize)
		if v == nil {
			return nil, fmt.Errorf("chunk %d is missing", c)
		}
		if int64(len(v)) != want {
			return nil, fmt.Errorf("chunk %d has %d bytes, want %d", c, len(v), want)
		}
		chunks[c] = v
	}
	return chunks, nil
}

// check verifies every tensor of rec and, with copyOut, returns them as a
// snapshot. Tensors are hashed in parallel; the chunk slices are looked up
// first, in this goroutine, so that only plain memory reads run
// concurrently.
func (s *Store) check(tx *bolt.Tx, id uint64, rec *record, copyOut bool) (*Snapshot, error) {
	b := tx.Bucket(bucketCheckpoints).Bucket(idKey(id))
	data := b.Bucket(bucketData)
	if data == nil {
		return nil, fmt.Errorf("%w: no %q bucket", ErrCorrupt, bucketData)
	}
	n := len(rec.Tensors)
	chunks := make([][][]byte, n)
	errs := make([]error, n)
	for i, t := range rec.Tensors {
		chunks[i], errs[i] = tensorChunks(data, i, t)
	}
	out := make([][]byte, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(s.opts.HashWorkers, n); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				var buf []byte
				if copyOut {
					buf = make([]byte, 0, rec.Tensors[i].Bytes)
				}
				h := sha256.New()
				for _, c := range chunks[i] {
					h.Write(c)
					if copyOut {
						buf = append(buf, c...)
					}
				}
				if got := hex.EncodeToString(h.Sum(nil)); got != rec.Tensors[i].SHA256 {
					errs[i] = fmt.Errorf("sha256 is %s, recorded %s", got, rec.Tensors[i].SHA256)
					continue
				}
				out[i] = buf
			}
		}()
	}
	for i := range rec.Tensors {
		if errs[i] == nil {
			next <- i
		}
	}
	close(next)
	wg.Wait()

	var failed []error
	for i, err := range errs {
		if err != nil {
			t := rec.Tensors[i]
			failed = append(failed, fmt.Errorf("%w: %s tensor %q: %w", ErrCorrupt, t.Group, t.Name, err))
		}
	}
	if len(failed) > 0 {
		return nil, errors.Join(failed...)
	}
	if !copyOut {
		return nil, nil
	}
	snap := &Snapshot{Meta: rec.Meta}
	for i, t := range rec.Tensors {
		ref := snap.groupRef(t.Group)
		if ref == nil {
			return nil, fmt.Errorf("%w: tensor %q has unknown group %q", ErrCorrupt, t.Name, t.Group)
		}
		if out[i] == nil {
			out[i] = []byte{}
		}
		*ref = append(*ref, Tensor{Name: t.Name, DType: t.DType, Shape: t.Shape, Data: out[i]})
	}
	return snap, nil
}
