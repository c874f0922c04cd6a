package sharding

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// BuildConfig configures an import. Zero fields take their defaults.
type BuildConfig struct {
	COCODir    string // COCO root (annotations/, train2017/); "" to import VG only
	COCOImages string // image folder under COCODir; default "train2017"
	VGDir      string // Visual Genome root (image_data.json, …, VG_100K/); "" to import COCO only
	Out        string // shard directory; created if missing

	ShardSize  int // candidate images per shard; default 1000 (~10–100 MB shards on real data)
	Workers    int // shards written in parallel; default GOMAXPROCS
	Classes    int // VG object names kept; default 1600
	Attributes int // VG attributes kept; default 400

	// Strict makes any unusable annotation file an error instead of a
	// skipped, reported file.
	Strict bool
	// Progress receives indexing lines and a progress bar; nil is quiet.
	Progress io.Writer
}

// WithDefaults returns c with zero fields set.
func (c BuildConfig) WithDefaults() BuildConfig {
	if c.COCOImages == "" {
		c.COCOImages = "train2017"
	}
	if c.ShardSize == 0 {
		c.ShardSize = 1000
	}
	if c.Workers == 0 {
		c.Workers = runtime.GOMAXPROCS(0)
	}
	if c.Classes == 0 {
		c.Classes = DefaultClasses
	}
	if c.Attributes == 0 {
		c.Attributes = DefaultAttributes
	}
	return c
}

// Validate checks the configuration after defaults.
func (c BuildConfig) Validate() error {
	c = c.WithDefaults()
	switch {
	case c.COCODir == "" && c.VGDir == "":
		return fmt.Errorf("%w: neither COCODir nor VGDir is set", ErrInvalidConfig)
	case c.Out == "":
		return fmt.Errorf("%w: Out is empty", ErrInvalidConfig)
	case c.ShardSize < 1 || c.ShardSize > 1<<20:
		return fmt.Errorf("%w: ShardSize %d outside [1, %d]", ErrInvalidConfig, c.ShardSize, 1<<20)
	case c.Workers < 1 || c.Workers > 256:
		return fmt.Errorf("%w: Workers %d outside [1, 256]", ErrInvalidConfig, c.Workers)
	case c.Classes < 1 || c.Attributes < 1:
		return fmt.Errorf("%w: Classes %d and Attributes %d must be >= 1", ErrInvalidConfig, c.Classes, c.Attributes)
	}
	return nil
}

// shardName is the file name of shard i.
func shardName(i int) string { return fmt.Sprintf("shard-%06d.tar", i) }

// buildDir keeps per-shard records that make a build resumable.
const buildDir = ".build"

// shardRecord is written beside a finished shard; a later build keeps the
// shard when the record's fingerprint matches and the file still hashes to
// the record's sha256.
type shardRecord struct {
	Fingerprint string           `json:"fingerprint"`
	Info        ShardInfo        `json:"info"`
	Captions    int64            `json:"captions"`
	Regions     int64            `json:"regions"`
	Objects     int64            `json:"objects"`
	Sources     map[string]int64 `json:"sources"`
	Report      *Report          `json:"report"`
}

// Build imports COCO and/or Visual Genome into tar shards and writes the
// manifest. It returns ErrNothingUsable (with the report) when no pair
// survives. Finished shards of an interrupted build with the same inputs
// and settings are verified and kept.
func Build(ctx context.Context, cfg BuildConfig) (*Manifest, *Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	cfg = cfg.WithDefaults()
	rep := newReport()
	if err := os.MkdirAll(filepath.Join(cfg.Out, buildDir), 0o755); err != nil {
		return nil, rep, err
	}
	// Spools of an interrupted build are garbage (they are rebuilt anyway).
	old, _ := filepath.Glob(filepath.Join(cfg.Out, buildDir, "spool-*"))
	for _, p := range old {
		os.RemoveAll(p)
	}
	tmp, err := os.MkdirTemp(filepath.Join(cfg.Out, buildDir), "spool-")
	if err != nil {
		return nil, rep, err
	}
	defer os.RemoveAll(tmp)

	ix := &index{coco: map[uint64]cocoImage{}, vg: map[uint64]vgImage{}, names: counter{}, attrNames: counter{}}
	defer ix.close()
	d := &indexer{ix: ix, rep: rep, tmp: tmp, progress: cfg.Progress, strict: cfg.Strict}
	if err := d.index(cfg.COCODir, cfg.VGDir, cfg.Workers); err != nil {
		return nil, rep, err
	}

	// Vocabularies, then the COCO categories mapped into the classes.
	m := &Manifest{Version: ManifestVersion, Sources: map[string]int64{}}
	m.Classes = ix.names.top(cfg.Classes)
	m.Attributes = ix.attrNames.top(cfg.Attributes)
	m.CocoCategories = mapCategories(ix.categories, &m.Classes)
	if m.Classes == nil {
		m.Classes = []string{}
	}
	if m.Attributes == nil {
		m.Attributes = []string{}
	}
	asm := &assembler{cfg: cfg, ix: ix, classes: indexMap(m.Classes), attrs: indexMap(m.Attributes), catMap: map[int]int{}}
	for _, c := range m.CocoCategories {
		asm.catMap[c.CocoID] = c.Class
	}

	cands := candidates(ix, rep)
	global := fingerprint(cfg, m, ix.inputs)
	nShards := (len(cands) + cfg.ShardSize - 1) / cfg.ShardSize
	records := make([]*shardRecord, nShards)

	var done atomic.Int64
	stopBar := startBar(cfg.Progress, int64(len(cands)), &done)
	jobs := make(chan int)
	errs := make(chan error, cfg.Workers)
	var wg sync.WaitGroup
	for w := 0; w < cfg.Workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for s := range jobs {
				lo, hi := s*cfg.ShardSize, min(len(cands), (s+1)*cfg.ShardSize)
				rec, err := buildShard(ctx, cfg, asm, s, cands[lo:hi], global, &done)
				if err != nil {
					errs <- err
					return
				}
				records[s] = rec
			}
		}()
	}
	var runErr error
