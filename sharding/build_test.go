package sharding

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/synth"
)

const testImages = 40

// world writes a small synthetic COCO + VG and returns (coco, vg) roots.
func world(t *testing.T) (string, string, synth.ExportStats) {
	t.Helper()
	dir := t.TempDir()
	cfg := synth.ExportConfig{World: synth.Config{Seed: 11, Images: testImages}, Overlap: 0.4, Workers: 2}
	st, err := synth.Export(cfg, filepath.Join(dir, "coco"), filepath.Join(dir, "vg"))
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "coco"), filepath.Join(dir, "vg"), st
}

// build imports with small shards and checks that the report adds up.
func build(t *testing.T, coco, vg, out string, mod func(*BuildConfig)) (*Manifest, *Report, error) {
	t.Helper()
	cfg := BuildConfig{COCODir: coco, VGDir: vg, Out: out, ShardSize: 7, Workers: 2}
	if mod != nil {
		mod(&cfg)
	}
	m, rep, err := Build(context.Background(), cfg)
	if rep != nil && m != nil {
		checkAccounts(t, out, m, rep)
	}
	return m, rep, err
}

// checkAccounts checks that every unit of the report adds up (read = kept
// + skipped, by reason) and that what it says was kept is what the shards
// hold.
func checkAccounts(t *testing.T, out string, m *Manifest, rep *Report) {
	t.Helper()
	if err := rep.Balanced(); err != nil {
		t.Fatalf("report does not add up: %v", err)
	}
	kept := func(u string) int64 {
		if tl := rep.Units[u]; tl != nil {
			return tl.Kept
		}
		return 0
	}
	if kept(UnitCaption) != m.Captions || kept(UnitRegion) != m.Regions {
		t.Fatalf("kept %d captions, %d regions; shards hold %d, %d", kept(UnitCaption), kept(UnitRegion), m.Captions, m.Regions)
	}
	if kept(UnitImage) != m.Images+m.Sources["coco+vg"] {
		t.Fatalf("kept %d images; shards hold %d samples, %d of them twins", kept(UnitImage), m.Images, m.Sources["coco+vg"])
	}
	if kept(UnitInstance)+kept(UnitObject)-rep.Merged != m.Objects {
		t.Fatalf("kept %d instances + %d VG objects - %d merged; shards hold %d objects", kept(UnitInstance), kept(UnitObject), rep.Merged, m.Objects)
	}
	var attrs int64
	for _, s := range readSamples(t, out) {
		for _, o := range s.Meta.Objects {
			attrs += int64(len(o.Attributes))
		}
	}
	if kept(UnitAttribute) != attrs {
		t.Fatalf("kept %d attributes; shards hold %d", kept(UnitAttribute), attrs)
	}
	if !reflect.DeepEqual(m.Skipped, rep.Skipped) {
		t.Fatalf("manifest skipped %v, report %v", m.Skipped, rep.Skipped)
	}
	for u, tl := range rep.Units {
		if mt := m.Units[u]; mt.Read != tl.Read || mt.Kept != tl.Kept || !reflect.DeepEqual(mt.Skipped, tl.Skipped) {
			t.Fatalf("manifest units[%s] = %+v, report %+v", u, mt, *tl)
		}
	}
}

// skipped returns how many items of unit u the report skipped for reason.
func skipped(rep *Report, u, reason string) int64 {
	if tl := rep.Units[u]; tl != nil {
		return tl.Skipped[reason]
	}
	return 0
}

// readSamples reads every sample of a shard directory, verifying checksums.
func readSamples(t *testing.T, dir string) map[string]Sample {
	t.Helper()
	m, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Sample{}
	for _, info := range m.Shards {
		r, err := OpenShard(dir, info)
		if err != nil {
			t.Fatal(err)
		}
		for s, err := range r.All() {
			if err != nil {
				t.Fatal(err)
			}
			out[s.Meta.Key] = s
		}
		r.Close()
	}
	return out
}

