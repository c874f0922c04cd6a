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
	"slices"
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

	// Limits on hostile input (docs/data.md, "Limits"). An image over a
	// limit is skipped as image_too_large before it is decoded; a text over
	// MaxTextBytes as text_too_long, an element over MaxRecordBytes as
	// record_too_large. DecodeMemory bounds the bytes all image decodes hold
	// at once (each the worst case its header allows); it must hold the
	// largest image the limits let through.
	MaxImageSide   int   // widest and tallest JPEG decoded, pixels; default 16384
	MaxImagePixels int64 // most pixels (width × height) decoded; default 1<<25 (33.6 megapixels)
	MaxImageBytes  int64 // largest image file read, bytes; default 32 MiB
	DecodeMemory   int64 // bytes; default 1 GiB
	MaxTextBytes   int   // longest caption, region phrase, name or attribute, bytes after cleaning; default 2048
	MaxRecordBytes int   // longest annotation array element, bytes; default 16 MiB

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
	if c.MaxImageSide == 0 {
		c.MaxImageSide = DefaultMaxImageSide
	}
	if c.MaxImagePixels == 0 {
		c.MaxImagePixels = DefaultMaxImagePixels
	}
	if c.MaxImageBytes == 0 {
		c.MaxImageBytes = DefaultMaxImageBytes
	}
	if c.DecodeMemory == 0 {
		c.DecodeMemory = DefaultDecodeMemory
	}
	if c.MaxTextBytes == 0 {
		c.MaxTextBytes = DefaultMaxTextBytes
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = DefaultMaxRecordBytes
	}
	return c
}

// Defaults of the limits on hostile input. COCO and VG photos are at most
// a few megapixels, a few hundred kB, and their texts a few hundred bytes;
// the limits are far above that and far below what hurts.
const (
	DefaultMaxImageSide   = 16384   // above any camera's side
	DefaultMaxImagePixels = 1 << 25 // 33.6 MP: at most ~830 MB to decode (progressive CMYK, worst case)
	DefaultMaxImageBytes  = 32 << 20
	DefaultDecodeMemory   = 1 << 30 // one worst-case image at the default limits, or hundreds of real ones
	DefaultMaxTextBytes   = 2048
	DefaultMaxRecordBytes = 16 << 20 // VG's per-image lists are tens of kB
)

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
	case c.MaxImageSide < 1 || c.MaxImageSide > 65535:
		return fmt.Errorf("%w: MaxImageSide %d outside [1, 65535] (a JPEG side has 16 bits)", ErrInvalidConfig, c.MaxImageSide)
	case c.MaxImagePixels < 1 || c.MaxImagePixels > 65535*65535:
		return fmt.Errorf("%w: MaxImagePixels %d outside [1, 65535²]", ErrInvalidConfig, c.MaxImagePixels)
	case c.MaxImageBytes < 1<<10 || c.MaxImageBytes > 1<<30:
		return fmt.Errorf("%w: MaxImageBytes %d outside [1 KiB, 1 GiB] (a shard member holds at most 1 GiB)", ErrInvalidConfig, c.MaxImageBytes)
	case c.DecodeMemory < 1 || c.DecodeMemory > 1<<50:
		return fmt.Errorf("%w: DecodeMemory %d outside [1, 2^50]", ErrInvalidConfig, c.DecodeMemory)
	case c.DecodeMemory < maxDecodeCost(c.MaxImageSide, c.MaxImagePixels):
		return fmt.Errorf("%w: DecodeMemory %d MiB cannot hold one image at the limits (%d MiB for %d pixels, sides up to %d)",
			ErrInvalidConfig, c.DecodeMemory>>20, maxDecodeCost(c.MaxImageSide, c.MaxImagePixels)>>20, c.MaxImagePixels, c.MaxImageSide)
	case c.MaxTextBytes < 1 || c.MaxTextBytes > 1<<20:
		return fmt.Errorf("%w: MaxTextBytes %d outside [1, 1 MiB]", ErrInvalidConfig, c.MaxTextBytes)
	case c.MaxRecordBytes < 1<<10 || c.MaxRecordBytes > 1<<30:
		return fmt.Errorf("%w: MaxRecordBytes %d outside [1 KiB, 1 GiB]", ErrInvalidConfig, c.MaxRecordBytes)
	}
	return nil
}

