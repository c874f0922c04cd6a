// Package checkpoint stores the training state of a vlp job — parameters,
// optimizer state, RNG states, the step, the epoch, every rank's data cursor,
// the job spec and the checksums of the tokenizer and vocabularies — in a
// bbolt file, and exports it to PyTorch.
//
// # Basics
//
// A Store is one bbolt file. Save writes a Snapshot as one checkpoint in ONE
// bbolt read-write transaction, committed with fsync: either the whole
// checkpoint is in the file or none of it is. Checkpoints get increasing ids;
// List, Latest and Stat describe them without reading tensors; Load reads
// one back; LatestVerified walks back from the newest and returns the first
// that verifies, reporting every newer one it skipped.
//
// The package knows nothing of LibTorch. A tensor is a name, a DType, a
// shape and its raw little-endian bytes (Tensor); the worker copies tensors
// to host memory and hands over the bytes. Opaque state — an RNG generator's
// bytes — travels as a uint8 tensor (Blob).
//
// A Writer runs Save in the background so training continues while the
// checkpoint reaches the disk. Writer.Save returns as soon as the snapshot is
// handed over and reports, on a channel, when the checkpoint is durable. Only
// then may the worker record it in Raft. One write is in flight at a time:
// Save waits for the previous one (bounded by its context), TrySave refuses.
//
// # Atomicity
//
// bbolt writes a transaction's pages to free space, fsyncs them, and only
// then writes and fsyncs the meta page that points at them. A process killed
// at any moment before the meta page is written leaves the previous meta page
// in charge, so the previous checkpoints are intact and the new one is
// absent; killed after, the new checkpoint is whole. The tests kill a writing
// process with SIGKILL at points across the commit and check both outcomes.
//
// # Verification
//
// Every tensor is stored with its sha256, and the metadata record with its
// own sha256. Verify recomputes them in place (no copy) and checks that every
// chunk is present with the right size; Load does the same while copying.
// A bit flipped on disk, a value rewritten behind the store's back, a missing
// chunk or edited metadata is reported with ErrCorrupt, naming the file, the
// checkpoint and the tensor. Open refuses a file shorter than its database
// (ErrTruncated), a bbolt file that is not a checkpoint store (ErrNotStore)
// and a format it does not read (ErrFormatVersion), each naming the file.
//
// # Retention
//
// Save deletes the oldest checkpoints beyond Options.Keep in the same
// transaction as the new one, so a crash never leaves more, or fewer, than
// intended. bbolt reuses the freed pages for later checkpoints; the file
// settles near Keep+1 checkpoints in size and never shrinks.
//
// # Caveats
//
//   - bbolt copies each value once into the page buffers it writes, so a
//     commit holds the snapshot plus one more copy of it in memory. The
//     snapshot's byte slices must not change until the write completes.
//   - A process that has the store open for writing holds an exclusive file
//     lock; tools (vlp checkpoint …) open read-only and wait up to
//     Options.LockTimeout for it, then fail with ErrLocked.
//   - The checksums catch corruption; they do not repair it. Keep at least
//     two checkpoints so there is one to fall back on.
//   - Durability against power loss rests on fsync reaching stable storage;
//     a disk or file system that acknowledges fsync early can lose the last
//     commit. The checksums then still catch a torn checkpoint.
//   - bbolt's own pages (branches, leaves, the meta pages) are protected by
//     bbolt, not by these checksums; a bit flipped there can make the file
//     unreadable rather than fall back to the previous checkpoint.
//
// docs/checkpoint.md describes the on-disk layout and the PyTorch export.
package checkpoint
