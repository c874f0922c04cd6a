package train

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/e2evlp/vlp/downstream"
	"github.com/e2evlp/vlp/synth"
)

// taskRecordsFiles writes the synthetic world of seed (images of 64 px) in task's real format
// (package synth), imports it as `vlp downstream import --records` does (package downstream) and
// returns the records files of the training and held-out splits.
func taskRecordsFiles(t testing.TB, task Task, seed uint64, images int, dir string) (trainPath, heldPath string) {
	t.Helper()
	cfg := synth.FinetuneConfig{World: synth.Config{Seed: seed, Images: images, Width: 64, Height: 64, MaxObjects: 2}, Workers: 2}
	write := func(name string, v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	switch task {
	case TaskVQA:
		d := filepath.Join(dir, "vqa")
		if _, err := synth.ExportVQA(cfg, d); err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, sub := range []string{synth.VQATrain, synth.VQAVal} {
			set, _, err := downstream.ImportVQA(downstream.VQAConfig{Questions: filepath.Join(d, synth.VQAQuestionsFile(sub)),
				Annotations: filepath.Join(d, synth.VQAAnnotationsFile(sub)), ImageDir: filepath.Join(d, sub)})
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, write("vqa-"+sub+".json", set))
		}
		return paths[0], paths[1]
	case TaskNLVR2:
		d := filepath.Join(dir, "nlvr2")
		if _, err := synth.ExportNLVR2(cfg, d); err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, split := range []string{"train", "dev"} {
			set, _, err := downstream.ImportNLVR2(downstream.NLVR2Config{File: filepath.Join(d, split+".json"), ImageDir: filepath.Join(d, "images", split)})
			if err != nil {
				t.Fatal(err)
			}
			paths = append(paths, write("nlvr2-"+split+".json", set))
		}
		return paths[0], paths[1]
	default:
		d := filepath.Join(dir, "karpathy")
		if _, err := synth.ExportKarpathy(cfg, d); err != nil {
			t.Fatal(err)
		}
		set, _, err := downstream.ImportKarpathy(downstream.KarpathyConfig{File: filepath.Join(d, synth.KarpathyFile), ImageDir: d})
		if err != nil {
			t.Fatal(err)
		}
		p := write("karpathy.json", set)
		return p, p
	}
}