func TestBuildImportsTheWorld(t *testing.T) {
	coco, vg, st := world(t)
	out := t.TempDir()
	m, rep, err := build(t, coco, vg, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Skipped) != 0 || rep.Clipped != 0 {
		t.Fatalf("clean input skipped %v, clipped %d", rep.Skipped, rep.Clipped)
	}
	if m.Images != testImages || m.Captions != int64(st.Captions) || m.Regions != int64(st.Regions) || m.Pairs != m.Captions+m.Regions {
		t.Fatalf("manifest %d images %d captions %d regions; export %+v", m.Images, m.Captions, m.Regions, st)
	}
	if m.Sources["coco+vg"] != int64(st.Shared) || m.Sources["coco"]+m.Sources["coco+vg"] != int64(st.COCOImages) {
		t.Fatalf("sources %v, export %+v", m.Sources, st)
	}
	// Every spelling of VG names and attributes normalised to the world's.
	for _, c := range synth.ClassNames {
		if indexMap(m.Classes)[c] == 0 && m.Classes[0] != c {
			t.Fatalf("class %q missing from %v", c, m.Classes)
		}
	}
	if len(m.Classes) != len(synth.ClassNames) || len(m.Attributes) != len(synth.AttributeNames) {
		t.Fatalf("vocabularies %v / %v", m.Classes, m.Attributes)
	}
	for _, cm := range m.CocoCategories {
		if cm.Via != "name" || m.Classes[cm.Class] != cm.Name {
			t.Fatalf("category mapping %+v", cm)
		}
	}
	// Each sample says exactly what the generator drew.
	wcfg := synth.Config{Seed: 11, Images: testImages}
	for key, s := range readSamples(t, out) {
		space, id := SplitID(s.Meta.ImageID)
		var i int
		if space == IDSpaceCOCO {
			i = int(id-1) / 3
		} else {
			i = int(id - 1)
		}
		p := synth.Scene(wcfg, i)
		var want []string
		if s.Meta.Source != "vg" {
			want = append(want, p.Captions...)
		}
		if s.Meta.Source != "coco" {
			for _, r := range p.Regions {
				want = append(want, r.Text)
			}
		}
		var got []string
		for _, tx := range s.Meta.Texts {
			got = append(got, tx.Text)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: texts %q, want %q", key, got, want)
		}
		if len(s.Meta.Objects) != len(p.Objects) {
			t.Fatalf("%s: %d objects, drawn %d (shared images must merge COCO and VG objects)", key, len(s.Meta.Objects), len(p.Objects))
		}
		for k, o := range s.Meta.Objects {
			if m.Classes[o.Class] != p.Objects[k].Class {
				t.Fatalf("%s object %d: class %s, drawn %s", key, k, m.Classes[o.Class], p.Objects[k].Class)
			}
			if s.Meta.Source != "coco" {
				var attrs []string
				for _, a := range o.Attributes {
					attrs = append(attrs, m.Attributes[a])
				}
				if !reflect.DeepEqual(attrs, p.Objects[k].Attributes()) {
					t.Fatalf("%s object %d: attributes %v, drawn %v", key, k, attrs, p.Objects[k].Attributes())
				}
			}
			b := p.Objects[k].Box
			wantBox := [4]float32{float32(b.Min.X+b.Max.X) / 2 / 96, float32(b.Min.Y+b.Max.Y) / 2 / 96, float32(b.Dx()) / 96, float32(b.Dy()) / 96}
			if o.Box != wantBox {
				t.Fatalf("%s object %d: box %v, want %v", key, k, o.Box, wantBox)
			}
		}
	}
	mustVerify(t, out)
}

