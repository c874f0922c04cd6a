package eval

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/e2evlp/vlp/data"
	"github.com/e2evlp/vlp/sharding"
	"github.com/e2evlp/vlp/synth"
)

// heldOutSeedMix makes a held-out synthetic world's seed differ from the
// training world's (the job's seed): its scenes are new.
const heldOutSeedMix = 0x5eed0fe7a1

// HeldOutSeed is the seed of the synthetic world that evaluates a job
// trained with seed.
func HeldOutSeed(seed uint64) uint64 { return seed ^ heldOutSeedMix }

// Set is a held-out set: one row per image (its first caption as the
// encoder's text), every caption of the image as the references of the
// captioning metrics, and objects indexed by the model's class and
// attribute vocabularies.
type Set struct {
	Examples []data.Example // one per image
	// Refs are each image's captions (texts of kind "caption"); an image
	// with none (a Visual Genome image has region descriptions only) is left
	// out of BLEU and CIDEr-D.
	Refs [][]string
	// Regions are each image's region descriptions (texts of kind "region": a Visual Genome
	// image's, a synthetic image's phrase for each shape); not scored, they tell whether a
	// printed caption that is no reference caption still names one of the image's objects.
	Regions    [][]string
	Classes    []string // the model's class names, by index
	Attributes []string // the model's attribute names, by index
	// DroppedObjects counts objects whose class the model does not know
	// (left out of the ground truth); attributes it does not know are
	// dropped silently.
	DroppedObjects int
}

// SynthSet renders a held-out synthetic shapes world of images square
// images (HeldOutSeed(seed): scenes no training world has), its objects
// indexed by classes and attributes, the model's vocabularies.
func SynthSet(seed uint64, images, size int, classes, attributes []string) (*Set, error) {
	w, err := data.NewSynthWorld(synth.Config{Seed: HeldOutSeed(seed), Images: images, Width: size, Height: size, MaxObjects: 2}, true)
	if err != nil {
		return nil, fmt.Errorf("eval: held-out world: %w", err)
	}
	s := &Set{Classes: classes, Attributes: attributes}
	seen := map[*sharding.SampleMeta]bool{}
	for _, e := range w.Examples {
		if !seen[e.Meta] {
			seen[e.Meta] = true
			s.add(e, synth.ClassNames, synth.AttributeNames)
		}
	}
	return s, nil
}

// ShardSet reads the first images images (all with images ≤ 0) of the
// shards in dir (manifest.json and its shards, as `vlp shard build` writes
// them; a shard read to its end is checked against its sha256), remapping their
// objects from the manifest's vocabularies to the model's by name.
func ShardSet(dir string, images int, classes, attributes []string) (*Set, error) {
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		return nil, fmt.Errorf("eval: held-out shards: %w", err)
	}
	src := data.NewShardSource(dir, m)
	defer src.Close()
	s := &Set{Classes: classes, Attributes: attributes}
	var last *sharding.SampleMeta
	for images <= 0 || len(s.Examples) < images {
		e, err := src.Next(context.Background())
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("eval: held-out shards in %s: %w", dir, err)
		}
		if e.Meta == last {
			continue // another text of the same image
		}
		last = e.Meta
		s.add(e, m.Classes, m.Attributes)
	}
	if len(s.Examples) == 0 {
		return nil, fmt.Errorf("eval: held-out shards in %s hold no image", dir)
	}
	return s, nil
}

// add appends the image of e: its row uses its first caption (else its
// first text), its objects are renamed from the source's vocabularies
// (srcClasses, srcAttrs) to the set's.
func (s *Set) add(e data.Example, srcClasses, srcAttrs []string) {
	ci, ai := indexOf(s.Classes), indexOf(s.Attributes)
	meta := *e.Meta
	meta.Objects = nil
	for _, ob := range e.Meta.Objects {
		k, ok := -1, false
		if ob.Class >= 0 && ob.Class < len(srcClasses) {
			k, ok = ci[srcClasses[ob.Class]]
		}
		if !ok {
			s.DroppedObjects++
			continue
		}
		var attrs []int
		for _, a := range ob.Attributes {
			if a >= 0 && a < len(srcAttrs) {
				if j, ok := ai[srcAttrs[a]]; ok {
					attrs = append(attrs, j)
				}
			}
		}
		meta.Objects = append(meta.Objects, sharding.Object{Box: ob.Box, Class: k, Attributes: attrs})
	}
	e.Meta, e.Text = &meta, 0
	var refs, regions []string
	for i, t := range meta.Texts {
		switch t.Kind {
		case "caption":
			if refs == nil {
				e.Text = i
			}
			refs = append(refs, t.Text)
		case "region":
			regions = append(regions, t.Text)
		}
	}
	s.Examples = append(s.Examples, e)
	s.Refs = append(s.Refs, refs)
	s.Regions = append(s.Regions, regions)
}

func indexOf(names []string) map[string]int {
	m := make(map[string]int, len(names))
	for i, n := range names {
		m[n] = i
	}
	return m
}
