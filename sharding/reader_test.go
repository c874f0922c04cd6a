package sharding

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// writeTestShard writes n samples into dir/name and returns its info.
func writeTestShard(t *testing.T, dir, name string, n int) ShardInfo {
	t.Helper()
	var buf bytes.Buffer
	w := NewShardWriter(&buf, name)
	for i := 0; i < n; i++ {
		id, _ := MakeID(IDSpaceCOCO, uint64(100+i))
		meta := &SampleMeta{Key: SampleKey(id), ImageID: id, Source: "coco", Width: 8, Height: 8}
		for k := 0; k <= i%3; k++ {
			pid, _ := MakeID(IDSpaceCOCO, uint64(1000*i+k))
			meta.Texts = append(meta.Texts, Text{PairID: pid, Kind: "caption", Text: fmt.Sprintf("caption %d of %d", k, i)})
		}
		meta.Objects = []Object{{Box: [4]float32{0.5, 0.5, 0.2, 0.2}, Class: i % 5}}
		jpg := bytes.Repeat([]byte{byte(i + 1)}, 300+i*7)
		if err := w.Add(meta, jpg); err != nil {
			t.Fatal(err)
		}
	}
	info, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return info
}

func readAll(t *testing.T, r *Reader) ([]Sample, error) {
	t.Helper()
	var out []Sample
	for s, err := range r.All() {
		if err != nil {
			return out, err
		}
		out = append(out, s)
	}
	return out, nil
}

func TestReaderRoundTrip(t *testing.T) {
	dir := t.TempDir()
	info := writeTestShard(t, dir, "shard-000000.tar", 7)
	if info.Images != 7 || info.Pairs != 1+2+3+1+2+3+1 || len(info.SamplePairs) != 7 {
		t.Fatalf("info %+v", info)
	}
	r, err := OpenShard(dir, info)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := readAll(t, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 7 {
		t.Fatalf("read %d samples, want 7", len(got))
	}
	for i, s := range got {
		if s.Index != i || len(s.Meta.Texts) != info.SamplePairs[i] || len(s.JPEG) != 300+i*7 || s.JPEG[0] != byte(i+1) {
			t.Fatalf("sample %d: %+v (%d bytes)", i, s.Meta, len(s.JPEG))
		}
	}
	// Writing the same samples again gives the same bytes.
	if again := writeTestShard(t, t.TempDir(), "shard-000000.tar", 7); again.SHA256 != info.SHA256 {
		t.Fatal("shards are not byte-deterministic")
	}
}

func TestReaderDetectsDamage(t *testing.T) {
	dir := t.TempDir()
	info := writeTestShard(t, dir, "s.tar", 5)
	orig, err := os.ReadFile(filepath.Join(dir, "s.tar"))
	if err != nil {
		t.Fatal(err)
	}
	jpegAt := bytes.Index(orig, bytes.Repeat([]byte{3}, 50)) // inside sample 2's image
	jsonAt := bytes.Index(orig, []byte(`"caption 0 of 3"`))
	tests := []struct {
		name   string
		damage func([]byte) []byte
		want   error
		where  string // substring of the error
	}{
		{"truncated mid member", func(b []byte) []byte { return b[:len(b)/2] }, ErrCorruptShard, "s.tar: sample"},
		{"truncated at a header", func(b []byte) []byte { return b[:1024+512] }, ErrCorruptShard, "s.tar"},
		{"end marker missing", func(b []byte) []byte { return b[:len(b)-1024*5] }, ErrCorruptShard, "s.tar"},
		{"flipped image byte", func(b []byte) []byte { b[jpegAt] ^= 0xff; return b }, ErrChecksum, "sha256"},
		{"broken json", func(b []byte) []byte { b[jsonAt] = '{'; return b }, ErrCorruptShard, "sample 3"},
		{"extra bytes", func(b []byte) []byte { return append(b, make([]byte, 512)...) }, ErrChecksum, "bytes"},
		{"header garbage", func(b []byte) []byte { copy(b[2048:], "garbage!"); return b }, ErrCorruptShard, "s.tar"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := t.TempDir()
			damaged := tt.damage(append([]byte(nil), orig...))
			if err := os.WriteFile(filepath.Join(d, "s.tar"), damaged, 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := OpenShard(d, info)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, err = readAll(t, r)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.where) {
				t.Fatalf("error %q does not mention %q", err, tt.where)
			}
			// The error is sticky.
			if _, again := r.Next(); !errors.Is(again, tt.want) {
				t.Fatalf("second Next: %v", again)
			}
		})
	}
}