func TestBuildResumesAndIsDeterministic(t *testing.T) {
	coco, vg, _ := world(t)
	out := t.TempDir()
	m1, _, err := build(t, coco, vg, out, nil)
	if err != nil {
		t.Fatal(err)
	}
	// Damage one shard and remove another: only those two are rebuilt.
	if err := os.Truncate(filepath.Join(out, m1.Shards[1].Name), 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(out, m1.Shards[3].Name)); err != nil {
		t.Fatal(err)
	}
	m2, rep, err := build(t, coco, vg, out, func(c *BuildConfig) { c.Workers = 1 })
	if err != nil {
		t.Fatal(err)
	}
	if rep.ShardsBuilt != 2 || rep.ShardsKept != len(m1.Shards)-2 {
		t.Fatalf("rebuilt %d, kept %d of %d", rep.ShardsBuilt, rep.ShardsKept, len(m1.Shards))
	}
	if !reflect.DeepEqual(m1, m2) {
		t.Fatal("the resumed build's manifest differs")
	}
	// A fresh build elsewhere gives the same bytes.
	m3, _, err := build(t, coco, vg, t.TempDir(), func(c *BuildConfig) { c.Workers = 3 })
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m1, m3) {
		t.Fatal("two builds of the same input differ")
	}
	// A rebuild with larger shards replaces them all and leaves no stale one.
	m4, rep, err := build(t, coco, vg, out, func(c *BuildConfig) { c.ShardSize = 25 })
	if err != nil {
		t.Fatal(err)
	}
	if len(m4.Shards) != 2 || rep.ShardsKept != 0 || m4.Pairs != m1.Pairs {
		t.Fatalf("shard size 25: %d shards, %d kept, %d pairs", len(m4.Shards), rep.ShardsKept, m4.Pairs)
	}
	tars, _ := filepath.Glob(filepath.Join(out, "shard-*.tar"))
	if len(tars) != 2 {
		t.Fatalf("%d shard files after the rebuild: %v", len(tars), tars)
	}
}

