package sharding

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ManifestName is the manifest's file name inside a shard directory.
const ManifestName = "manifest.json"

// ManifestVersion is the layout version this package writes and reads.
const ManifestVersion = 1

// Manifest describes a shard directory: its shards, counts and
// vocabularies. Shards are listed in dataset order; the samples of a shard
// and the texts of a sample keep their order, which is what the epoch plan
// addresses.
type Manifest struct {
	Version int         `json:"version"`
	Shards  []ShardInfo `json:"shards"`

	Images   int64 `json:"images"`   // samples in all shards
	Pairs    int64 `json:"pairs"`    // (image, text) pairs in all shards
	Captions int64 `json:"captions"` // texts of kind "caption"
	Regions  int64 `json:"regions"`  // texts of kind "region"
	Objects  int64 `json:"objects"`  // annotated objects

	// Sources counts samples by SampleMeta.Source ("coco", "vg", "coco+vg").
	Sources map[string]int64 `json:"sources"`

	Classes    []string `json:"classes"`    // Object.Class indexes this
	Attributes []string `json:"attributes"` // Object.Attributes index this

	// CocoCategories maps each COCO category to its class index.
	CocoCategories []CategoryMapping `json:"coco_categories,omitempty"`

	// Skipped counts what the import left out, by reason (see docs/data.md).
	Skipped map[string]int64 `json:"skipped,omitempty"`
	// Units accounts for every item read, by unit: read = kept + skipped.
	Units map[string]Tally `json:"units,omitempty"`
}

// ShardInfo is one shard file.
type ShardInfo struct {
	Name   string `json:"name"` // file name, relative to the manifest's directory
	Images int    `json:"images"`
	Pairs  int    `json:"pairs"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // hex of the whole file
	// SamplePairs is the number of texts of each sample, in tar order; the
	// epoch plan addresses pairs through it without opening the shard.
	SamplePairs []int `json:"sample_pairs"`
	// SampleOffsets is the byte offset of each sample's first tar header, in
	// tar order: ReadSampleAt reads one sample without scanning the shard.
	SampleOffsets []int64 `json:"sample_offsets,omitempty"`
}

// CategoryMapping records how one COCO category entered the class vocabulary.
type CategoryMapping struct {
	CocoID int    `json:"coco_id"`
	Name   string `json:"name"`  // COCO's name
	Class  int    `json:"class"` // index into Manifest.Classes
	Via    string `json:"via"`   // "name", "synonym" or "added" (see docs/data.md)
}

// Validate checks the manifest's internal consistency.
func (m *Manifest) Validate() error {
	if m.Version != ManifestVersion {
		return fmt.Errorf("%w: version %d, this build reads %d", ErrBadManifest, m.Version, ManifestVersion)
	}
	var images, pairs int64
	for i, s := range m.Shards {
		if s.Name == "" || filepath.Base(s.Name) != s.Name {
			return fmt.Errorf("%w: shard %d has name %q", ErrBadManifest, i, s.Name)
		}
		if len(s.SamplePairs) != s.Images {
			return fmt.Errorf("%w: shard %s lists %d sample_pairs for %d images", ErrBadManifest, s.Name, len(s.SamplePairs), s.Images)
		}
		if s.SampleOffsets != nil && len(s.SampleOffsets) != s.Images {
			return fmt.Errorf("%w: shard %s lists %d sample_offsets for %d images", ErrBadManifest, s.Name, len(s.SampleOffsets), s.Images)
		}
		sum := 0
		for _, n := range s.SamplePairs {
			if n < 0 {
				return fmt.Errorf("%w: shard %s has a negative pair count", ErrBadManifest, s.Name)
			}
			sum += n
		}
		if sum != s.Pairs {
			return fmt.Errorf("%w: shard %s: sample_pairs sum to %d, pairs is %d", ErrBadManifest, s.Name, sum, s.Pairs)
		}
		images += int64(s.Images)
		pairs += int64(s.Pairs)
	}
	if images != m.Images || pairs != m.Pairs {
		return fmt.Errorf("%w: shards hold %d images / %d pairs, totals say %d / %d", ErrBadManifest, images, pairs, m.Images, m.Pairs)
	}
	return nil
}

// ReadManifest reads and validates dir/manifest.json.
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBadManifest, path, err)
	}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &m, nil
}

// WriteManifest writes m to dir/manifest.json atomically (temp file, fsync,
// rename).
func WriteManifest(dir string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, ManifestName), append(data, '\n'))
}

// writeFileAtomic replaces path with data so that readers see the old or
// the new content, never a mix.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
