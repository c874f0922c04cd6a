package sharding

import "errors"

// Errors while reading shards and manifests.
var (
	// ErrCorruptShard: a shard's tar structure is broken (truncated, a member
	// missing, out of order, or unparsable). The error names shard and position.
	ErrCorruptShard = errors.New("sharding: corrupt shard")
	// ErrChecksum: a shard's bytes do not hash to the manifest's sha256 (or
	// its size differs).
	ErrChecksum = errors.New("sharding: shard checksum mismatch")
	// ErrBadManifest: manifest.json is unreadable or inconsistent.
	ErrBadManifest = errors.New("sharding: bad manifest")
)

// Errors while importing.
var (
	// ErrMalformedJSON: an annotation file is not valid JSON or not the
	// expected shape; the error names the file and the byte offset.
	ErrMalformedJSON = errors.New("sharding: malformed annotation file")
	// ErrNothingUsable: the import found no image with at least one usable pair.
	ErrNothingUsable = errors.New("sharding: nothing usable in the input")
	// ErrInvalidConfig is wrapped by BuildConfig.Validate errors.
	ErrInvalidConfig = errors.New("sharding: invalid config")
)

// Errors while planning epochs.
var (
	// ErrInvalidPlan: plan arguments out of range (unit size < 1, empty manifest).
	ErrInvalidPlan = errors.New("sharding: invalid plan arguments")
)
