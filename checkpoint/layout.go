package checkpoint

import (
	"encoding/binary"
	"time"
)

// FormatVersion is the on-disk format this build writes and reads. It is
// stored once per file (bucket "store", key "format") and in every
// checkpoint's metadata; docs/checkpoint.md describes it.
const FormatVersion = 1

// formatName marks a bbolt file as a checkpoint store.
const formatName = "vlp-checkpoint"

// Bucket and key names. The layout:
//
//	store/format              {"format":"vlp-checkpoint","version":1}
//	checkpoints/<id>/meta     the checkpoint's record (JSON)
//	checkpoints/<id>/metasum  sha256 of meta (32 bytes)
//	checkpoints/<id>/data/<tensor:u32><chunk:u32>  raw tensor bytes
//
// <id> is a big-endian uint64 from the checkpoints bucket's sequence, so
// cursor order is save order and ids are never reused.
var (
	bucketStore       = []byte("store")
	bucketCheckpoints = []byte("checkpoints")
	bucketData        = []byte("data")
	keyFormat         = []byte("format")
	keyMeta           = []byte("meta")
	keyMetaSum        = []byte("metasum")
)

// storeFormat is the value of store/format.
type storeFormat struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// record is a checkpoint's metadata as stored under meta.
type record struct {
	Format  int            `json:"format"`
	Meta    Meta           `json:"meta"`
	Tensors []tensorRecord `json:"tensors"`
}

// tensorRecord describes one tensor; its index in record.Tensors is the
// tensor number in its data keys.
type tensorRecord struct {
	Group     Group   `json:"group"`
	Name      string  `json:"name"`
	DType     DType   `json:"dtype"`
	Shape     []int64 `json:"shape"`
	Bytes     int64   `json:"bytes"`
	SHA256    string  `json:"sha256"` // hex
	ChunkSize int64   `json:"chunk_size"`
	Chunks    int     `json:"chunks"`
}

func idKey(id uint64) []byte {
	var k [8]byte
	binary.BigEndian.PutUint64(k[:], id)
	return k[:]
}

func dataKey(tensor, chunk int) []byte {
	var k [8]byte
	binary.BigEndian.PutUint32(k[:4], uint32(tensor))
	binary.BigEndian.PutUint32(k[4:], uint32(chunk))
	return k[:]
}

// Info describes a stored checkpoint without reading its tensors.
type Info struct {
	ID      uint64       `json:"id"`      // unique in the store, increasing in save order
	Format  int          `json:"format"`  // format version of the checkpoint
	Meta    Meta         `json:"meta"`    // step, epoch, cursors, job spec, checksums, creation time
	Tensors []TensorInfo `json:"tensors"` // in storage order: params, optimizer, rng
	Bytes   int64        `json:"bytes"`   // total tensor bytes
}

// TensorInfo describes one stored tensor.
type TensorInfo struct {
	Group  Group   `json:"group"`
	Name   string  `json:"name"`
	DType  DType   `json:"dtype"`
	Shape  []int64 `json:"shape"`
	Bytes  int64   `json:"bytes"`
	SHA256 string  `json:"sha256"`
}

// Step is a shorthand for Meta.Step.
func (i Info) Step() int64 { return i.Meta.Step }

// Created is a shorthand for Meta.Created.
func (i Info) Created() time.Time { return i.Meta.Created }

func (r *record) info(id uint64) Info {
	in := Info{ID: id, Format: r.Format, Meta: r.Meta, Tensors: make([]TensorInfo, len(r.Tensors))}
	for i, t := range r.Tensors {
		in.Tensors[i] = TensorInfo{Group: t.Group, Name: t.Name, DType: t.DType, Shape: t.Shape, Bytes: t.Bytes, SHA256: t.SHA256}
		in.Bytes += t.Bytes
	}
	return in
}
