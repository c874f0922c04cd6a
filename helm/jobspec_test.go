package helm

import (
	"encoding/json"
	"github.com/e2evlp/vlp/train"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/coordinator"
	"go.yaml.in/yaml/v3"
)

// readJobYAML decodes the ConfigMap's job.yaml as `vlp job submit` does: unknown keys fail.
func readJobYAML(t *testing.T, r *Rendered) coordinator.JobSpec {
	t.Helper()
	cm := r.configMap("vlp-job")
	if cm == nil {
		t.Fatal("no job ConfigMap")
	}
	dec := yaml.NewDecoder(strings.NewReader(cm.Data["job.yaml"]))
	dec.KnownFields(true)
	var s coordinator.JobSpec
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("job.yaml does not decode as a JobSpec: %v\n%s", err, cm.Data["job.yaml"])
	}
	return s
}

// TestJobSpec: the demo spec is a valid job; a spec from values replaces it whole (Helm merges
// maps, and a linear job that inherited the preset's options was refused by its workers); the
// submit Job is named by the spec and the image, so that it runs again exactly when one
// changes, and submits the ConfigMap's file.
func TestJobSpec(t *testing.T) {
	r := render(t, install(), nil)
	demo := readJobYAML(t, r)
	if demo.Name != "pretrain" || demo.Model != "tiny" || demo.Units.Pairs != 10240 {
		t.Errorf("demo spec %+v", demo)
	}
	if d := demo.WithDefaults(); d.Validate() != nil {
		err := d.Validate()
		t.Errorf("the demo spec does not validate: %v", err)
	}
	linear := map[string]any{"model": "linear", "global_batch": 12, "units": map[string]any{"pairs": 240, "per_unit": 12}, "options": map[string]any{"dim": "8"}}
	r2 := render(t, install(), values("job.name", "lin", "job.spec", linear))
	s := readJobYAML(t, r2)
	if s.Name != "lin" || s.Model != "linear" || !reflect.DeepEqual(s.Options, map[string]string{"dim": "8"}) || s.Epochs != 0 {
		t.Errorf("a spec from values: %+v; want exactly it (no key of the demo spec)", s)
	}
	// Spec options reach the workers as `vlp train` gives them: the chart carries
	// options.channels_last, tf32 and cudnn_benchmark into job.yaml, and the workers' resolution
	// reads them (a CPU worker then refuses the last two: train.TestResolveCUDAMath).
	nhwc := map[string]any{"model": "tiny", "global_batch": 16, "units": map[string]any{"pairs": 256, "per_unit": 8},
		"options": map[string]any{"images": "256", "channels_last": "true", "tf32": "true", "cudnn_benchmark": "true"}}
	job, err := train.Resolve(readJobYAML(t, render(t, install(), values("job.spec", nhwc))), 256)
	if err != nil || !job.Model.ChannelsLast || !job.Train.TF32 || !job.Train.CuDNNBenchmark {
		t.Errorf("options through the chart: channels-last %v, tf32 %v, cuDNN benchmark %v, %v",
			job.Model.ChannelsLast, job.Train.TF32, job.Train.CuDNNBenchmark, err)
	}
	name := func(r *Rendered) string { return r.jobs()[0].Name }
	if again := render(t, upgrade(2), nil); name(again) != name(r) {
		t.Errorf("the same spec and image: submit Job %s, then %s", name(r), name(again))
	}
	if name(r2) == name(r) || name(render(t, upgrade(2), values("image.tag", "other"))) == name(r) {
		t.Errorf("a new spec or image keeps the submit Job's name %s", name(r))
	}
	c := r.jobs()[0].Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args[:2], []string{"job", "submit"}) || c.Args[len(c.Args)-1] != "/etc/vlp/job/job.yaml" {
		t.Errorf("submit args %v", c.Args)
	}
}

// TestSchemaMirrorsJobSpec: values.schema.json's job.spec lists exactly the fields JobSpec reads
// (less name, which job.name gives), at every level, so the schema refuses what `vlp job
// submit` would refuse and accepts what it reads.
func TestSchemaMirrorsJobSpec(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir(t), "values.schema.json"))
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	spec := dig(schema, "properties", "job", "properties", "spec")
	var compare func(path string, s map[string]any, typ reflect.Type)
	compare = func(path string, s map[string]any, typ reflect.Type) {
		props, _ := s["properties"].(map[string]any)
		var want []string
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := strings.Split(f.Tag.Get("yaml"), ",")[0]
			if key == "" || key == "-" || (path == "spec" && key == "name") {
				continue
			}
			want = append(want, key)
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				sub, _ := props[key].(map[string]any)
				if sub == nil {
					continue
				}
				compare(path+"."+key, sub, ft)
			}
		}
		var got []string
		for k := range props {
			got = append(got, k)
		}
		slices.Sort(want)
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("schema %s: %v; %s reads %v", path, got, typ.Name(), want)
		}
		if s["additionalProperties"] != false {
			t.Errorf("schema %s accepts unknown keys", path)
		}
	}
	compare("spec", spec, reflect.TypeOf(coordinator.JobSpec{}))
}

func dig(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		m, _ = m[k].(map[string]any)
	}
	return m
}
