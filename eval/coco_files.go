package eval

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// The interoperability files, in the formats pycocotools and coco-caption
// read. Category ids are class indices + 1 (COCO's ids start at 1);
// annotation ids start at 1 (pycocotools takes a match to id 0 for no
// match). Boxes are [x, y, width, height] in pixels of the original image.

// cocoImage, cocoAnnotation and cocoCategory are the records of a COCO
// instances file.
type cocoImage struct {
	ID       int    `json:"id"`
	Width    int    `json:"width"`
	Height   int    `json:"height"`
	FileName string `json:"file_name"`
}

type cocoAnnotation struct {
	ID         int        `json:"id"`
	ImageID    int        `json:"image_id"`
	CategoryID int        `json:"category_id"`
	BBox       [4]float64 `json:"bbox"`
	Area       float64    `json:"area"`
	IsCrowd    int        `json:"iscrowd"`
}

type cocoCategory struct {
	ID   int    `json:"id"`
	Name string `json:"name"`
}

type cocoGTFile struct {
	Images      []cocoImage      `json:"images"`
	Annotations []cocoAnnotation `json:"annotations"`
	Categories  []cocoCategory   `json:"categories"`
}

// cocoResult is one line of a COCO detection results file.
type cocoResult struct {
	ImageID    int        `json:"image_id"`
	CategoryID int        `json:"category_id"`
	BBox       [4]float64 `json:"bbox"`
	Score      float64    `json:"score"`
}

// captionResult is one line of a coco-caption results file.
type captionResult struct {
	ImageID int    `json:"image_id"`
	Caption string `json:"caption"`
}

// WriteCOCOGroundTruth writes the ground truth as a COCO instances file:
// every evaluated image (with or without objects), every object, every
// class as a category.
func WriteCOCOGroundTruth(path string, p *Predictions) error {
	f := cocoGTFile{Images: []cocoImage{}, Annotations: []cocoAnnotation{}, Categories: []cocoCategory{}}
	for _, im := range p.Images {
		f.Images = append(f.Images, cocoImage{ID: im.ID, Width: im.Width, Height: im.Height, FileName: im.Key + ".jpg"})
	}
	for i, g := range p.GTs {
		crowd := 0
		if g.Crowd {
			crowd = 1
		}
		f.Annotations = append(f.Annotations, cocoAnnotation{ID: i + 1, ImageID: g.Image, CategoryID: g.Class + 1,
			BBox: [4]float64{g.Box.X, g.Box.Y, g.Box.W, g.Box.H}, Area: g.area(), IsCrowd: crowd})
	}
	for i, name := range p.Classes {
		f.Categories = append(f.Categories, cocoCategory{ID: i + 1, Name: name})
	}
	return writeJSONFile(path, f)
}

// WriteCOCODetections writes every detection as a COCO results file.
func WriteCOCODetections(path string, p *Predictions) error {
	out := []cocoResult{}
	for _, d := range p.Dets {
		out = append(out, cocoResult{ImageID: d.Image, CategoryID: d.Class + 1, BBox: [4]float64{d.Box.X, d.Box.Y, d.Box.W, d.Box.H}, Score: d.Score})
	}
	return writeJSONFile(path, out)
}

// WriteCaptions writes one caption per image as a coco-caption results
// file: [{image_id, caption}].
func WriteCaptions(path string, p *Predictions, captions []string) error {
	if len(captions) != len(p.Images) {
		return fmt.Errorf("eval: %s: %d captions for %d images", path, len(captions), len(p.Images))
	}
	out := []captionResult{}
	for i, c := range captions {
		out = append(out, captionResult{ImageID: p.Images[i].ID, Caption: c})
	}
	return writeJSONFile(path, out)
}

// WriteReport writes r as indented JSON.
func WriteReport(path string, r *Report) error { return writeJSONFile(path, r) }

// writeJSONFile writes v beside path and renames it into place, so a
// reader never sees half a file.
func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("eval: %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("eval: %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("eval: %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil { // CreateTemp's 0600 is for secrets
		return fmt.Errorf("eval: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("eval: %w", err)
	}
	return nil
}
