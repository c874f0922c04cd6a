package checkpoint

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Tensor is one named tensor as raw bytes: the elements of a contiguous,
// row-major tensor in little-endian order. The package never interprets the
// bytes; the worker copies them out of (and back into) LibTorch tensors.
type Tensor struct {
	Name  string
	DType DType
	Shape []int64 // [] is a scalar
	Data  []byte  // len(Data) == NumElements() * DType.Size()
}

// NumElements returns the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Blob wraps opaque bytes (an RNG state, a serialized optimizer setting) as a
// one-dimensional uint8 tensor.
func Blob(name string, data []byte) Tensor {
	return Tensor{Name: name, DType: Uint8, Shape: []int64{int64(len(data))}, Data: data}
}

// Float32Tensor is v as a one-dimensional float32 tensor (the caller may set Shape after).
func Float32Tensor(name string, v []float32) Tensor {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return Tensor{Name: name, DType: Float32, Shape: []int64{int64(len(v))}, Data: b}
}

// Float32s copies a float32 tensor of len(dst) elements into dst.
func (t Tensor) Float32s(dst []float32) error {
	if t.DType != Float32 || len(t.Data) != 4*len(dst) {
		return fmt.Errorf("tensor %q: %s of %d bytes, want %d float32", t.Name, t.DType, len(t.Data), len(dst))
	}
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Data[4*i:]))
	}
	return nil
}

// validate checks that the bytes fit the dtype and shape.
func (t Tensor) validate() error {
	if t.Name == "" {
		return fmt.Errorf("%w: tensor with an empty name", ErrInvalid)
	}
	if !t.DType.Valid() {
		return fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrInvalid, t.Name, t.DType)
	}
	n := int64(1)
	for _, d := range t.Shape {
		if d < 0 {
			return fmt.Errorf("%w: tensor %q: negative dimension in shape %v", ErrInvalid, t.Name, t.Shape)
		}
		if d != 0 && n > math.MaxInt64/d {
			return fmt.Errorf("%w: tensor %q: shape %v overflows", ErrInvalid, t.Name, t.Shape)
		}
		n *= d
	}
	if want := n * int64(t.DType.Size()); int64(len(t.Data)) != want {
		return fmt.Errorf("%w: tensor %q: %d bytes of data, shape %v of %s needs %d",
			ErrInvalid, t.Name, len(t.Data), t.Shape, t.DType, want)
	}
	return nil
}

// Group says which part of the training state a tensor belongs to.
type Group string

// The groups of a snapshot, in the order they are stored.
const (
	GroupParams    Group = "params"
	GroupOptimizer Group = "optimizer"
	GroupRNG       Group = "rng"
)

// Groups lists every group in storage order.
var Groups = []Group{GroupParams, GroupOptimizer, GroupRNG}

// Meta is the non-tensor state of a checkpoint. The package stores the JSON
// fields verbatim; their schema belongs to the worker and the coordinator.
type Meta struct {
	Step  int64 `json:"step"`
	Epoch int64 `json:"epoch"`
	// Cursors holds every rank's data cursor at Step, indexed by rank.
	Cursors []json.RawMessage `json:"cursors,omitempty"`
	// JobSpec is the job specification the run was started with.
	JobSpec json.RawMessage `json:"job_spec,omitempty"`
	// Checksums names the tokenizer and vocabulary files the run depends on
	// and their digests, so a resume with different files is caught.
	Checksums map[string]string `json:"checksums,omitempty"`
	// Layout names the network the parameters belong to (the model's
	// Config.Layout): two layouts can share every parameter's name and
	// shape and still compute different functions, so a restore into
	// another layout is refused. Empty in checkpoints written before it.
	Layout string `json:"layout,omitempty"`
	// Created is when the snapshot was taken; Save sets it when zero.
	Created time.Time `json:"created"`
}

// Snapshot is the whole training state at one step. Once handed to Save or
// Writer.Save, its byte slices belong to the store until the write completes:
// bbolt references them until the transaction commits.
type Snapshot struct {
	Meta      Meta
	Params    []Tensor // the model's state dict
	Optimizer []Tensor // e.g. AdamW's exp_avg and exp_avg_sq per parameter, step counts
	RNG       []Tensor // generator states, usually as Blob
}

// group returns the tensors of g.
func (s *Snapshot) group(g Group) []Tensor {
	switch g {
	case GroupParams:
		return s.Params
	case GroupOptimizer:
		return s.Optimizer
	case GroupRNG:
		return s.RNG
	}
	return nil
}

// groupRef returns a pointer to the slice of g, for the reader to fill.
func (s *Snapshot) groupRef(g Group) *[]Tensor {
	switch g {
	case GroupParams:
		return &s.Params
	case GroupOptimizer:
		return &s.Optimizer
	case GroupRNG:
		return &s.RNG
	}
	return nil
}

// Find returns the tensor of group g called name.
func (s *Snapshot) Find(g Group, name string) (Tensor, bool) {
	for _, t := range s.group(g) {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// Bytes returns the total size of the tensor data in bytes.
func (s *Snapshot) Bytes() int64 {
	var n int64
	for _, g := range Groups {
		for _, t := range s.group(g) {
			n += int64(len(t.Data))
		}
	}
	return n
}

// Validate checks every tensor and that names are unique within a group.
func (s *Snapshot) Validate() error {
	if s == nil {
		return fmt.Errorf("%w: nil snapshot", ErrInvalid)
	}
	if s.Meta.Step < 0 || s.Meta.Epoch < 0 {
		return fmt.Errorf("%w: negative step %d or epoch %d", ErrInvalid, s.Meta.Step, s.Meta.Epoch)
	}
	for i, c := range s.Meta.Cursors {
		if len(c) > 0 && !json.Valid(c) {
			return fmt.Errorf("%w: cursor of rank %d is not JSON", ErrInvalid, i)
		}
	}
	if len(s.Meta.JobSpec) > 0 && !json.Valid(s.Meta.JobSpec) {
		return fmt.Errorf("%w: job spec is not JSON", ErrInvalid)
	}
	for _, g := range Groups {
		seen := make(map[string]bool)
		for _, t := range s.group(g) {
			if err := t.validate(); err != nil {
				return fmt.Errorf("%s: %w", g, err)
			}
			if seen[t.Name] {
				return fmt.Errorf("%w: %s: duplicate tensor name %q", ErrInvalid, g, t.Name)
			}
			seen[t.Name] = true
		}
	}
	return nil
}
