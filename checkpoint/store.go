package checkpoint

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Store is a checkpoint store: one bbolt file holding the last Options.Keep
// checkpoints. It is safe for concurrent use; writes are serialized by
// bbolt, reads run beside them on the last committed state.
type Store struct {
	path string
	opts Options
	db   *bolt.DB

	mu     sync.RWMutex // guards closed against Close racing readers
	closed bool

	// beforeCommit, when set, runs inside the write transaction after every
	// value is put and before bbolt commits. Tests use it to kill a process
	// in the middle of a checkpoint.
	beforeCommit func()
}

// Open opens or creates the store at path. A new file is initialised with
// the current format version; an existing one must be a checkpoint store of
// a version this build reads. Every error names the file.
func Open(path string, opts Options) (*Store, error) {
	opts = opts.withDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	wrap := func(err error) error { return fmt.Errorf("checkpoint: open %s: %w", path, err) }
	if _, err := os.Stat(path); err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return nil, wrap(err)
		}
		if opts.ReadOnly {
			return nil, wrap(ErrNotExist)
		}
	} else if err := checkTruncated(path); err != nil {
		return nil, wrap(err)
	}
	bopts := &bolt.Options{
		Timeout:         opts.LockTimeout,
		ReadOnly:        opts.ReadOnly,
		InitialMmapSize: opts.MmapSize,
		// Durability is the point: every commit is fsync'd.
		NoSync: false,
		// A 256 MiB checkpoint allocates and, through retention, frees
		// some 65,000 pages; the freelist written on every commit would
		// add half a megabyte and a sort per checkpoint. Without it, Open
		// rebuilds the freelist by walking the page tree, which reads page
		// headers only.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	}
	db, err := bolt.Open(path, 0o600, bopts)
	if errors.Is(err, syscall.ENOMEM) && bopts.InitialMmapSize > 0 {
		// An address-space limit (ulimit -v) refused the large mapping:
		// fall back to bbolt's growing one.
		bopts.InitialMmapSize = 0
		db, err = bolt.Open(path, 0o600, bopts)
	}
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			err = fmt.Errorf("%w (waited %v): %w", ErrLocked, opts.LockTimeout, err)
		}
		return nil, wrap(err)
	}
	s := &Store{path: path, opts: opts, db: db}
	if err := s.init(); err != nil {
		db.Close()
		return nil, wrap(err)
	}
	return s, nil
}

// init creates the buckets of a new store, or checks the format of an
// existing one.
func (s *Store) init() error {
	check := func(tx *bolt.Tx) (bool, error) {
		sb := tx.Bucket(bucketStore)
		if sb == nil {
			empty := true
			_ = tx.ForEach(func([]byte, *bolt.Bucket) error { empty = false; return nil })
			if !empty {
				return false, fmt.Errorf("%w: no %q bucket", ErrNotStore, bucketStore)
			}
			return false, nil
		}
		var f storeFormat
		if err := json.Unmarshal(sb.Get(keyFormat), &f); err != nil || f.Format != formatName {
			return true, fmt.Errorf("%w: bad format marker %q", ErrNotStore, sb.Get(keyFormat))
		}
		if f.Version != FormatVersion {
			return true, fmt.Errorf("%w: the file is format %d, this build reads %d", ErrFormatVersion, f.Version, FormatVersion)
		}
		if tx.Bucket(bucketCheckpoints) == nil {
			return true, fmt.Errorf("%w: no %q bucket", ErrNotStore, bucketCheckpoints)
		}
		return true, nil
	}
	var exists bool
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		exists, err = check(tx)
		return err
	})
	if err != nil || exists {
		return err
	}
	if s.opts.ReadOnly {
		return fmt.Errorf("%w: empty file", ErrNotStore)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		sb, err := tx.CreateBucketIfNotExists(bucketStore)
		if err != nil {
			return err
		}
		f, _ := json.Marshal(storeFormat{Format: formatName, Version: FormatVersion})
		if err := sb.Put(keyFormat, f); err != nil {
			return err
		}
		_, err = tx.CreateBucketIfNotExists(bucketCheckpoints)
		return err
	})
}

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close releases the file. It waits for transactions in progress.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.db.Close()
}

