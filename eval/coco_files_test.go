package eval

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// pyCOCOFiles evaluates COCO files (an instances file and a results file,
// paths on stdin) with the independent Python evaluation, reading them as
// pycocotools does: images and categories from the instances file.
const pyCOCOFiles = pyCOCOLib + `
paths = json.load(sys.stdin)
gt = json.load(open(paths["gt"]))
res = json.load(open(paths["dets"]))
case = {
    "images": [im["id"] for im in gt["images"]],
    "classes": [c["id"] for c in gt["categories"]],
    "gts": [{"Image": a["image_id"], "Class": a["category_id"], "Box": a["bbox"], "Area": a["area"], "Crowd": a["iscrowd"] == 1}
            for a in gt["annotations"]],
    "dets": [{"Image": d["image_id"], "Class": d["category_id"], "Box": d["bbox"], "Score": d["score"]} for d in res],
}
json.dump(stats(case), sys.stdout)
`

// TestCOCOFilesRoundTrip writes a random problem as COCO files and checks
// that the Python evaluation of the files gives the numbers EvaluateCOCO
// gives in memory: ids, boxes, areas, crowds and scores survive the
// format.
func TestCOCOFilesRoundTrip(t *testing.T) {
	c := randomCOCO(rand.New(rand.NewPCG(16, 4)))
	p := &Predictions{Classes: []string{"circle", "square", "star"}}
	for _, im := range c.Images {
		p.Images = append(p.Images, ImageInfo{ID: im, Width: 400, Height: 300, Key: "img"})
	}
	for _, g := range c.GTs {
		p.GTs = append(p.GTs, GroundTruth{Image: g.Image, Class: g.Class, Box: Box{g.Box[0], g.Box[1], g.Box[2], g.Box[3]}, Area: g.Area, Crowd: g.Crowd})
	}
	for _, d := range c.Dets {
		p.Dets = append(p.Dets, Detection{Image: d.Image, Class: d.Class, Score: d.Score, Box: Box{d.Box[0], d.Box[1], d.Box[2], d.Box[3]}})
	}
	dir := t.TempDir()
	gtPath, dtPath, capPath := filepath.Join(dir, "gt.json"), filepath.Join(dir, "dets.json"), filepath.Join(dir, "captions.json")
	if err := WriteCOCOGroundTruth(gtPath, p); err != nil {
		t.Fatal(err)
	}
	if err := WriteCOCODetections(dtPath, p); err != nil {
		t.Fatal(err)
	}
	var want [12]float64
	runOracle(t, pyCOCOFiles, map[string]string{"gt": gtPath, "dets": dtPath}, &want)
	res, err := EvaluateCOCO(c.Images, []int{0, 1, 2}, p.GTs, p.Dets)
	if err != nil {
		t.Fatal(err)
	}
	got := res.Stats.list()
	for k := range got {
		if math.Abs(got[k]-want[k]) > 1e-9 {
			t.Errorf("%s = %.12f in memory, %.12f from the files", statNames[k], got[k], want[k])
		}
	}

	caps := make([]string, len(p.Images))
	for i := range caps {
		caps[i] = "a red circle"
	}
	if err := WriteCaptions(capPath, p, caps); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(capPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []struct {
		ImageID *int    `json:"image_id"`
		Caption *string `json:"caption"`
	}
	if err := json.Unmarshal(b, &lines); err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(p.Images) || lines[0].ImageID == nil || *lines[0].ImageID != p.Images[0].ID || lines[0].Caption == nil || *lines[0].Caption != caps[0] {
		t.Fatalf("captions file %s does not hold [{image_id, caption}] per image", b)
	}
	if err := WriteCaptions(capPath, p, caps[1:]); err == nil {
		t.Error("fewer captions than images: no error")
	}
}
