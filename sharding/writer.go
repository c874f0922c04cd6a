package sharding

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
)

// Member extensions inside a shard: WebDataset groups consecutive members
// by the stem before the first dot.
const (
	extJPEG = ".jpg"
	extJSON = ".json"
)

// tarEpoch is every member's modification time, so that the same samples
// always give the same bytes (and the same sha256).
var tarEpoch = time.Unix(0, 0).UTC()

// ShardWriter writes samples into one tar shard: `<key>.jpg` then
// `<key>.json` per sample, with fixed headers so that the output is a pure
// function of the samples. Close must be called to finish the archive.
type ShardWriter struct {
	tw    *tar.Writer
	count *countWriter
	hash  hash.Hash
	info  ShardInfo
}

// NewShardWriter writes a shard called name (used in ShardInfo) to w.
func NewShardWriter(w io.Writer, name string) *ShardWriter {
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	return &ShardWriter{tw: tar.NewWriter(cw), count: cw, hash: h, info: ShardInfo{Name: name}}
}

// Add appends one sample. meta.Key must be non-empty and contain no dot or
// slash.
func (s *ShardWriter) Add(meta *SampleMeta, jpeg []byte) error {
	if meta.Key == "" || strings.ContainsAny(meta.Key, "./") {
		return fmt.Errorf("sharding: bad sample key %q", meta.Key)
	}
	js, err := json.Marshal(meta)
	if err != nil {
		return err
	}
	// Pad the previous member first, so the count is where the header goes.
	if err := s.tw.Flush(); err != nil {
		return err
	}
	offset := s.count.n
	if err := s.member(meta.Key+extJPEG, jpeg); err != nil {
		return err
	}
	if err := s.member(meta.Key+extJSON, js); err != nil {
		return err
	}
	s.info.Images++
	s.info.Pairs += len(meta.Texts)
	s.info.SamplePairs = append(s.info.SamplePairs, len(meta.Texts))
	s.info.SampleOffsets = append(s.info.SampleOffsets, offset)
	return nil
}

func (s *ShardWriter) member(name string, data []byte) error {
	hdr := &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     name,
		Size:     int64(len(data)),
		Mode:     0o644,
		ModTime:  tarEpoch,
		Format:   tar.FormatUSTAR,
	}
	if err := s.tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err := s.tw.Write(data)
	return err
}

// Close finishes the archive (it does not close the underlying writer) and
// returns the shard's description with size and sha256.
func (s *ShardWriter) Close() (ShardInfo, error) {
	if err := s.tw.Close(); err != nil {
		return ShardInfo{}, err
	}
	s.info.Bytes = s.count.n
	s.info.SHA256 = hex.EncodeToString(s.hash.Sum(nil))
	if s.info.SamplePairs == nil {
		s.info.SamplePairs = []int{}
		s.info.SampleOffsets = []int64{}
	}
	return s.info, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
