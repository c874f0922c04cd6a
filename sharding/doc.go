// Package sharding imports COCO and Visual Genome into WebDataset-compatible
// tar shards with a manifest, and plans epochs: a pure function of
// (manifest, seed, epoch) that orders every image-text pair and groups the
// pairs into work units the coordinator leases to workers.
//
// It needs no LibTorch and never imports the model.
package sharding
