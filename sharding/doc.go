// Package sharding imports COCO and Visual Genome into WebDataset-compatible
// tar shards with a manifest, and plans epochs: a pure function of
// (manifest, seed, epoch) that orders every image-text pair and groups the
// pairs into work units the coordinator leases to workers.
//
// It needs no LibTorch and never imports the model.
//
// # Layout
//
// A shard directory holds shard-000000.tar, shard-000001.tar, … and
// manifest.json (Manifest). Each shard is a plain tar in which every image
// is two adjacent members, `<key>.jpg` (the original JPEG bytes) and
// `<key>.json` (a SampleMeta: every caption and region description of the
// image, its objects with normalised cx, cy, w, h boxes, class and
// attribute indices into the manifest's vocabularies). Shards are
// byte-for-byte reproducible: the same input gives the same sha256.
//
// # Ids
//
// An image id and a pair id are dataset-wide 64-bit values built from the
// source dataset's own ids (ids.go): they do not depend on shard size,
// worker count or import order. A pair is also addressed by position,
// PairRef{Shard, Sample, Text}, which is what the epoch plan hands out.
//
// # Import
//
// Build streams the annotation files, several at once, through a scanner
// that checks the JSON grammar and hands over one array element at a time
// (jsonscan.go, jsonstream.go); record decoders (records.go) turn elements
// into per-image records spooled to scratch files, and memory keeps only
// offsets and ids, so the full 6M-pair COCO + VG import stays within a few
// hundred MB. Shards are written in parallel and are resumable: a shard
// whose record matches the inputs and settings and whose file verifies is
// kept.
//
// # Bad and hostile input
//
// Every item read is accounted for by unit (image, caption, region, …):
// kept, or skipped for exactly one reason (Report, Tally; read = kept +
// skipped). Ids given twice are kept once when the copies are identical
// and not at all when they differ (dups.go). Texts are never repaired or
// cut: invalid UTF-8 and over-long texts are skipped (jsontext.go). A JPEG's
// size is read from its header and checked against limits before it is
// decoded, and decodes share a memory budget (imagecheck.go), so no input
// makes the importer's memory grow. Only an import with no usable pair
// fails (ErrNothingUsable). docs/data.md states every rule.
//
// # Reading
//
// OpenShard returns a Reader over one shard's samples in order; it checks
// structure as it goes and, at the end, the manifest's size and sha256. A
// member's size is taken from what the shard holds, never from what its
// header claims.
// ReadSampleAt reads one sample at ShardInfo.SampleOffsets for random
// access. Verify checks a whole directory.
//
// # Epoch plan
//
// NewPlan(manifest, seed, epoch, unitSize) shuffles all pairs with a keyed
// bijection and cuts them into units; Unit(u) lists a unit's PairRefs. It
// stores no permutation, so any unit of any epoch is computed on demand.
//
// # Caveats
//
// The plan shuffles pairs globally, so one unit touches many shards: read
// units with ReadSampleAt, not by scanning shards. A Reader is not safe for
// concurrent use; ReadSampleAt on a shared *os.File is.
package sharding
