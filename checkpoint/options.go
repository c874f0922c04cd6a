package checkpoint

import (
	"fmt"
	"time"
)

// Options configure a Store. The zero value of each field takes the default
// documented beside it.
type Options struct {
	// Keep is how many checkpoints the store retains; saving one more deletes
	// the oldest in the same transaction. Default 3: the latest, and two to
	// fall back on should it fail verification.
	Keep int
	// ChunkSize is the largest value stored under one key, in bytes; larger
	// tensors are split across consecutive keys. Default 16 MiB: big enough
	// that per-key overhead vanishes, small enough that bbolt never needs one
	// huge contiguous run of free pages.
	ChunkSize int
	// ReadOnly opens the file with a shared lock and refuses writes, for
	// tools that inspect a store.
	ReadOnly bool
	// LockTimeout bounds the wait for the file lock another process holds.
	// Default 5 s.
	LockTimeout time.Duration
	// HashWorkers is how many goroutines compute tensor checksums.
	// Default 4.
	HashWorkers int
	// MmapSize is the address space mapped for the file at open, in bytes.
	// Default 64 GiB: virtual, not memory. When a commit grows the file past
	// the mapping, bbolt remaps it and first copies every value of the
	// transaction to the heap (a transient extra copy of the checkpoint) and
	// waits for readers; a mapping larger than the store avoids both.
	MmapSize int
}

// maxChunkSize keeps a value well inside bbolt's MaxValueSize (2 GiB - 2).
const maxChunkSize = 1 << 30

// DefaultOptions returns the options with every default filled in.
func DefaultOptions() Options {
	return Options{Keep: 3, ChunkSize: 16 << 20, LockTimeout: 5 * time.Second, HashWorkers: 4, MmapSize: 64 << 30}
}

// withDefaults fills the zero fields.
func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Keep == 0 {
		o.Keep = d.Keep
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = d.ChunkSize
	}
	if o.LockTimeout == 0 {
		o.LockTimeout = d.LockTimeout
	}
	if o.HashWorkers == 0 {
		o.HashWorkers = d.HashWorkers
	}
	if o.MmapSize == 0 {
		o.MmapSize = d.MmapSize
	}
	return o
}

// Validate reports the first field out of bounds.
func (o Options) Validate() error {
	switch {
	case o.Keep < 1:
		return fmt.Errorf("checkpoint: Options.Keep is %d, must be at least 1", o.Keep)
	case o.ChunkSize < 4096 || o.ChunkSize > maxChunkSize:
		return fmt.Errorf("checkpoint: Options.ChunkSize is %d, must be in [4096, %d]", o.ChunkSize, maxChunkSize)
	case o.LockTimeout < 0:
		return fmt.Errorf("checkpoint: Options.LockTimeout is %v, must not be negative", o.LockTimeout)
	case o.HashWorkers < 1:
		return fmt.Errorf("checkpoint: Options.HashWorkers is %d, must be at least 1", o.HashWorkers)
	case o.MmapSize < 0:
		return fmt.Errorf("checkpoint: Options.MmapSize is %d, must not be negative", o.MmapSize)
	}
	return nil
}
