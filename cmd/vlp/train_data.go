package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/train"
	"github.com/e2evlp/vlp/worker"
)

// trainVocabSize is the number of tokens of a vocabulary built at train start.
const trainVocabSize = 4096

// fileSHA256 is the hex sha256 of a file.
func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// trainDataset fills a fresh job's dataset from --data DIR (manifest.json
// and its shards): the manifest's path and checksum, the pair count, and
// the tokenizer: --vocab, or a vocabulary learnt from the shards' texts
// (as `vlp vocab build --shards DIR`) written to runDir/vocab.txt.
func trainDataset(s *coordinator.JobSpec, dir, vocab, runDir string) (pairs int64, err error) {
	dir, err = filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		return 0, err
	}
	s.Dataset.Manifest = filepath.Join(dir, sharding.ManifestName)
	if s.Dataset.SHA256, err = fileSHA256(s.Dataset.Manifest); err != nil {
		return 0, err
	}
	if vocab == "" {
		vocab = filepath.Join(runDir, "vocab.txt")
		wc := data.WordCounts{}
		if _, err := wc.AddShards(dir); err != nil {
			return 0, fmt.Errorf("train: vocabulary of %s: %w", dir, err)
		}
		v, err := data.BuildVocabFromCounts(wc, trainVocabSize)
		if err != nil {
			return 0, fmt.Errorf("train: vocabulary of %s: %w", dir, err)
		}
		if err := v.Save(vocab); err != nil {
			return 0, err
		}
	}
	if vocab, err = filepath.Abs(vocab); err != nil {
		return 0, err
	}
	sum, err := fileSHA256(vocab)
	if err != nil {
		return 0, err
	}
	s.Options[train.OptVocab], s.Options[train.OptVocabSHA256] = vocab, sum
	return m.Pairs, nil
}

// jobShards is what a worker trains on when the job names a dataset.
type jobShards struct {
	dir       string
	manifest  *sharding.Manifest
	tokenizer *data.Tokenizer
	checksums map[string]string
}

// openJobShards reads the job's dataset: dir overrides the directory of the
// spec's manifest (a worker whose storage mounts it elsewhere), vocab the
// spec's vocabulary path. Both files must match the spec's checksums.
func openJobShards(spec coordinator.JobSpec, dir, vocab string) (*jobShards, error) {
	if dir == "" {
		dir = filepath.Dir(spec.Dataset.Manifest)
	}
	mpath := filepath.Join(dir, sharding.ManifestName)
	sum, err := fileSHA256(mpath)
	if err != nil {
		return nil, fmt.Errorf("worker: dataset: %w", err)
	}
	if want := spec.Dataset.SHA256; want != "" && want != sum {
		return nil, fmt.Errorf("worker: %s has sha256 %s, the job's dataset %s", mpath, sum, want)
	}
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		return nil, err
	}
	if spec.Units.Pairs != 0 && spec.Units.Pairs != m.Pairs {
		return nil, fmt.Errorf("worker: the job has %d pairs per epoch, %s %d", spec.Units.Pairs, mpath, m.Pairs)
	}
	if vocab == "" {
		vocab = spec.Options[train.OptVocab]
	}
	if vocab == "" {
		return nil, fmt.Errorf("worker: the job names no vocabulary (option %s) and --vocab is not set", train.OptVocab)
	}
	vsum, err := fileSHA256(vocab)
	if err != nil {
		return nil, fmt.Errorf("worker: vocabulary: %w", err)
	}
	if want := spec.Options[train.OptVocabSHA256]; want != "" && want != vsum {
		return nil, fmt.Errorf("worker: %s has sha256 %s, the job's vocabulary %s", vocab, vsum, want)
	}
	v, err := data.LoadVocab(vocab)
	if err != nil {
		return nil, err
	}
	return &jobShards{
		dir: dir, manifest: m, tokenizer: data.NewTokenizer(v),
		checksums: map[string]string{"vocab.txt": "sha256:" + vsum, sharding.ManifestName: "sha256:" + sum},
	}, nil
}

// pairLog appends, for every committed step, one line per pair this worker
// consumed in it: the epoch and the pair's id in the manifest (read from
// the shard record). Pairs of an abandoned step are not logged; they are
// logged when the step that consumes them commits.
type pairLog struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	src *train.ShardExamples
}

func openPairLog(path string) (*pairLog, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	return &pairLog{f: f, w: bufio.NewWriter(f)}, nil
}

// commit logs the pairs of self's segments of c.
func (p *pairLog) commit(self uint64, c worker.Commit) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range c.Ranks {
		if r.Worker != self {
			continue
		}
		for _, sg := range r.Segments {
			pairs := make([]worker.Pair, sg.Count)
			for k := range pairs {
				pairs[k] = worker.Pair{Epoch: sg.Epoch, Unit: sg.Unit, Offset: sg.Offset + uint32(k)}
			}
			ex, err := p.src.Examples(pairs)
			if err != nil {
				fmt.Fprintf(p.w, "error %v\n", err)
				continue
			}
			for i, e := range ex {
				fmt.Fprintf(p.w, "%d %d\n", pairs[i].Epoch, e.PairID())
			}
		}
	}
	p.w.Flush()
}

func (p *pairLog) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.w.Flush()
	return p.f.Close()
}
