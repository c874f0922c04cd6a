package sharding

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// handmade is a small COCO and/or VG tree written by a test, byte by
// byte, so that it can hold exactly the damage the test is about.
type handmade struct {
	t    *testing.T
	root string
}

func newHandmade(t *testing.T) *handmade {
	t.Helper()
	return &handmade{t: t, root: t.TempDir()}
}

func (h *handmade) coco() string { return filepath.Join(h.root, "coco") }
func (h *handmade) vg() string   { return filepath.Join(h.root, "vg") }

// write writes content to root/rel.
func (h *handmade) write(rel string, content []byte) {
	h.t.Helper()
	p := filepath.Join(h.root, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, content, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// cocoFiles writes both COCO annotation files: the images list goes into
// both (as in the real files), captions into one, instances and
// categories into the other. Arguments are JSON array bodies.
func (h *handmade) cocoFiles(images, captions, instances, categories string) {
	h.write("coco/annotations/captions_train2017.json", []byte(`{"info":{"year":2017},"images":[`+images+`],"annotations":[`+captions+`]}`))
	h.write("coco/annotations/instances_train2017.json", []byte(`{"images":[`+images+`],"annotations":[`+instances+`],"categories":[`+categories+`]}`))
}

// vgFiles writes the four VG files; "" leaves objects.json or
// attributes.json out.
func (h *handmade) vgFiles(images, regions, objects, attributes string) {
	h.write("vg/image_data.json", []byte(`[`+images+`]`))
	h.write("vg/region_descriptions.json", []byte(`[`+regions+`]`))
	if objects != "" {
		h.write("vg/objects.json", []byte(`[`+objects+`]`))
	}
	if attributes != "" {
		h.write("vg/attributes.json", []byte(`[`+attributes+`]`))
	}
}

// picture writes a w x h JPEG at rel.
func (h *handmade) picture(rel string, w, ht int) []byte {
	h.t.Helper()
	data := testJPEG(h.t, w, ht)
	h.write(rel, data)
	return data
}

func testJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 5), 90, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 80}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// bombJPEG is a valid small JPEG whose frame header is rewritten to claim
// w x h pixels: image/jpeg allocates that size when it reaches the scan.
func bombJPEG(t testing.TB, w, h int) []byte {
	t.Helper()
	data := testJPEG(t, 16, 16)
	i := bytes.Index(data, []byte{0xff, 0xc0})
	if i < 0 {
		t.Fatal("no SOF0 in the encoded JPEG")
	}
	data[i+5], data[i+6] = byte(h>>8), byte(h)
	data[i+7], data[i+8] = byte(w>>8), byte(w)
	return data
}

// buildCfg imports the handmade tree with cfg's limits and checks that the
// report adds up.
func (h *handmade) build(mod func(*BuildConfig)) (*Manifest, *Report, string) {
	h.t.Helper()
	coco, vg := h.coco(), h.vg()
	if _, err := os.Stat(coco); err != nil {
		coco = ""
	}
	if _, err := os.Stat(vg); err != nil {
		vg = ""
	}
	out := filepath.Join(h.root, "shards")
	m, rep, err := build(h.t, coco, vg, out, func(c *BuildConfig) {
		c.ShardSize, c.Workers = 2, 2
		if mod != nil {
			mod(c)
		}
	})
	if err != nil {
		h.t.Fatalf("build: %v", err)
	}
	return m, rep, out
}

// wantSkips checks a unit's skips, reason by reason: exactly these.
func wantSkips(t *testing.T, rep *Report, u string, want map[string]int64) {
	t.Helper()
	got := map[string]int64{}
	if tl := rep.Units[u]; tl != nil {
		for k, v := range tl.Skipped {
			if v != 0 {
				got[k] = v
			}
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s skipped %v, want %v\nexamples: %v", u, got, want, rep.Examples)
	}
}

// wantExample checks that an example of unit u and reason contains s.
func wantExample(t *testing.T, rep *Report, u, reason, s string) {
	t.Helper()
	for _, e := range rep.Examples[u+" "+reason] {
		if strings.Contains(e, s) {
			return
		}
	}
	t.Fatalf("no %s %s example contains %q: %q", u, reason, s, rep.Examples[u+" "+reason])
}

// texts returns each sample's texts by key, as "kind id: text".
func texts(t *testing.T, out string) map[string][]string {
	t.Helper()
	got := map[string][]string{}
	for key, s := range readSamples(t, out) {
		for _, tx := range s.Meta.Texts {
			_, id := SplitID(tx.PairID)
			got[key] = append(got[key], fmt.Sprintf("%s %d: %s", tx.Kind, id, tx.Text))
		}
	}
	return got
}

// keys lists the sample keys of a shard directory in order.
func keys(t *testing.T, out string) []string {
	t.Helper()
	var ks []string
	for k := range readSamples(t, out) {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
