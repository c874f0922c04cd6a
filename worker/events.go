package worker

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// EventWriter writes TensorBoard event files: TFRecord framing (length,
// masked CRC-32C of the length, the record, its masked CRC-32C) around
// Event protocol buffers, encoded by hand — a version event, then one event
// per step holding scalar summaries.
type EventWriter struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

// NewEventWriter creates dir and an event file in it named the way
// TensorBoard looks for (events.out.tfevents.<unix seconds>.<host>).
func NewEventWriter(dir, host string) (*EventWriter, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("worker: event dir: %w", err)
	}
	name := fmt.Sprintf("events.out.tfevents.%d.%s", time.Now().Unix(), host)
	f, err := os.Create(filepath.Join(dir, name))
	if err != nil {
		return nil, fmt.Errorf("worker: event file: %w", err)
	}
	e := &EventWriter{f: f, w: bufio.NewWriter(f)}
	// Event{wall_time=1, file_version=3}
	var ev []byte
	ev = pbDouble(ev, 1, float64(time.Now().UnixNano())/1e9)
	ev = pbBytes(ev, 3, []byte("brain.Event:2"))
	e.record(ev)
	return e, e.w.Flush()
}

// Scalars writes one event at s.Step with every loss (as loss/<name>), the
// gradient norm, pairs per second and the step-time split.
func (e *EventWriter) Scalars(s StepSummary) {
	vals := map[string]float64{"grad_norm": s.GradNorm}
	for k, v := range s.Losses {
		vals["loss/"+k] = v
	}
	t := s.Timings
	if t.Total > 0 {
		vals["throughput/pairs_per_s"] = float64(s.Pairs) / t.Total.Seconds()
	}
	vals["time/data_ms"] = float64(t.Data.Microseconds()) / 1e3
	vals["time/forward_backward_ms"] = float64(t.Compute.Microseconds()) / 1e3
	vals["time/allreduce_ms"] = float64(t.AllReduce.Microseconds()) / 1e3
	vals["time/optimizer_ms"] = float64(t.Optimizer.Microseconds()) / 1e3
	e.Write(int64(s.Step), vals)
}

// Write writes one event holding a scalar per tag.
func (e *EventWriter) Write(step int64, vals map[string]float64) {
	tags := make([]string, 0, len(vals))
	for k := range vals {
		tags = append(tags, k)
	}
	sort.Strings(tags)
	var sum []byte
	for _, tag := range tags {
		// Summary.Value{tag=1, simple_value=2 (float)}
		var v []byte
		v = pbBytes(v, 1, []byte(tag))
		v = pbFloat(v, 2, float32(vals[tag]))
		sum = pbBytes(sum, 1, v)
	}
	// Event{wall_time=1, step=2, summary=5}
	var ev []byte
	ev = pbDouble(ev, 1, float64(time.Now().UnixNano())/1e9)
	ev = pbVarintField(ev, 2, uint64(step))
	ev = pbBytes(ev, 5, sum)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.record(ev)
	e.w.Flush()
}

// Close flushes and closes the file.
func (e *EventWriter) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.w.Flush(); err != nil {
		e.f.Close()
		return err
	}
	return e.f.Close()
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is TFRecord's masked CRC-32C.
func maskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return ((c >> 15) | (c << 17)) + 0xa282ead8
}

func (e *EventWriter) record(data []byte) {
	var hdr [12]byte
	binary.LittleEndian.PutUint64(hdr[:8], uint64(len(data)))
	binary.LittleEndian.PutUint32(hdr[8:], maskedCRC(hdr[:8]))
	var foot [4]byte
	binary.LittleEndian.PutUint32(foot[:], maskedCRC(data))
	e.w.Write(hdr[:])
	e.w.Write(data)
	e.w.Write(foot[:])
}

func pbVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func pbVarintField(b []byte, field int, v uint64) []byte {
	return pbVarint(pbVarint(b, uint64(field)<<3), v)
}

func pbDouble(b []byte, field int, v float64) []byte {
	b = pbVarint(b, uint64(field)<<3|1)
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

func pbFloat(b []byte, field int, v float32) []byte {
	b = pbVarint(b, uint64(field)<<3|5)
	return binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
}

func pbBytes(b []byte, field int, v []byte) []byte {
	b = pbVarint(b, uint64(field)<<3|2)
	b = pbVarint(b, uint64(len(v)))
	return append(b, v...)
}