// editJSON rewrites a JSON file through fn.
func editJSON(t *testing.T, path string, fn func(v any) any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	data, err = json.Marshal(fn(v))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// cocoOnly returns the file name of an image in COCO and not in VG.
func cocoOnly(t *testing.T, vg string) (string, int) {
	t.Helper()
	var imgs []struct {
		CocoID *int `json:"coco_id"`
	}
	data, _ := os.ReadFile(filepath.Join(vg, "image_data.json"))
	json.Unmarshal(data, &imgs)
	shared := map[int]bool{}
	for _, im := range imgs {
		if im.CocoID != nil {
			shared[*im.CocoID] = true
		}
	}
	for i := 0; i < testImages; i++ {
		if id := 3*i + 1; !shared[id] && synthMember(i)&synth.InCOCO != 0 {
			return fmt.Sprintf("%012d.jpg", id), id
		}
	}
	t.Fatal("no COCO-only image")
	return "", 0
}

func synthMember(i int) synth.Membership {
	return synth.ExportConfig{World: synth.Config{Seed: 11, Images: testImages}, Overlap: 0.4}.Member(i)
}

func annotationList(v any) []any { return v.(map[string]any)["annotations"].([]any) }

func TestBuildBadInput(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, coco, vg string)
		unit   string
		reason string // Skipped key of unit that must count it
		count  int64
		check  func(t *testing.T, m *Manifest, rep *Report)
	}{
		{"malformed json", func(t *testing.T, coco, vg string) {
			p := filepath.Join(vg, "region_descriptions.json")
			data, _ := os.ReadFile(p)
			os.WriteFile(p, append(data[:len(data)/2], []byte("}}garbage")...), 0o644)
		}, UnitFile, SkipFileMalformed, 1, func(t *testing.T, m *Manifest, rep *Report) {
			if len(rep.FileErrors) != 1 || !strings.Contains(rep.FileErrors[0], "region_descriptions.json: byte ") {
				t.Fatalf("file errors %q do not name file and byte", rep.FileErrors)
			}
			if m.Regions != 0 || m.Captions == 0 {
				t.Fatalf("%d regions, %d captions after dropping the regions file", m.Regions, m.Captions)
			}
			// The regions read before the damage are counted, as left out.
			if r := rep.Units[UnitRegion]; r == nil || r.Read == 0 || r.Skipped[SkipFileMalformed] != r.Read {
				t.Fatalf("regions of the malformed file: %+v", r)
			}
		}},
		{"missing image", func(t *testing.T, coco, vg string) {
			name, _ := cocoOnly(t, vg)
			os.Remove(filepath.Join(coco, "train2017", name))
		}, UnitImage, SkipImageMissing, 1, nil},
		{"truncated jpeg", func(t *testing.T, coco, vg string) {
			name, _ := cocoOnly(t, vg)
			p := filepath.Join(coco, "train2017", name)
			data, _ := os.ReadFile(p)
			os.WriteFile(p, data[:len(data)/2], 0o644)
		}, UnitImage, SkipImageCorrupt, 1, nil},
		{"garbage jpeg", func(t *testing.T, coco, vg string) {
			name, _ := cocoOnly(t, vg)
			os.WriteFile(filepath.Join(coco, "train2017", name), []byte("this is not a jpeg"), 0o644)
		}, UnitImage, SkipImageCorrupt, 1, nil},
		{"box outside", func(t *testing.T, coco, vg string) {
			editJSON(t, filepath.Join(coco, "annotations", "instances_train2017.json"), func(v any) any {
				a := annotationList(v)
				a[0].(map[string]any)["bbox"] = []float64{500, 500, 10, 10} // entirely outside
				a[1].(map[string]any)["bbox"] = []float64{-5, -5, 30, 30}   // partly outside: clipped
				return v
			})
		}, UnitInstance, SkipBoxOutside, 1, func(t *testing.T, m *Manifest, rep *Report) {
			if rep.Clipped != 1 {
				t.Fatalf("clipped %d boxes, want 1", rep.Clipped)
			}
		}},
		{"empty caption", func(t *testing.T, coco, vg string) {
			editJSON(t, filepath.Join(coco, "annotations", "captions_train2017.json"), func(v any) any {
				annotationList(v)[3].(map[string]any)["caption"] = "  \t "
				return v
			})
		}, UnitCaption, SkipTextEmpty, 1, nil},
		{"caption for unknown image", func(t *testing.T, coco, vg string) {
			editJSON(t, filepath.Join(coco, "annotations", "captions_train2017.json"), func(v any) any {
				annotationList(v)[0].(map[string]any)["image_id"] = 999999
				return v
			})
		}, UnitCaption, SkipAnnotationNoImage, 1, nil},
		{"record of the wrong shape", func(t *testing.T, coco, vg string) {
			editJSON(t, filepath.Join(coco, "annotations", "captions_train2017.json"), func(v any) any {
				annotationList(v)[0].(map[string]any)["image_id"] = "nine"
				return v
			})
		}, UnitCaption, SkipRecordMalformed, 1, nil},
		{"missing file", func(t *testing.T, coco, vg string) {
			os.Remove(filepath.Join(vg, "image_data.json"))
		}, UnitFile, SkipFileMissing, 1, func(t *testing.T, m *Manifest, rep *Report) {
			if m.Sources["vg"] != 0 || m.Sources["coco+vg"] != 0 || m.Images == 0 {
				t.Fatalf("sources %v without VG's image list", m.Sources)
			}
			// The VG files that are there are named as not read.
			if n := skipped(rep, UnitFile, SkipFileNotRead); n != 3 || len(rep.FileErrors) != 4 {
				t.Fatalf("%d files not read, file errors %q", n, rep.FileErrors)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			coco, vg, _ := world(t)
			tt.damage(t, coco, vg)
			out := t.TempDir()
			m, rep, err := build(t, coco, vg, out, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := skipped(rep, tt.unit, tt.reason); got != tt.count {
				t.Fatalf("%s skipped %v, want %s=%d", tt.unit, rep.Units[tt.unit], tt.reason, tt.count)
			}
			if tt.check != nil {
				tt.check(t, m, rep)
			}
			var sum strings.Builder
			rep.WriteSummary(&sum)
			if !strings.Contains(sum.String(), tt.reason) {
				t.Fatalf("summary does not list %s:\n%s", tt.reason, sum.String())
			}
			if _, err := Verify(out); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestBuildStrictAndNothingUsable(t *testing.T) {
	coco, vg, _ := world(t)
	p := filepath.Join(coco, "annotations", "captions_train2017.json")
	data, _ := os.ReadFile(p)
	os.WriteFile(p, data[:len(data)-40], 0o644)
	_, _, err := build(t, coco, vg, t.TempDir(), func(c *BuildConfig) { c.Strict = true })
	if !errors.Is(err, ErrMalformedJSON) || !strings.Contains(err.Error(), "captions_train2017.json: byte ") {
		t.Fatalf("strict build: %v", err)
	}

	// Every image file gone: nothing usable.
	for _, d := range []string{filepath.Join(coco, "train2017"), filepath.Join(vg, "VG_100K")} {
		os.RemoveAll(d)
	}
	_, _, st := world(t) // the same world: its counts
	m, rep, err := build(t, coco, vg, t.TempDir(), nil)
	if !errors.Is(err, ErrNothingUsable) {
		t.Fatalf("no images: %v", err)
	}
	images := int64(st.COCOImages + st.VGImages) // a shared image is one COCO and one VG image
	if m.Pairs != 0 || skipped(rep, UnitImage, SkipImageMissing) != images || rep.Units[UnitImage].Read != images {
		t.Fatalf("pairs %d, images %+v, want all %d missing", m.Pairs, rep.Units[UnitImage], images)
	}
	if rep.ShardsBuilt != 0 || rep.ShardsEmpty == 0 || len(m.Shards) != 0 {
		t.Fatalf("nothing usable: %d shards written, %d empty, manifest lists %d", rep.ShardsBuilt, rep.ShardsEmpty, len(m.Shards))
	}
}

func TestNormalizeName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Circle", "circle"}, {" circles ", "circle"}, {"crosses", "cross"}, {"boxes", "box"},
		{"berries", "berry"}, {"benches", "bench"}, {"glass", "glass"}, {"bus", "bus"},
		{"tennis", "tennis"}, {"men", "man"}, {"leaves", "leaf"}, {"jeans", "jeans"},
		{"Traffic  Lights.", "traffic light"}, {"gas", "gas"}, {"dishes", "dish"}, {"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeName(tt.in); got != tt.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if got := NormalizeAttribute(" Red  "); got != "red" {
		t.Errorf("NormalizeAttribute = %q", got)
	}
}

func TestMapCategories(t *testing.T) {
	classes := []string{"man", "table", "ball", "dog"}
	cats := []category{{ID: 18, Name: "dog"}, {ID: 67, Name: "dining table"}, {ID: 37, Name: "sports ball"}, {ID: 1, Name: "person"}}
	got := mapCategories(cats, &classes)
	want := []CategoryMapping{
		{CocoID: 1, Name: "person", Class: 4, Via: "added"},
		{CocoID: 18, Name: "dog", Class: 3, Via: "name"},
		{CocoID: 37, Name: "sports ball", Class: 2, Via: "synonym"},
		{CocoID: 67, Name: "dining table", Class: 1, Via: "synonym"},
	}
	if !reflect.DeepEqual(got, want) || classes[4] != "person" {
		t.Fatalf("mapping %+v, classes %v", got, classes)
	}
}

// TestBuildTwins: a VG image whose coco_id is not in the imported COCO set
// stays VG-only, so the COCO image and it become two samples.
func TestBuildTwins(t *testing.T) {
	coco, vg, st := world(t)
	moved := 0
	editJSON(t, filepath.Join(vg, "image_data.json"), func(v any) any {
		for _, im := range v.([]any) {
			rec := im.(map[string]any)
			if rec["coco_id"] != nil && moved == 0 {
				rec["coco_id"] = 999999 // e.g. a val2017 image
				moved++
			}
		}
		return v
	})
	m, rep, err := build(t, coco, vg, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Images != testImages+1 || m.Sources["coco+vg"] != int64(st.Shared-1) || len(rep.Skipped) != 0 {
		t.Fatalf("%d images, sources %v, skipped %v", m.Images, m.Sources, rep.Skipped)
	}
}

func TestBuildConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  BuildConfig
		ok   bool
	}{
		{"coco only", BuildConfig{COCODir: "c", Out: "o"}, true},
		{"vg only", BuildConfig{VGDir: "v", Out: "o"}, true},
		{"no input", BuildConfig{Out: "o"}, false},
		{"no output", BuildConfig{COCODir: "c"}, false},
		{"negative shard size", BuildConfig{COCODir: "c", Out: "o", ShardSize: -1}, false},
		{"too many workers", BuildConfig{COCODir: "c", Out: "o", Workers: 1000}, false},
		{"negative classes", BuildConfig{COCODir: "c", Out: "o", Classes: -5}, false},
		{"limits", BuildConfig{COCODir: "c", Out: "o", MaxImageSide: 4096, MaxImagePixels: 1 << 22, MaxImageBytes: 1 << 20, DecodeMemory: 1 << 28, MaxTextBytes: 100, MaxRecordBytes: 1 << 20}, true},
		{"image side beyond JPEG", BuildConfig{COCODir: "c", Out: "o", MaxImageSide: 70000}, false},
		{"negative pixels", BuildConfig{COCODir: "c", Out: "o", MaxImagePixels: -1}, false},
		{"tiny image files", BuildConfig{COCODir: "c", Out: "o", MaxImageBytes: 100}, false},
		{"decode memory below one image", BuildConfig{COCODir: "c", Out: "o", DecodeMemory: 1 << 20}, false},
		{"decode memory for small limits", BuildConfig{COCODir: "c", Out: "o", MaxImageSide: 64, MaxImagePixels: 4096, DecodeMemory: 1 << 20}, true},
		{"negative text", BuildConfig{COCODir: "c", Out: "o", MaxTextBytes: -1}, false},
		{"tiny records", BuildConfig{COCODir: "c", Out: "o", MaxRecordBytes: 10}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrInvalidConfig)) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func TestBuildOneDataset(t *testing.T) {
	coco, vg, st := world(t)
	m, _, err := build(t, coco, "", t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Images != int64(st.COCOImages) || m.Regions != 0 || len(m.Classes) != len(synth.ClassNames) || len(m.Attributes) != 0 {
		t.Fatalf("COCO only: %d images, %d regions, classes %v, attributes %v", m.Images, m.Regions, m.Classes, m.Attributes)
	}
	for _, cm := range m.CocoCategories {
		if cm.Via != "added" {
			t.Fatalf("COCO only: category %+v not added", cm)
		}
	}
	m, _, err = build(t, "", vg, t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Images != int64(st.VGImages) || m.Captions != 0 || m.Sources["vg"] != int64(st.VGImages) || len(m.CocoCategories) != 0 {
		t.Fatalf("VG only: %d images, %d captions, sources %v", m.Images, m.Captions, m.Sources)
	}
}

func TestCounterTop(t *testing.T) {
	c := counter{"man": 5, "tree": 9, "car": 5, "sky": 1, "": 100}
	if got := c.top(3); !reflect.DeepEqual(got, []string{"tree", "car", "man"}) {
		t.Fatalf("top(3) = %v (most frequent first, ties by name, empty names never)", got)
	}
	if got := c.top(10); len(got) != 4 {
		t.Fatalf("top(10) = %v", got)
	}
}

// TestBuildSmallVocabulary: objects and attributes outside the kept
// vocabularies are dropped and counted, and never point past them.
func TestBuildSmallVocabulary(t *testing.T) {
	_, vg, st := world(t)
	out := t.TempDir()
	m, rep, err := build(t, "", vg, out, func(c *BuildConfig) { c.Classes, c.Attributes = 3, 2 })
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Classes) != 3 || len(m.Attributes) != 2 {
		t.Fatalf("vocabularies %v %v", m.Classes, m.Attributes)
	}
	dropped := skipped(rep, UnitObject, SkipObjectOutOfVocab)
	if dropped == 0 || m.Objects+dropped != int64(st.Objects) || skipped(rep, UnitAttribute, SkipAttributeOutOfVocab) == 0 {
		t.Fatalf("%d objects kept, skipped %v, export had %d", m.Objects, rep.Skipped, st.Objects)
	}
	mustVerify(t, out)
}

// mustVerify fails the test unless every shard under out verifies.
func mustVerify(t *testing.T, out string) {
	t.Helper()
	checks, err := Verify(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range checks {
		if c.Err != nil {
			t.Fatal(c.Err)
		}
	}
}