feed:
	for s := 0; s < nShards; s++ {
		select {
		case jobs <- s:
		case runErr = <-errs:
			break feed
		case <-ctx.Done():
			runErr = ctx.Err()
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	stopBar()
	if runErr == nil {
		select {
		case runErr = <-errs:
		default:
		}
	}
	if runErr != nil {
		return nil, rep, runErr
	}

	for _, r := range records {
		rep.merge(r.Report)
		if r.Report.ShardsKept > 0 {
			rep.ShardsKept++
		} else {
			rep.ShardsBuilt++
		}
		if r.Info.Images == 0 {
			os.Remove(filepath.Join(cfg.Out, r.Info.Name))
			continue
		}
		m.Shards = append(m.Shards, r.Info)
		m.Images += int64(r.Info.Images)
		m.Pairs += int64(r.Info.Pairs)
		m.Captions += r.Captions
		m.Regions += r.Regions
		m.Objects += r.Objects
		for k, v := range r.Sources {
			m.Sources[k] += v
		}
	}
	removeStale(cfg.Out, nShards)
	m.Skipped = rep.Skipped
	if m.Shards == nil {
		m.Shards = []ShardInfo{}
	}
	if err := WriteManifest(cfg.Out, m); err != nil {
		return nil, rep, err
	}
	if m.Pairs == 0 {
		return m, rep, ErrNothingUsable
	}
	return m, rep, nil
}

// candidates lists the images to import in dataset order: COCO images by
// COCO id (with their VG twin, if any), then VG-only images by VG id. It
// counts annotations whose image no list has.
func candidates(ix *index, rep *Report) []candidate {
	twin := map[uint64]uint64{} // coco id → smallest VG id naming it
	for id, im := range ix.vg {
		if im.CocoID == nil {
			continue
		}
		if _, ok := ix.coco[*im.CocoID]; !ok {
			continue // a COCO image this import does not have (e.g. val2017): VG-only
		}
		if old, ok := twin[*im.CocoID]; !ok || id < old {
			twin[*im.CocoID] = id
		}
	}
	var out []candidate
	for id, im := range ix.coco {
		c := candidate{cocoID: id, inCOCO: true, annW: im.Width, annH: im.Height, cocoFile: im.FileName}
		var err error
		if c.imageID, err = MakeID(IDSpaceCOCO, id); err != nil {
			rep.skip(SkipRecordMalformed, 1, fmt.Sprintf("COCO image %d: %v", id, err))
			continue
		}
		if v, ok := twin[id]; ok {
			c.vgID, c.inVG, c.vgURL = v, true, ix.vg[v].URL
		}
		out = append(out, c)
	}
	for id, im := range ix.vg {
		if im.CocoID != nil {
			if v, ok := twin[*im.CocoID]; ok && v == id {
				continue // imported with its COCO twin
			}
		}
		c := candidate{vgID: id, inVG: true, annW: im.Width, annH: im.Height, vgURL: im.URL}
		var err error
		if c.imageID, err = MakeID(IDSpaceVG, id); err != nil {
			rep.skip(SkipRecordMalformed, 1, fmt.Sprintf("VG image %d: %v", id, err))
			continue
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].imageID < out[j].imageID })

	unknown := func(sp *spool, known func(uint64) bool, file string) {
		if sp == nil {
			return
		}
		for id := range sp.spans {
			if !known(id) {
				rep.skip(SkipAnnotationNoImage, sp.items(id), fmt.Sprintf("%s: image %d", file, id))
			}
		}
	}
	inCOCO := func(id uint64) bool { _, ok := ix.coco[id]; return ok }
	inVG := func(id uint64) bool { _, ok := ix.vg[id]; return ok }
	unknown(ix.caps, inCOCO, "captions_train2017.json")
	unknown(ix.insts, inCOCO, "instances_train2017.json")
	unknown(ix.regions, inVG, "region_descriptions.json")
	unknown(ix.objects, inVG, "objects.json")
	return out
}

func indexMap(names []string) map[string]int {
	m := make(map[string]int, len(names))
	for i, n := range names {
		m[n] = i
	}
	return m
}

// fingerprint hashes everything a shard's content depends on besides its
// candidate list: format version, settings, vocabularies, inputs.
func fingerprint(cfg BuildConfig, m *Manifest, inputs []string) string {
	h := sha256.New()
	js, _ := json.Marshal([]any{ManifestVersion, cfg.ShardSize, cfg.COCOImages, m.Classes, m.Attributes, m.CocoCategories, inputs})
	h.Write(js)
	return hex.EncodeToString(h.Sum(nil))
}
