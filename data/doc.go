// Package data turns shards into training batches: JPEG decode and resize,
// ImageNet normalisation, WordPiece tokenisation, MLM masking, ITM negatives
// and decoder targets, with bounded concurrency and prefetch. Everything is
// deterministic given (seed, epoch, sample id), whatever the parallelism.
//
// The package needs no LibTorch: a Batch is plain host memory; the model
// package turns it into tensors.
package data
