package synth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestExportFormats(t *testing.T) {
	dir := t.TempDir()
	cfg := ExportConfig{World: Config{Seed: 5, Images: 40}, Overlap: 0.3}
	coco, vg := filepath.Join(dir, "coco"), filepath.Join(dir, "vg")
	st, err := Export(cfg, coco, vg)
	if err != nil {
		t.Fatal(err)
	}
	if st.COCOImages+st.VGImages-st.Shared != 40 || st.Shared == 0 || st.Shared == 40 {
		t.Fatalf("stats %+v", st)
	}
	var caps struct {
		Images []struct {
			ID       int    `json:"id"`
			FileName string `json:"file_name"`
		} `json:"images"`
		Annotations []struct {
			ImageID int    `json:"image_id"`
			Caption string `json:"caption"`
		} `json:"annotations"`
	}
	readJSON(t, filepath.Join(coco, "annotations", "captions_train2017.json"), &caps)
	if len(caps.Images) != st.COCOImages || len(caps.Annotations) != 5*st.COCOImages {
		t.Fatalf("captions file: %d images, %d captions; stats %+v", len(caps.Images), len(caps.Annotations), st)
	}
	for _, im := range caps.Images {
		if _, err := os.Stat(filepath.Join(coco, "train2017", im.FileName)); err != nil {
			t.Fatal(err)
		}
	}
	var inst struct {
		Annotations []struct {
			BBox       [4]float64 `json:"bbox"`
			CategoryID int        `json:"category_id"`
		} `json:"annotations"`
		Categories []struct {
			ID   int    `json:"id"`
			Name string `json:"name"`
		} `json:"categories"`
	}
	readJSON(t, filepath.Join(coco, "annotations", "instances_train2017.json"), &inst)
	if len(inst.Categories) != len(ClassNames) || len(inst.Annotations) != st.Instances {
		t.Fatalf("instances: %d categories, %d annotations", len(inst.Categories), len(inst.Annotations))
	}
	var imgs []struct {
		ImageID int  `json:"image_id"`
		CocoID  *int `json:"coco_id"`
	}
	readJSON(t, filepath.Join(vg, "image_data.json"), &imgs)
	shared := 0
	for _, im := range imgs {
		if im.CocoID != nil {
			shared++
		}
		if _, err := os.Stat(filepath.Join(vg, "VG_100K", itoa(im.ImageID)+".jpg")); err != nil {
			t.Fatal(err)
		}
	}
	if len(imgs) != st.VGImages || shared != st.Shared {
		t.Fatalf("image_data: %d images, %d shared; stats %+v", len(imgs), shared, st)
	}
	var regions []struct {
		ID      int `json:"id"`
		Regions []struct {
			Phrase string `json:"phrase"`
		} `json:"regions"`
	}
	readJSON(t, filepath.Join(vg, "region_descriptions.json"), &regions)
	var objs, attrs []json.RawMessage
	readJSON(t, filepath.Join(vg, "objects.json"), &objs)
	readJSON(t, filepath.Join(vg, "attributes.json"), &attrs)
	if len(regions) != st.VGImages || len(objs) != st.VGImages || len(attrs) != st.VGImages {
		t.Fatalf("VG arrays: %d regions, %d objects, %d attributes for %d images", len(regions), len(objs), len(attrs), st.VGImages)
	}
}

func TestExportPaddedRegionsAndPool(t *testing.T) {
	dir := t.TempDir()
	cfg := ExportConfig{World: Config{Seed: 5, Images: 30, Width: 32, Height: 32}, Overlap: 0.5,
		Regions: 50, Instances: 7, Objects: 35, PolygonPoints: 24, ImagePool: 4}
	vg := filepath.Join(dir, "vg")
	st, err := Export(cfg, filepath.Join(dir, "coco"), vg)
	if err != nil {
		t.Fatal(err)
	}
	if st.Regions != 50*st.VGImages || st.Instances != 7*st.COCOImages || st.Objects != 35*st.VGImages {
		t.Fatalf("padding: %+v", st)
	}
	var inst struct {
		Annotations []struct {
			Segmentation [][]float64 `json:"segmentation"`
		} `json:"annotations"`
	}
	readJSON(t, filepath.Join(dir, "coco", "annotations", "instances_train2017.json"), &inst)
	if len(inst.Annotations) == 0 || len(inst.Annotations[0].Segmentation[0]) != 48 {
		t.Fatalf("polygon of %d numbers, want 48", len(inst.Annotations[0].Segmentation[0]))
	}
	// Images i and i+4 share one file.
	var linked int
	for i := 0; i+4 < 30; i++ {
		if cfg.Member(i)&InVG == 0 || cfg.Member(i+4)&InVG == 0 {
			continue
		}
		a, err1 := os.Stat(filepath.Join(vg, "VG_100K", itoa(vgImageID(i))+".jpg"))
		b, err2 := os.Stat(filepath.Join(vg, "VG_100K", itoa(vgImageID(i+4))+".jpg"))
		if err1 != nil || err2 != nil || !os.SameFile(a, b) {
			t.Fatalf("images %d and %d are not one file: %v %v", i, i+4, err1, err2)
		}
		linked++
	}
	if linked == 0 {
		t.Fatal("no pair of VG images to compare")
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
