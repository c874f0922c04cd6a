// Package data turns shards into training batches: JPEG decode and resize,
// ImageNet normalisation, WordPiece tokenisation, MLM masking, ITM negatives
// and decoder targets, with bounded concurrency and prefetch. Everything is
// deterministic given (seed, epoch, sample id), whatever the parallelism.
//
// The package needs no LibTorch: a Batch is plain host memory; the model
// package turns it into tensors.
//
// # Basics
//
// A Source yields Examples: one (image, text) pair each, the image's shard
// record (sharding.SampleMeta) plus the index of the text. NewPipeline reads
// a Source, groups BatchSize pairs per batch, decodes and resizes their
// images on Config.Workers goroutines (each distinct image of a batch once),
// and collates them on one goroutine: ITM negatives (itm.go), tokenisation
// (Tokenizer, BERT's uncased WordPiece), MLM masking (mlm.go), padding
// (collate.go). Next returns the batches in source order.
//
// Three Sources come with the package: PlanSource serves the pairs of an
// epoch plan's work units (sharding.PairRef) by random access into the
// shards, the way training consumes them; ShardSource reads shards front to
// back; SliceSource serves a slice (tests, in-memory data).
//
// A batch's image buffers are large; Batch.Release hands them back for reuse
// once the consumer has copied the pixels (into tensors).
//
// Texts are tokenised by Tokenizer over a Vocab in BERT's vocab.txt format:
// BERT's own file (LoadVocab) or one learnt from the captions (BuildVocab,
// `vlp vocab build`).
//
// # In memory
//
// BuildBatch collates a slice of Examples on the calling goroutine; an
// Example may carry a decoded image.Image instead of JPEG bytes. For tests of
// the model, SynthBatches(synth.Config, Config) renders a shapes world and
// returns one epoch of Batches plus the Tokenizer (its vocabulary learnt from
// the world's texts), with no JPEG, shard or file involved:
//
//	batches, tok, err := data.SynthBatches(synth.Config{Seed: 1, Images: 64},
//		data.Config{...}) // start from data.DefaultConfig()
//
// NewSynthWorld gives the same world as Examples, a Source for NewPipeline,
// and region descriptions as extra pairs.
//
// # Determinism
//
// Every random choice (which tokens are masked and how, whether a row is a
// mismatched pair and which text it gets) comes from a splitmix64 stream
// seeded by (Config.Seed, Config.Epoch, pair id, purpose), never from a
// shared generator. A batch is a function of its pairs alone, so one decode
// goroutine or sixteen give the same bits.
//
// # Caveats
//
// Accent stripping decomposes Latin-1 and Latin Extended-A letters only
// (accents.go): the module does not depend on golang.org/x/text. A corrupt
// image is skipped and counted (Stats, Batch.SkippedIDs), never fatal; a
// damaged shard ends the stream with an error naming it. JPEG decoding uses
// libjpeg-turbo when libturbojpeg.so.0 loads (NewDecoder), image/jpeg
// otherwise. docs/data-pipeline.md states every rule in full.
package data