func TestReaderWithoutChecksum(t *testing.T) {
	dir := t.TempDir()
	writeTestShard(t, dir, "s.tar", 3)
	data, _ := os.ReadFile(filepath.Join(dir, "s.tar"))
	r := NewReader(bytes.NewReader(data), "s.tar")
	got, err := readAll(t, r)
	if err != nil || len(got) != 3 {
		t.Fatalf("got %d samples, err %v", len(got), err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("after the end: %v", err)
	}
	r = NewReader(bytes.NewReader(data[:len(data)-700]), "s.tar")
	if _, err := readAll(t, r); !errors.Is(err, ErrCorruptShard) {
		t.Fatalf("truncated: %v", err)
	}
}

func TestReadSampleAt(t *testing.T) {
	dir := t.TempDir()
	info := writeTestShard(t, dir, "s.tar", 6)
	if len(info.SampleOffsets) != 6 || info.SampleOffsets[0] != 0 {
		t.Fatalf("offsets %v", info.SampleOffsets)
	}
	f, err := os.Open(filepath.Join(dir, "s.tar"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, i := range []int{5, 0, 3} {
		s, err := ReadSampleAt(f, info.Name, i, info.SampleOffsets[i])
		if err != nil {
			t.Fatal(err)
		}
		if s.Index != i || len(s.Meta.Texts) != info.SamplePairs[i] || s.JPEG[0] != byte(i+1) {
			t.Fatalf("sample %d: got index %d, %d texts", i, s.Index, len(s.Meta.Texts))
		}
	}
	// A wrong offset is a clear error, not a wrong sample.
	if _, err := ReadSampleAt(f, info.Name, 2, info.SampleOffsets[2]+512); !errors.Is(err, ErrCorruptShard) {
		t.Fatalf("misaligned offset: %v", err)
	}
	if _, err := ReadSampleAt(f, info.Name, 6, info.Bytes-1024); !errors.Is(err, ErrCorruptShard) {
		t.Fatalf("offset at the end: %v", err)
	}
}

// TestReaderRejectsSparseMember: a 10 KiB tar whose PAX headers make a
// member a sparse file of 1 GiB (found by FuzzShardReader: the reader
// used to allocate and fill the whole expansion) is refused as corrupt.
func TestReaderRejectsSparseMember(t *testing.T) {
	data := fuzzSeed(t, "FuzzShardReader", "sparse-member")
	if len(data) > 16<<10 {
		t.Fatalf("seed of %d bytes", len(data))
	}
	_, err := NewReader(bytes.NewReader(data), "sparse.tar").Next()
	if !errors.Is(err, ErrCorruptShard) || !strings.Contains(err.Error(), `member "a.jpg" is a sparse file`) {
		t.Fatalf("sparse member: %v", err)
	}
}

// fuzzSeed reads a []byte seed of testdata/fuzz/<target>/<name>.
func fuzzSeed(t *testing.T, target, name string) []byte {
	t.Helper()
	text, err := os.ReadFile(filepath.Join("testdata", "fuzz", target, name))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.SplitN(string(text), "\n", 3)
	lit, ok := strings.CutPrefix(strings.TrimSpace(lines[1]), "[]byte(")
	if !ok {
		t.Fatalf("%s: not a []byte seed", name)
	}
	s, err := strconv.Unquote(strings.TrimSuffix(lit, ")"))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(s)
}

// TestReadVerifiedSample: a sample comes back only from a shard that
// verifies; ReadSampleFile reads it without the whole-file check.
func TestReadVerifiedSample(t *testing.T) {
	dir := t.TempDir()
	info := writeTestShard(t, dir, "shard-000000.tar", 4)
	s, err := ReadVerifiedSample(dir, info, 2)
	if err != nil || s.Index != 2 || s.Meta.Key != SampleKey(mustID(t, 102)) {
		t.Fatalf("sample 2: %+v, %v", s.Meta, err)
	}
	if _, err := ReadVerifiedSample(dir, info, 9); !errors.Is(err, ErrCorruptShard) {
		t.Fatalf("sample 9 of 4: %v", err)
	}
	// Damage the JPEG bytes of sample 0: sample 2 is intact but not shown.
	p := filepath.Join(dir, info.Name)
	data, _ := os.ReadFile(p)
	data[info.SampleOffsets[0]+512+5] ^= 0xff
	os.WriteFile(p, data, 0o644)
	if _, err := ReadVerifiedSample(dir, info, 2); !errors.Is(err, ErrChecksum) {
		t.Fatalf("sample of a damaged shard: %v", err)
	}
	if s, err := ReadSampleFile(dir, info, 2); err != nil || s.Index != 2 {
		t.Fatalf("ReadSampleFile: %+v, %v", s.Meta, err)
	}
}

func mustID(t *testing.T, n uint64) uint64 {
	t.Helper()
	id, err := MakeID(IDSpaceCOCO, n)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
