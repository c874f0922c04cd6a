package checkpoint

import "errors"

// Errors returned when a store is opened.
var (
	// ErrNotExist is returned when a read-only open names a file that does
	// not exist.
	ErrNotExist = errors.New("checkpoint: store does not exist")
	// ErrLocked is returned when another process holds the store's file lock
	// past Options.LockTimeout.
	ErrLocked = errors.New("checkpoint: store is locked by another process")
	// ErrTruncated is returned when the file is shorter than the database it
	// describes (it was cut short by a copy, a full disk or a bad restore).
	ErrTruncated = errors.New("checkpoint: store file is truncated")
	// ErrNotStore is returned when the file is a bbolt database but not a
	// checkpoint store.
	ErrNotStore = errors.New("checkpoint: not a checkpoint store")
	// ErrFormatVersion is returned when the store or a checkpoint was written
	// in a format version this build does not read.
	ErrFormatVersion = errors.New("checkpoint: unsupported format version")
)

// Errors returned when checkpoints are written.
var (
	// ErrInvalid is returned for a snapshot that cannot be stored: a tensor
	// whose data does not match its dtype and shape, a duplicate or empty
	// name, an unknown dtype.
	ErrInvalid = errors.New("checkpoint: invalid snapshot")
	// ErrBusy is returned by Writer.TrySave, and by Writer.Save when its
	// context ends, while another checkpoint is still being written.
	ErrBusy = errors.New("checkpoint: a checkpoint write is in flight")
	// ErrClosed is returned by a closed Store or Writer.
	ErrClosed = errors.New("checkpoint: closed")
	// ErrReadOnly is returned when a store opened read-only is written.
	ErrReadOnly = errors.New("checkpoint: store is read-only")
)

// Errors returned when checkpoints are read.
var (
	// ErrNotFound is returned for a checkpoint id that is not in the store,
	// or when the store holds no checkpoint at all.
	ErrNotFound = errors.New("checkpoint: not found")
	// ErrCorrupt is returned when a checkpoint fails verification: a tensor
	// whose bytes do not match its sha256, a missing chunk, unreadable
	// metadata.
	ErrCorrupt = errors.New("checkpoint: corrupt")
	// ErrNoVerified is returned by LatestVerified when no checkpoint in the
	// store verifies.
	ErrNoVerified = errors.New("checkpoint: no checkpoint verifies")
)
