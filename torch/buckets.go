package torch

import (
	bin "encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"
)

// Buckets keeps parameters' gradients in one flat float32 buffer, cut into buckets, and reports
// each bucket as soon as backward has accumulated every gradient in it — so that a data-parallel
// learner can all-reduce early buckets while backward still computes the rest (the overlap of
// PyTorch's DistributedDataParallel). The parameters' .grad are views into the buffer: backward
// adds into it in place, and the all-reduced values are what the optimizer reads.
//
// Host is the buffer in host memory: on the CPU it is the gradients' own storage; on CUDA a pinned
// copy that each bucket is copied into when it is reported, and that ToDevice copies back. After
// the gradients it holds Extra more elements, for the caller (a learner's BatchNorm statistics).
//
// A Buckets owns its native state: Close removes the hooks (each parameter keeps a copy of its
// gradient) and frees the buffer; Host must not be used after it. Arm, Finish and ToDevice belong
// on the thread that runs the LibTorch work; Ready may be read from any goroutine.
type Buckets struct {
	h      uintptr
	host   []float32
	ranges [][2]int
	nGrad  int
	r, w   *os.File
	ready  chan BucketReady
	epoch  int32
}

// BucketReady is a report: bucket Bucket's gradients are final for the backward of Epoch (Arm's).
type BucketReady struct {
	Epoch  int32
	Bucket int
}

// NewBuckets lays params' gradients out in order, bucket after bucket — bucket b holds params
// ends[b-1]..ends[b]-1, ends ascending and ending at len(params) — with extra elements after them.
func NewBuckets(params []*Tensor, ends []int, extra int) (*Buckets, error) {
	if !fn.ready {
		return nil, ErrNotLoaded
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(params) {
		return nil, errors.New("torch: buckets: the bucket ends must end at the parameter count")
	}
	if extra < 0 {
		return nil, fmt.Errorf("torch: buckets: extra %d < 0", extra)
	}
	hs, _, err := handles("buckets", params)
	if err != nil {
		return nil, err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("torch: buckets: %w", err)
	}
	e64 := make([]int64, len(ends))
	for i, e := range ends {
		e64[i] = int64(e)
	}
	b := &Buckets{r: r, w: w, ready: make(chan BucketReady, 4*len(ends))}
	var host unsafe.Pointer
	rc := call(fn.bucketsNew, uintptr(unsafe.Pointer(unsafe.SliceData(hs))), uintptr(len(hs)),
		uintptr(unsafe.Pointer(unsafe.SliceData(e64))), uintptr(len(e64)), uintptr(extra), w.Fd(),
		uintptr(unsafe.Pointer(&b.h)), uintptr(unsafe.Pointer(&host)))
	runtime.KeepAlive(hs)
	if rc != 0 {
		r.Close()
		w.Close()
		return nil, nativeErr(rc, "buckets", params...)
	}
	lo := 0
	first := 0
	for _, e := range ends {
		hi := lo
		for _, p := range params[first:e] {
			hi += int(p.Numel())
		}
		b.ranges = append(b.ranges, [2]int{lo, hi})
		lo, first = hi, e
	}
	b.nGrad = lo
	b.host = unsafe.Slice((*float32)(host), lo+extra)
	go b.read()
	return b, nil
}

// read turns the pipe's reports into Ready's values until Close.
func (b *Buckets) read() {
	defer close(b.ready)
	var msg [8]byte
	for {
		if _, err := io.ReadFull(b.r, msg[:]); err != nil {
			return
		}
		b.ready <- BucketReady{Epoch: int32(bin.NativeEndian.Uint32(msg[:4])), Bucket: int(int32(bin.NativeEndian.Uint32(msg[4:])))}
	}
}

// Host is the gradients, bucket after bucket, then the Extra elements (see Buckets).
func (b *Buckets) Host() []float32 { return b.host }

// Len is the number of buckets; Range(i) is bucket i's elements in Host.
func (b *Buckets) Len() int { return len(b.ranges) }

// Range is bucket i's elements [lo, hi) in Host.
func (b *Buckets) Range(i int) (lo, hi int) { return b.ranges[i][0], b.ranges[i][1] }

// GradElements is the number of gradient elements (Host less the extra ones).
func (b *Buckets) GradElements() int { return b.nGrad }

// Ready delivers each bucket once per Arm, as backward (or Finish) completes it; reports of an
// earlier epoch than the current Arm's may still arrive and are the reader's to skip.
func (b *Buckets) Ready() <-chan BucketReady { return b.ready }

// Arm zeroes the gradients and starts a new epoch; call it before the forward pass.
func (b *Buckets) Arm() (epoch int32, err error) {
	var e int64
	if r := call(fn.bucketsArm, b.h, uintptr(unsafe.Pointer(&e))); r != 0 {
		return 0, nativeErr(r, "buckets_arm")
	}
	b.epoch = int32(e)
	return b.epoch, nil
}

// Finish reports every bucket backward did not (parameters its graph did not reach keep zero
// gradients); call it after backward.
func (b *Buckets) Finish() error {
	var lost int64
	if r := call(fn.bucketsFinish, b.h, uintptr(unsafe.Pointer(&lost))); r != 0 {
		return nativeErr(r, "buckets_finish")
	}
	if lost > 0 {
		return fmt.Errorf("torch: buckets: %d bucket reports could not be written", lost)
	}
	return nil
}

// ToDevice copies Host's gradients back into the device buffer (CUDA; nothing on the CPU), after
// the caller changed them (the all-reduce) and before the optimizer reads them.
func (b *Buckets) ToDevice() error {
	if r := call(fn.bucketsToDevice, b.h); r != 0 {
		return nativeErr(r, "buckets_to_device")
	}
	return nil
}

// Close removes the hooks and frees the buffer.
func (b *Buckets) Close() {
	if b == nil || b.h == 0 {
		return
	}
	call(fn.bucketsFree, b.h)
	b.h = 0
	b.host = nil
	b.w.Close()
	b.r.Close()
}
