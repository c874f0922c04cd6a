package checkpoint

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestSaveLoadRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name      string
		chunkSize int
		bytes     int
	}{
		{"one chunk per tensor", 0, 64 << 10},
		{"tensors split across chunks", 4096, 100_000},
		{"chunk size divides the tensor", 4096, 4 * 4096},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, path := openTest(t, Options{ChunkSize: tc.chunkSize})
			want := testSnapshot(1, 10, tc.bytes)
			in := mustSave(t, s, want)
			if in.Step() != 10 || in.Format != FormatVersion || in.Bytes != want.Bytes() {
				t.Fatalf("info = step %d format %d bytes %d, want 10 %d %d", in.Step(), in.Format, in.Bytes, FormatVersion, want.Bytes())
			}
			if in.Created().IsZero() {
				t.Fatal("created time not set")
			}
			if err := s.Verify(in.ID); err != nil {
				t.Fatal(err)
			}
			// Read back from a fresh open, so nothing comes from memory.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			got, snap, err := s2.Load(in.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != in.ID || len(got.Tensors) != len(in.Tensors) {
				t.Fatalf("loaded info %+v, saved %+v", got, in)
			}
			requireSameSnapshot(t, want, snap)
		})
	}
}

func TestRetentionKeepsLastK(t *testing.T) {
	s, _ := openTest(t, Options{Keep: 2})
	var ids []uint64
	for i := int64(1); i <= 5; i++ {
		ids = append(ids, mustSave(t, s, testSnapshot(i, i*100, 4096)).ID)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != ids[3] || list[1].ID != ids[4] {
		t.Fatalf("after 5 saves with Keep 2: %v, want ids %v", infoIDs(list), ids[3:])
	}
	if list[0].Step() != 400 || list[1].Step() != 500 {
		t.Fatalf("steps %d, %d, want 400, 500", list[0].Step(), list[1].Step())
	}
	if _, _, err := s.Load(ids[0]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("load of a retired checkpoint: %v, want ErrNotFound", err)
	}
	latest, err := s.Latest()
	if err != nil || latest.ID != ids[4] {
		t.Fatalf("latest = %d, %v, want %d", latest.ID, err, ids[4])
	}
	_, snap, err := s.Load(ids[3])
	if err != nil {
		t.Fatal(err)
	}
	requireSameSnapshot(t, testSnapshot(4, 400, 4096), snap)
	if err := s.Delete(ids[4]); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ids[4]); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if latest, _ := s.Latest(); latest.ID != ids[3] {
		t.Fatalf("latest after delete = %d, want %d", latest.ID, ids[3])
	}
}

func infoIDs(list []Info) []uint64 {
	var ids []uint64
	for _, in := range list {
		ids = append(ids, in.ID)
	}
	return ids
}

func TestEmptyStore(t *testing.T) {
	s, _ := openTest(t, Options{})
	if _, err := s.Latest(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Latest on an empty store: %v", err)
	}
	if _, err := s.LatestVerified(); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestVerified on an empty store: %v", err)
	}
	if _, _, err := s.Load(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Load(1) on an empty store: %v", err)
	}
}

func TestReadOnlyRefusesWrites(t *testing.T) {
	path := t.TempDir() + "/ckpt.db"
	if _, err := Open(path, Options{ReadOnly: true}); !errors.Is(err, ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("read-only open of a missing file: %v", err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustSave(t, s, testSnapshot(1, 1, 4096))
	s.Close()
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Save(testSnapshot(2, 2, 4096)); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("save on a read-only store: %v", err)
	}
	if err := ro.Delete(1); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("delete on a read-only store: %v", err)
	}
}

func TestClosedStore(t *testing.T) {
	s, _ := openTest(t, Options{})
	s.Close()
	if _, err := s.Save(testSnapshot(1, 1, 4096)); !errors.Is(err, ErrClosed) {
		t.Fatalf("save after close: %v", err)
	}
	if _, err := s.List(); !errors.Is(err, ErrClosed) {
		t.Fatalf("list after close: %v", err)
	}
}

func TestSnapshotValidate(t *testing.T) {
	ok := func() *Snapshot { return testSnapshot(1, 1, 4096) }
	for _, tc := range []struct {
		name   string
		breaks func(*Snapshot)
		want   string
	}{
		{"short data", func(s *Snapshot) { s.Params[0].Data = s.Params[0].Data[1:] }, "embed.weight"},
		{"unknown dtype", func(s *Snapshot) { s.Params[1].DType = "complex32" }, "unknown dtype"},
		{"empty name", func(s *Snapshot) { s.Params[2].Name = "" }, "empty name"},
		{"duplicate name", func(s *Snapshot) { s.Params[3].Name = s.Params[2].Name }, "duplicate"},
		{"negative dimension", func(s *Snapshot) { s.Params[4].Shape = []int64{-2, -3} }, "negative"},
		{"cursor not JSON", func(s *Snapshot) { s.Meta.Cursors[1] = []byte("{oops") }, "rank 1"},
		{"job spec not JSON", func(s *Snapshot) { s.Meta.JobSpec = []byte("nope") }, "job spec"},
		{"negative step", func(s *Snapshot) { s.Meta.Step = -1 }, "negative step"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := ok()
			tc.breaks(snap)
			err := snap.Validate()
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want ErrInvalid mentioning %q", err, tc.want)
			}
			s, _ := openTest(t, Options{})
			if _, err := s.Save(snap); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Save = %v, want ErrInvalid", err)
			}
			if list, _ := s.List(); len(list) != 0 {
				t.Fatalf("an invalid snapshot was stored: %v", infoIDs(list))
			}
		})
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("valid snapshot: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts  Options
		field string
	}{
		{Options{Keep: -1}, "Keep"},
		{Options{ChunkSize: 100}, "ChunkSize"},
		{Options{ChunkSize: 2 << 30}, "ChunkSize"},
		{Options{LockTimeout: -time.Second}, "LockTimeout"},
		{Options{HashWorkers: -3}, "HashWorkers"},
	} {
		err := tc.opts.withDefaults().Validate()
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%+v: Validate = %v, want an error naming %s", tc.opts, err, tc.field)
		}
		if _, err := Open(t.TempDir()+"/x.db", tc.opts); err == nil {
			t.Errorf("%+v: Open accepted bad options", tc.opts)
		}
	}
	if err := DefaultOptions().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestParseDType(t *testing.T) {
	for in, want := range map[string]DType{
		"float32": Float32, "torch.float32": Float32, "float": Float32, "torch.bfloat16": BFloat16,
		"half": Float16, "long": Int64, "bool": Bool, "torch.uint8": Uint8,
	} {
		if got, err := ParseDType(in); err != nil || got != want {
			t.Errorf("ParseDType(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseDType("complex64"); !errors.Is(err, ErrInvalid) {
		t.Errorf("ParseDType(complex64): %v", err)
	}
}
