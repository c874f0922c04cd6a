package main

import (
	"encoding/json"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSynthBuildVerify runs data synth → shard build → shard verify →
// shard inspect through the binary, then damages a shard and an input.
func TestSynthBuildVerify(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	src, shards := filepath.Join(dir, "src"), filepath.Join(dir, "shards")

	out, errOut, ok := runVLP(t, bin, "data", "synth", "--out", src, "--images", "200", "--seed", "3", "--width", "64", "--height", "80", "--overlap", "0.3")
	if !ok {
		t.Fatalf("data synth failed:\n%s%s", out, errOut)
	}
	for _, f := range []string{"coco/annotations/captions_train2017.json", "coco/annotations/instances_train2017.json",
		"vg/image_data.json", "vg/region_descriptions.json", "vg/objects.json", "vg/attributes.json"} {
		if _, err := os.Stat(filepath.Join(src, f)); err != nil {
			t.Fatal(err)
		}
	}

	build := []string{"shard", "build", "--coco", filepath.Join(src, "coco"), "--vg", filepath.Join(src, "vg"), "--out", shards, "--shard-size", "32", "--workers", "2"}
	out, errOut, ok = runVLP(t, bin, build...)
	if !ok {
		t.Fatalf("shard build failed:\n%s%s", out, errOut)
	}
	if !strings.Contains(out, "imported 200 images") || !strings.Contains(out, "skipped: nothing") || !strings.Contains(errOut, "200/200 images") {
		t.Fatalf("build output:\n%s\nstderr:\n%s", out, errOut)
	}
	var m struct {
		Images int64 `json:"images"`
		Shards []struct {
			Name string `json:"name"`
		} `json:"shards"`
	}
	data, err := os.ReadFile(filepath.Join(shards, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, &m); err != nil || m.Images != 200 || len(m.Shards) != 7 {
		t.Fatalf("manifest: %v, %d images, %d shards", err, m.Images, len(m.Shards))
	}

	out, errOut, ok = runVLP(t, bin, "shard", "verify", shards)
	if !ok || !strings.Contains(out, "all 7 shards verified: 200 samples") {
		t.Fatalf("verify:\n%s%s", out, errOut)
	}

	pngPath := filepath.Join(dir, "sample.png")
	out, errOut, ok = runVLP(t, bin, "shard", "inspect", "--shard", "2", "--sample", "5", "--png", pngPath, shards)
	if !ok || !strings.Contains(out, "classes: 6") || !strings.Contains(out, "shard-000006.tar") || !strings.Contains(out, `"pair_id"`) ||
		!strings.Contains(out, "shard-000002.tar: structure, size and sha256 verified") || !strings.Contains(out, "caption    read ") {
		t.Fatalf("inspect:\n%s%s", out, errOut)
	}
	f, err := os.Open(pngPath)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil || img.Bounds().Dx() < 320 {
		t.Fatalf("inspect PNG: %v, %v", err, img.Bounds())
	}

	// A rerun keeps every shard.
	out, errOut, ok = runVLP(t, bin, build...)
	if !ok || !strings.Contains(out, "0 written, 7 kept") {
		t.Fatalf("rerun:\n%s%s", out, errOut)
	}

	// A flipped byte in a shard fails verify, naming the shard.
	p := filepath.Join(shards, m.Shards[4].Name)
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 0x55
	os.WriteFile(p, b, 0o644)
	out, _, ok = runVLP(t, bin, "shard", "verify", shards)
	if ok || !strings.Contains(out, "FAIL "+m.Shards[4].Name) {
		t.Fatalf("verify of a damaged shard exited 0 or did not name it:\n%s", out)
	}

	// Nothing usable: exit non-zero with the reasons listed.
	os.RemoveAll(filepath.Join(src, "coco", "train2017"))
	os.RemoveAll(filepath.Join(src, "vg", "VG_100K"))
	out, errOut, ok = runVLP(t, bin, "shard", "build", "--quiet", "--coco", filepath.Join(src, "coco"), "--vg", filepath.Join(src, "vg"), "--out", filepath.Join(dir, "empty"))
	if ok || !strings.Contains(out, "image_missing") || !strings.Contains(errOut, "nothing usable") {
		t.Fatalf("build without images:\n%s%s", out, errOut)
	}
	if !strings.Contains(out, "shards: 0 written, 0 kept from a previous run, 1 left unwritten (no usable sample)") || !strings.Contains(out, "into 0 shards") {
		t.Fatalf("build without images does not say it wrote no shard:\n%s", out)
	}
}

// TestShardInspectVerifies: inspect draws a sample only from a shard whose
// checksum matches the manifest, or says that it did not check.
func TestShardInspectVerifies(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	src, shards := filepath.Join(dir, "src"), filepath.Join(dir, "shards")
	if out, errOut, ok := runVLP(t, bin, "data", "synth", "--out", src, "--images", "12", "--width", "48", "--height", "48"); !ok {
		t.Fatalf("data synth:\n%s%s", out, errOut)
	}
	if out, errOut, ok := runVLP(t, bin, "shard", "build", "--quiet", "--coco", filepath.Join(src, "coco"), "--vg", filepath.Join(src, "vg"), "--out", shards, "--shard-size", "6"); !ok {
		t.Fatalf("shard build:\n%s%s", out, errOut)
	}
	var m struct {
		Shards []struct {
			Name          string  `json:"name"`
			SampleOffsets []int64 `json:"sample_offsets"`
		} `json:"shards"`
	}
	data, _ := os.ReadFile(filepath.Join(shards, "manifest.json"))
	if err := json.Unmarshal(data, &m); err != nil || len(m.Shards) < 2 {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	// Damage the first sample's JPEG bytes (past the tar header) in shard 1.
	p := filepath.Join(shards, m.Shards[1].Name)
	b, _ := os.ReadFile(p)
	b[m.Shards[1].SampleOffsets[0]+512+300] ^= 0x55
	os.WriteFile(p, b, 0o644)

	pngPath := filepath.Join(dir, "s.png")
	out, errOut, ok := runVLP(t, bin, "shard", "inspect", "--shard", "1", "--sample", "1", "--png", pngPath, shards)
	if ok || !strings.Contains(errOut, "checksum mismatch") || !strings.Contains(errOut, m.Shards[1].Name) || !strings.Contains(errOut, "sample not drawn") {
		t.Fatalf("inspect of a damaged shard:\n%s%s", out, errOut)
	}
	if _, err := os.Stat(pngPath); err == nil {
		t.Fatal("inspect drew a sample of a damaged shard")
	}
	out, errOut, ok = runVLP(t, bin, "shard", "inspect", "--no-verify", "--shard", "1", "--sample", "1", "--png", pngPath, shards)
	if !ok || !strings.Contains(out, m.Shards[1].Name+": NOT verified") {
		t.Fatalf("inspect --no-verify:\n%s%s", out, errOut)
	}
	if _, err := os.Stat(pngPath); err != nil {
		t.Fatalf("inspect --no-verify drew nothing: %v", err)
	}
	if out, errOut, ok := runVLP(t, bin, "shard", "inspect", "--shard", "0", "--sample", "99", shards); ok || !strings.Contains(errOut, "--sample 99") {
		t.Fatalf("inspect of a sample that is not there:\n%s%s", out, errOut)
	}
}

// TestShardBuildLimitFlags: the limits on hostile input are flags of
// shard build, reach the import, and are refused out of range.
func TestShardBuildLimitFlags(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	if out, errOut, ok := runVLP(t, bin, "data", "synth", "--out", src, "--images", "6", "--width", "64", "--height", "64", "--overlap", "0"); !ok {
		t.Fatalf("data synth:\n%s%s", out, errOut)
	}
	build := func(args ...string) (string, string, bool) {
		return runVLP(t, bin, append([]string{"shard", "build", "--quiet", "--coco", filepath.Join(src, "coco"), "--vg", filepath.Join(src, "vg"), "--out", filepath.Join(dir, "out")}, args...)...)
	}
	out, errOut, ok := build("--max-image-side", "32")
	if ok || !strings.Contains(out, "image_too_large") || !strings.Contains(out, "image 64×64 exceeds 32×32") {
		t.Fatalf("--max-image-side 32:\n%s%s", out, errOut)
	}
	out, errOut, ok = build("--max-text-bytes", "4")
	if ok || !strings.Contains(out, "text_too_long") || !strings.Contains(out, "exceeds the 4-byte limit") {
		t.Fatalf("--max-text-bytes 4:\n%s%s", out, errOut)
	}
	out, errOut, ok = build("--max-image-pixels", "4000", "--max-image-side", "100")
	if ok || !strings.Contains(out, "image 64×64 (4096 pixels) exceeds the 4000-pixel limit") {
		t.Fatalf("--max-image-pixels 4000:\n%s%s", out, errOut)
	}
	for _, bad := range [][]string{{"--decode-memory-mib", "1"}, {"--max-image-side", "70000"}, {"--max-record-mib", "-3"}, {"--max-image-mib", "4096"}} {
		if out, errOut, ok := build(bad...); ok || !strings.Contains(errOut, "invalid config") {
			t.Fatalf("%v was not refused:\n%s%s", bad, out, errOut)
		}
	}
	if out, errOut, ok := build(); !ok || !strings.Contains(out, "skipped: nothing") {
		t.Fatalf("defaults:\n%s%s", out, errOut)
	}
}

// TestDataSynthMaxObjects: --max-objects bounds the shapes of every image,
// as the COCO instance annotations show; out of range it is refused.
func TestDataSynthMaxObjects(t *testing.T) {
	bin := testBinary(t)
	count := func(max string) map[int]int {
		src := filepath.Join(t.TempDir(), "src")
		out, errOut, ok := runVLP(t, bin, "data", "synth", "--out", src, "--images", "60", "--width", "64", "--height", "64", "--overlap", "1", "--max-objects", max)
		if !ok {
			t.Fatalf("data synth --max-objects %s failed:\n%s%s", max, out, errOut)
		}
		b, err := os.ReadFile(filepath.Join(src, "coco/annotations/instances_train2017.json"))
		if err != nil {
			t.Fatal(err)
		}
		var inst struct {
			Annotations []struct {
				ImageID int `json:"image_id"`
			} `json:"annotations"`
		}
		if err := json.Unmarshal(b, &inst); err != nil {
			t.Fatal(err)
		}
		per := map[int]int{}
		for _, a := range inst.Annotations {
			per[a.ImageID]++
		}
		return per
	}
	most := func(per map[int]int) int {
		m := 0
		for _, n := range per {
			m = max(m, n)
		}
		return m
	}
	if got := most(count("1")); got != 1 {
		t.Fatalf("--max-objects 1: an image has %d shapes", got)
	}
	if got := most(count("4")); got < 3 || got > 4 {
		t.Fatalf("--max-objects 4: the most shapes in 60 images is %d, want 3 or 4", got)
	}
	if out, errOut, ok := runVLP(t, bin, "data", "synth", "--out", t.TempDir(), "--images", "4", "--max-objects", "5"); ok || !strings.Contains(errOut, "MaxObjects 5") {
		t.Fatalf("--max-objects 5 was not refused clearly:\n%s%s", out, errOut)
	}
}