// importFormat changes whenever the same input and settings would give
// different shards or shard records; resumed builds rebuild every shard
// of another format.
const importFormat = 2

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

	ix := newIndex()
	defer ix.close()
	d := &indexer{ix: ix, rep: rep, tmp: tmp, progress: cfg.Progress, strict: cfg.Strict, maxText: cfg.MaxTextBytes, maxRec: cfg.MaxRecordBytes}
	if err := d.index(cfg.COCODir, cfg.VGDir, cfg.Workers); err != nil {
		return nil, rep, err
	}
	if err := ix.judgeAll(); err != nil {
		return nil, rep, err
	}

	// Classes, then the COCO categories mapped into them, then the
	// attributes that land on objects of those classes.
	m := &Manifest{Version: ManifestVersion, Sources: map[string]int64{}}
	m.Classes = ix.names.top(cfg.Classes)
	m.CocoCategories = mapCategories(ix.categories, &m.Classes)
	if m.Classes == nil {
		m.Classes = []string{}
	}
	asm := &assembler{cfg: cfg, ix: ix, classes: indexMap(m.Classes), catMap: map[int]int{}, budget: newDecodeBudget(cfg.DecodeMemory)}
	for _, c := range m.CocoCategories {
		asm.catMap[c.CocoID] = c.Class
	}
	rep.kept(UnitCategory, int64(len(m.CocoCategories)))
	cands := candidates(ix, rep)
	attrCounts, err := asm.attributeCounts(cands, cfg.Workers)
	if err != nil {
		return nil, rep, err
	}
	m.Attributes = attrCounts.top(cfg.Attributes)
	if m.Attributes == nil {
		m.Attributes = []string{}
	}
	asm.attrs = indexMap(m.Attributes)
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
		if r.Info.Images == 0 {
			os.Remove(filepath.Join(cfg.Out, r.Info.Name))
			rep.ShardsEmpty++
			continue
		}
		if r.Report.ShardsKept > 0 {
			rep.ShardsKept++
		} else {
			rep.ShardsBuilt++
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
	m.Units = map[string]Tally{}
	for u, t := range rep.Units {
		m.Units[u] = *t
	}
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
// counts the annotations whose image no list has, or whose image id
// conflicts.
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
		c := candidate{cocoID: id, inCOCO: true, annW: im.Width, annH: im.Height, cocoFile: im.FileName.S}
		c.imageID, _ = MakeID(IDSpaceCOCO, id) // ids were checked when read
		if v, ok := twin[id]; ok {
			c.vgID, c.inVG, c.vgURL = v, true, ix.vg[v].URL.S
		}
		out = append(out, c)
	}
	for id, im := range ix.vg {
		if im.CocoID != nil {
			if v, ok := twin[*im.CocoID]; ok && v == id {
				continue // imported with its COCO twin
			}
		}
		c := candidate{vgID: id, inVG: true, annW: im.Width, annH: im.Height, vgURL: im.URL.S}
		c.imageID, _ = MakeID(IDSpaceVG, id)
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].imageID < out[j].imageID })

	unknown := func(sp *spool, known func(uint64) bool, conflict map[uint64]bool, file string) {
		if sp == nil {
			return
		}
		ids := make([]uint64, 0, len(sp.spans))
		for id := range sp.spans {
			ids = append(ids, id)
		}
		slices.Sort(ids) // examples in a fixed order
		for _, id := range ids {
			switch {
			case known(id):
			case conflict[id]:
				rep.skip(sp.unit, SkipImageIDConflict, sp.items(id), fmt.Sprintf("%s: image %d is listed with different contents", file, id))
			default:
				rep.skip(sp.unit, SkipAnnotationNoImage, sp.items(id), fmt.Sprintf("%s: image %d", file, id))
			}
		}
	}
	inCOCO := func(id uint64) bool { _, ok := ix.coco[id]; return ok }
	inVG := func(id uint64) bool { _, ok := ix.vg[id]; return ok }
	unknown(ix.caps, inCOCO, ix.cocoConflict, "captions_train2017.json")
	unknown(ix.insts, inCOCO, ix.cocoConflict, "instances_train2017.json")
	unknown(ix.regions, inVG, ix.vgConflict, "region_descriptions.json")
	unknown(ix.objects, inVG, ix.vgConflict, "objects.json")
	unknown(ix.attrs, inVG, ix.vgConflict, "attributes.json")
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
	js, _ := json.Marshal([]any{ManifestVersion, importFormat, cfg.ShardSize, cfg.COCOImages,
		cfg.MaxImageSide, cfg.MaxImagePixels, cfg.MaxImageBytes, cfg.MaxTextBytes, cfg.MaxRecordBytes,
		m.Classes, m.Attributes, m.CocoCategories, inputs})
	h.Write(js)
	return hex.EncodeToString(h.Sum(nil))
}