// view runs fn in a read transaction unless the store is closed.
func (s *Store) view(fn func(tx *bolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(fn)
}

// Save writes snap as a new checkpoint in one bbolt transaction and returns
// once it is committed and fsync'd. In the same transaction it deletes the
// oldest checkpoints beyond Options.Keep. snap's byte slices must not change
// until Save returns.
func (s *Store) Save(snap *Snapshot) (Info, error) {
	if s.opts.ReadOnly {
		return Info{}, ErrReadOnly
	}
	if err := snap.Validate(); err != nil {
		return Info{}, err
	}
	rec := record{Format: FormatVersion, Meta: snap.Meta}
	if rec.Meta.Created.IsZero() {
		rec.Meta.Created = time.Now().UTC()
	}
	var all []Tensor
	for _, g := range Groups {
		for _, t := range snap.group(g) {
			chunks := (len(t.Data) + s.opts.ChunkSize - 1) / s.opts.ChunkSize
			rec.Tensors = append(rec.Tensors, tensorRecord{
				Group: g, Name: t.Name, DType: t.DType, Shape: append([]int64{}, t.Shape...),
				Bytes: int64(len(t.Data)), ChunkSize: int64(s.opts.ChunkSize), Chunks: chunks,
			})
			all = append(all, t)
		}
	}
	for i, sum := range hashAll(all, s.opts.HashWorkers) {
		rec.Tensors[i].SHA256 = sum
	}
	meta, err := json.Marshal(&rec)
	if err != nil {
		return Info{}, fmt.Errorf("checkpoint: save: %w", err)
	}
	metaSum := sha256.Sum256(meta)

	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Info{}, ErrClosed
	}
	var id uint64
	err = s.db.Update(func(tx *bolt.Tx) error {
		root := tx.Bucket(bucketCheckpoints)
		var err error
		if id, err = root.NextSequence(); err != nil {
			return err
		}
		b, err := root.CreateBucket(idKey(id))
		if err != nil {
			return err
		}
		if err := b.Put(keyMeta, meta); err != nil {
			return err
		}
		if err := b.Put(keyMetaSum, metaSum[:]); err != nil {
			return err
		}
		data, err := b.CreateBucket(bucketData)
		if err != nil {
			return err
		}
		// Keys arrive in order: pack leaves full instead of splitting them
		// half-empty.
		data.FillPercent = 1.0
		for i, t := range all {
			for c := 0; c < rec.Tensors[i].Chunks; c++ {
				lo := c * s.opts.ChunkSize
				hi := min(lo+s.opts.ChunkSize, len(t.Data))
				// bbolt keeps a reference to the value until commit, when
				// it copies it once into the page it writes.
				if err := data.Put(dataKey(i, c), t.Data[lo:hi]); err != nil {
					return fmt.Errorf("tensor %q chunk %d: %w", t.Name, c, err)
				}
			}
		}
		if err := s.retain(root); err != nil {
			return err
		}
		if s.beforeCommit != nil {
			s.beforeCommit()
		}
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("checkpoint: save to %s: %w", s.path, err)
	}
	return rec.info(id), nil
}

// retain deletes the oldest checkpoints so that Options.Keep remain.
func (s *Store) retain(root *bolt.Bucket) error {
	var ids [][]byte
	c := root.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if v == nil { // a bucket: one checkpoint
			ids = append(ids, append([]byte(nil), k...))
		}
	}
	for len(ids) > s.opts.Keep {
		if err := root.DeleteBucket(ids[0]); err != nil {
			return fmt.Errorf("retention: %w", err)
		}
		ids = ids[1:]
	}
	return nil
}

// Delete removes checkpoint id.
func (s *Store) Delete(id uint64) error {
	if s.opts.ReadOnly {
		return ErrReadOnly
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketCheckpoints).DeleteBucket(idKey(id))
		if errors.Is(err, berrors.ErrBucketNotFound) {
			return fmt.Errorf("%w: checkpoint %d in %s", ErrNotFound, id, s.path)
		}
		return err
	})
}

// List returns every checkpoint, oldest first. A checkpoint whose metadata
// does not decode is listed with its ID only and Format 0; Verify says why.
func (s *Store) List() ([]Info, error) {
	var out []Info
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketCheckpoints).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if v != nil || len(k) != 8 {
				continue
			}
			id := idFromKey(k)
			rec, err := readRecord(tx, id)
			if err != nil {
				out = append(out, Info{ID: id})
				continue
			}
			out = append(out, rec.info(id))
		}
		return nil
	})
	return out, err
}

// Latest returns the newest checkpoint's description, unverified.
func (s *Store) Latest() (Info, error) {
	list, err := s.List()
	if err != nil {
		return Info{}, err
	}
	if len(list) == 0 {
		return Info{}, fmt.Errorf("%w: %s holds no checkpoint", ErrNotFound, s.path)
	}
	return list[len(list)-1], nil
}

// Stat returns checkpoint id's description, unverified.
func (s *Store) Stat(id uint64) (Info, error) {
	var in Info
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := readRecord(tx, id)
		if err != nil {
			return err
		}
		in = rec.info(id)
		return nil
	})
	if err != nil {
		return Info{}, fmt.Errorf("checkpoint %d in %s: %w", id, s.path, err)
	}
	return in, nil
}

// readRecord decodes and checks checkpoint id's metadata.
func readRecord(tx *bolt.Tx, id uint64) (*record, error) {
	b := tx.Bucket(bucketCheckpoints).Bucket(idKey(id))
	if b == nil {
		return nil, ErrNotFound
	}
	meta, sum := b.Get(keyMeta), b.Get(keyMetaSum)
	if got := sha256.Sum256(meta); meta == nil || !bytes.Equal(got[:], sum) {
		return nil, fmt.Errorf("%w: metadata does not match its sha256", ErrCorrupt)
	}
	var rec record
	if err := json.Unmarshal(meta, &rec); err != nil {
		return nil, fmt.Errorf("%w: metadata: %w", ErrCorrupt, err)
	}
	if rec.Format != FormatVersion {
		return nil, fmt.Errorf("%w: checkpoint is format %d, this build reads %d", ErrFormatVersion, rec.Format, FormatVersion)
	}
	return &rec, nil
}

func idFromKey(k []byte) uint64 {
	var id uint64
	for _, b := range k {
		id = id<<8 | uint64(b)
	}
	return id
}
