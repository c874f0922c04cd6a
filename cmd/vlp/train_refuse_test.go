package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/torch"
	"github.com/e2evlp/vlp/worker"
)

// Refusals up front: a spec a model cannot honour, a device LibTorch cannot drive, a spec the
// workers would refuse — each one line, before anything starts.

// A job spec whose fields its model cannot honour is refused by the worker with the field named;
// one out of range is refused when it is parsed.
func TestJobSpecFieldsRefused(t *testing.T) {
	const head = "name: train\nglobal_batch: 8\n"
	for _, tc := range []struct{ yaml, says string }{
		{"model: linear\nprecision: bf16\nhyper: {lr: 0.01}", "precision bf16"},
		{"model: linear\ndropout: 0.1\nhyper: {lr: 0.01}", "dropout"},
		{"model: linear\nhyper: {lr: 0.01, backbone_lr: 0.001}", "hyper.backbone_lr"},
		{"model: linear\nhyper: {lr: 0.01, warmup_steps: 5}", "hyper.warmup_steps"},
		{"model: linear\nhyper: {lr: 0.01, min_lr: 0.001}", "hyper.min_lr"},
		{"model: linear\noptions: {images: \"8\"}\nhyper: {lr: 0.01}", "options images"},
		{"model: linear\noptions: {channels_last: \"true\"}\nhyper: {lr: 0.01}", "options channels_last"},
		{"model: tiny\noptions: {images: \"8\", channels_last: \"yes\"}\nhyper: {lr: 0.01}", "option channels_last=\"yes\": want true or false"},
		{"model: tiny\noptions: {images: \"8\", imagesize: \"32\"}\nhyper: {lr: 0.01}", "options imagesize"},
		{"model: tiny\noptions: {images: \"8\"}\nhyper: {lr: 0.01, max_steps: 10, warmup_steps: 20}", "hyper.warmup_steps 20"},
		{"model: tiny\noptions: {images: \"8\"}\nhyper: {lr: 0.0001, min_lr: 0.001}", "hyper.min_lr"},
		{"model: huge\nhyper: {lr: 0.01}", "unknown preset"},
	} {
		spec, err := coordinator.ParseJobSpecYAML([]byte(head+tc.yaml+"\n"), "train")
		if err == nil {
			if spec.Model == "linear" {
				_, err = worker.ResolveLinearJob(spec)
			} else {
				_, err = specView(t, head+tc.yaml+"\n")
			}
		}
		if !strings.Contains(fmtErr(err), tc.says) {
			t.Errorf("spec %q: %v; want an error saying %q", tc.yaml, err, tc.says)
		}
	}
	for _, tc := range []struct{ yaml, says string }{
		{"model: tiny\nprecision: fp16", "precision \"fp16\""},
		{"model: tiny\ndropout: 1.5", "dropout 1.5"},
		{"model: tiny\nhyper: {lr: 0.01, beta1: 1.2}", "hyper.beta1 1.2"},
		{"model: tiny\nhyper: {lr: 0.01, beta2: -1}", "hyper.beta2 -1"},
		{"model: tiny\nhyper: {lr: 0.01, eps: -1}", "hyper.eps -1"},
		{"model: tiny\nhyper: {lr: 0.01, betas: 0.9}", "betas"},
		{"model: tiny\nbf16: true", "bf16"},
	} {
		_, err := coordinator.ParseJobSpecYAML([]byte(head+tc.yaml+"\n"), "train")
		if !strings.Contains(fmtErr(err), tc.says) {
			t.Errorf("spec %q: %v; want an error saying %q", tc.yaml, err, tc.says)
		}
	}
}

// A fresh distributed run whose spec its workers would refuse stops with one line before its
// coordinator or any worker starts.
func TestTrainRefusesSpecUpFront(t *testing.T) {
	bin := testBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	args := []string{"--torch-lib", shimPath(t), "train", "--dir", dir, "--images", "8", "--steps", "100", "--warmup-steps", "500"}
	out, errOut, ok := runVLP(t, bin, args...)
	if ok || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, "hyper.warmup_steps 500") {
		t.Errorf("vlp %v: ok=%v\n%s%s", args, ok, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "coordinator")); !os.IsNotExist(err) {
		t.Errorf("the refused run started a coordinator in %s (%v)", dir, err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// `vlp train --device cuda:0` on a LibTorch that cannot drive it stops with one line before the
// run does anything — with --local, and distributed before --dir exists or a worker starts —
// and so does `vlp worker join`. Skipped where LibTorch does see a CUDA device.
func TestTrainRefusesDeviceUpFront(t *testing.T) {
	lib := shimPath(t)
	if err := torch.Load(lib); err != nil {
		t.Fatal(err)
	}
	if torch.CheckDevice(torch.CUDA(0)) == nil {
		t.Skip("this LibTorch drives cuda:0")
	}
	bin := testBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	for _, mode := range [][]string{{"--local"}, {"--dir", dir}, {"--dir", dir, "--workers", "1", "--data", "synth"}} {
		args := append(append([]string{"--torch-lib", lib, "train"}, mode...), "--device", "cuda:0", "--steps", "1")
		out, errOut, ok := runVLP(t, bin, args...)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if ok || len(lines) != 1 || !strings.Contains(errOut, "cuda:0") || !strings.Contains(errOut, "--device") {
			t.Errorf("vlp %v: ok=%v, stderr %q; want one line naming --device cuda:0", args, ok, errOut)
		}
		if strings.Contains(out, "workers started") {
			t.Errorf("vlp %v started workers:\n%s", args, out)
		}
		t.Logf("%v: %s", mode, lines[0])
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("the refused run made %s (%v)", dir, err)
	}
	_, err := specView(t, "name: train\nmodel: tiny\nglobal_batch: 8\noptions: {images: \"8\"}\nhyper: {lr: 0.01}\n", "--device", "cuda:0")
	if err == nil || !strings.Contains(err.Error(), "cuda:0") || !strings.Contains(err.Error(), "--device") {
		t.Errorf("worker join --device cuda:0: %v", err)
	}
}
