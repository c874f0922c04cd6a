package sharding

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
)

// buildShard writes shard s from its candidates, or keeps the existing one
// when its record matches and the file verifies.
func buildShard(ctx context.Context, cfg BuildConfig, asm *assembler, s int, cands []candidate, global string, done *atomic.Int64) (*shardRecord, error) {
	h := sha256.New()
	h.Write([]byte(global))
	for _, c := range cands {
		fmt.Fprintf(h, " %d", c.imageID)
	}
	fp := hex.EncodeToString(h.Sum(nil))
	name := shardName(s)
	recPath := filepath.Join(cfg.Out, buildDir, name+".json")
	// An empty shard has a record and no file (nothing to verify).
	if rec := loadRecord(recPath); rec != nil && rec.Fingerprint == fp && (rec.Info.Images == 0 || verifyFile(cfg.Out, rec.Info) == nil) {
		rec.Report.ShardsKept = 1
		done.Add(int64(len(cands)))
		return rec, nil
	}

	rep := newReport()
	rec := &shardRecord{Fingerprint: fp, Sources: map[string]int64{}, Report: rep}
	tmpPath := filepath.Join(cfg.Out, name+".tmp")
	f, err := os.Create(tmpPath)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmpPath)
	defer f.Close()
	var buf bytes.Buffer
	w := NewShardWriter(&buf, name)
	for _, c := range cands {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		meta, jpg, err := asm.assemble(c, rep)
		done.Add(1)
		if err != nil {
			return nil, err
		}
		if meta == nil {
			continue
		}
		if err := w.Add(meta, jpg); err != nil {
			return nil, err
		}
		for _, t := range meta.Texts {
			if t.Kind == "caption" {
				rec.Captions++
			} else {
				rec.Regions++
			}
		}
		rec.Objects += int64(len(meta.Objects))
		rec.Sources[meta.Source]++
		if buf.Len() > 4<<20 {
			if _, err := f.Write(buf.Bytes()); err != nil {
				return nil, err
			}
			buf.Reset()
		}
	}
	if rec.Info, err = w.Close(); err != nil {
		return nil, err
	}
	if _, err := f.Write(buf.Bytes()); err != nil {
		return nil, err
	}
	if err := f.Sync(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmpPath, filepath.Join(cfg.Out, name)); err != nil {
		return nil, err
	}
	js, err := json.Marshal(rec)
	if err != nil {
		return nil, err
	}
	return rec, writeFileAtomic(recPath, js)
}

func loadRecord(path string) *shardRecord {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var rec shardRecord
	if json.Unmarshal(data, &rec) != nil || rec.Report == nil {
		return nil
	}
	if rec.Report.Skipped == nil {
		rec.Report.Skipped = map[string]int64{}
	}
	if rec.Report.Examples == nil {
		rec.Report.Examples = map[string][]string{}
	}
	return &rec
}

// verifyFile reads a whole shard through a Reader: structure, size, sha256.
func verifyFile(dir string, info ShardInfo) error {
	r, err := OpenShard(dir, info)
	if err != nil {
		return err
	}
	defer r.Close()
	for {
		if _, err := r.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}

// removeStale deletes shards (and their records) numbered n or above, left
// by an earlier build with a smaller shard size or more input.
func removeStale(dir string, n int) {
	paths, _ := filepath.Glob(filepath.Join(dir, "shard-*.tar"))
	for _, p := range paths {
		var i int
		if _, err := fmt.Sscanf(filepath.Base(p), "shard-%06d.tar", &i); err == nil && i >= n {
			os.Remove(p)
			os.Remove(filepath.Join(dir, buildDir, filepath.Base(p)+".json"))
		}
	}
}
