package allreduce

import (
	"encoding/binary"
	"fmt"
)

// Every message is one frame: a fixed 64-byte little-endian header, the
// metadata padded to 8 bytes, then the payload. docs/allreduce.md has the
// table; the layout below is the authority.
//
//	off size field
//	  0   4  magic "VLPR"
//	  4   1  version (1)
//	  5   1  kind
//	  6   1  dtype of the payload
//	  7   1  flags (reserved, 0)
//	  8   8  job tag (FNV-1a of the job name)
//	 16   8  generation number
//	 24   8  op: sequence number of the collective within the generation
//	 32   4  from: the sender's rank
//	 36   4  step: ring step within the op (abort: reason)
//	 40   8  offset: first element (bytes for broadcast) of the payload within its segment (abort: rank)
//	 48   4  count: elements (bytes) in the payload
//	 52   4  meta length in bytes (before padding)
//	 56   8  total: elements (bytes) of the whole buffer; ack, heartbeat to the left: bytes consumed; bye: last op
const (
	headerSize  = 64
	wireMagic   = 0x52504c56 // "VLPR" read little-endian
	wireVersion = 1
)

// kind says what a frame is for.
type kind uint8

const (
	kindReduceScatter kind = 1 + iota // data: a partial sum travelling the ring
	kindAllGather                     // data: a finished segment travelling the ring
	kindBroadcast                     // data: a piece of the root's buffer
	kindAck                           // control: the receiver consumed `total` bytes so far
	kindHeartbeat                     // control: the sender is alive
	kindAbort                         // control: the generation failed (reason in step)
	kindBye                           // control: the sender leaves after op `total`
)

func (k kind) isData() bool { return k >= kindReduceScatter && k <= kindBroadcast }

func (k kind) String() string {
	switch k {
	case kindReduceScatter:
		return "reduce-scatter"
	case kindAllGather:
		return "all-gather"
	case kindBroadcast:
		return "broadcast"
	case kindAck:
		return "ack"
	case kindHeartbeat:
		return "heartbeat"
	case kindAbort:
		return "abort"
	case kindBye:
		return "bye"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// DType is the element type of a payload on the wire.
type DType uint8

const (
	// Float32 sends IEEE binary32, 4 bytes an element: exact.
	Float32 DType = 1
	// BFloat16 sends the upper half of binary32, rounded to nearest even:
	// 2 bytes an element; every rank still adds in float32.
	BFloat16 DType = 2
	// Bytes is raw bytes (broadcast).
	Bytes DType = 3
)

func (d DType) size() int {
	switch d {
	case Float32:
		return 4
	case BFloat16:
		return 2
	case Bytes:
		return 1
	}
	return 0
}

func (d DType) String() string {
	switch d {
	case Float32:
		return "float32"
	case BFloat16:
		return "bf16"
	case Bytes:
		return "bytes"
	}
	return fmt.Sprintf("dtype(%d)", uint8(d))
}

// ParseDType reads "float32"/"f32" or "bf16"/"bfloat16".
func ParseDType(s string) (DType, error) {
	switch s {
	case "float32", "f32", "fp32":
		return Float32, nil
	case "bf16", "bfloat16":
		return BFloat16, nil
	}
	return 0, configErr("unknown wire type %q (want float32 or bf16)", s)
}

// header is the decoded fixed part of a frame.
type header struct {
	kind    kind
	dtype   DType
	job     uint64
	gen     uint64
	op      uint64
	from    uint32
	step    uint32
	offset  uint64
	count   uint32
	metaLen uint32
	total   uint64
}

func (h *header) put(b []byte) {
	_ = b[headerSize-1]
	le := binary.LittleEndian
	le.PutUint32(b[0:], wireMagic)
	b[4] = wireVersion
	b[5] = byte(h.kind)
	b[6] = byte(h.dtype)
	b[7] = 0
	le.PutUint64(b[8:], h.job)
	le.PutUint64(b[16:], h.gen)
	le.PutUint64(b[24:], h.op)
	le.PutUint32(b[32:], h.from)
	le.PutUint32(b[36:], h.step)
	le.PutUint64(b[40:], h.offset)
	le.PutUint32(b[48:], h.count)
	le.PutUint32(b[52:], h.metaLen)
	le.PutUint64(b[56:], h.total)
}

// parseFrame splits a frame into header, metadata and payload. It checks only
// what keeps the slicing safe; the caller checks the tags.
func parseFrame(b []byte) (h header, meta, payload []byte, err error) {
	if len(b) < headerSize {
		return h, nil, nil, fmt.Errorf("frame of %d bytes is shorter than the %d-byte header", len(b), headerSize)
	}
	le := binary.LittleEndian
	if le.Uint32(b[0:]) != wireMagic || b[4] != wireVersion {
		return h, nil, nil, fmt.Errorf("bad magic or version")
	}
	h = header{
		kind:    kind(b[5]),
		dtype:   DType(b[6]),
		job:     le.Uint64(b[8:]),
		gen:     le.Uint64(b[16:]),
		op:      le.Uint64(b[24:]),
		from:    le.Uint32(b[32:]),
		step:    le.Uint32(b[36:]),
		offset:  le.Uint64(b[40:]),
		count:   le.Uint32(b[48:]),
		metaLen: le.Uint32(b[52:]),
		total:   le.Uint64(b[56:]),
	}
	rest := b[headerSize:]
	padded := pad8(int(h.metaLen))
	if h.metaLen > uint32(len(rest)) || padded > len(rest) {
		return h, nil, nil, fmt.Errorf("meta length %d exceeds the frame", h.metaLen)
	}
	return h, rest[:h.metaLen], rest[padded:], nil
}

// pad8 rounds n up to a multiple of 8, so payloads stay 8-byte aligned.
func pad8(n int) int { return (n + 7) &^ 7 }

// zeros pads metadata; never written.
var zeros [8]byte

// retag rewrites a frame's kind, sender and step in place, for passing a
// received frame on.
func retag(b []byte, k kind, from, step uint32) {
	b[5] = byte(k)
	binary.LittleEndian.PutUint32(b[32:], from)
	binary.LittleEndian.PutUint32(b[36:], step)
}
