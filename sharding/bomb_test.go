package sharding

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
)

// bombChildEnv makes the test binary, re-executed by
// TestImportBombUnderAddressSpaceLimit, import the tree it names under an
// address-space limit instead of running the test.
const bombChildEnv = "VLP_SHARDING_BOMB_CHILD"

// bombAddressSpace is the child's RLIMIT_AS: room for the runtime and a
// normal import, not for the 6 GB the bomb's frame header asks for.
const bombAddressSpace = 2 << 30

// TestImportBombUnderAddressSpaceLimit imports a decompression bomb (a
// 600-byte JPEG whose header claims 65000×65000 pixels) in a child process
// whose address space is limited to 2 GiB. With the default limits the
// import finishes with the bomb skipped; with the limits lifted the same
// child dies of the bomb, so the limits are what kept it alive.
func TestImportBombUnderAddressSpaceLimit(t *testing.T) {
	if dir := os.Getenv(bombChildEnv); dir != "" {
		bombChild(t, dir)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("RLIMIT_AS is set the Linux way")
	}
	if raceEnabled {
		t.Skip("the race detector's shadow memory does not fit under the address-space limit")
	}
	h := newHandmade(t)
	h.picture("coco/train2017/1.jpg", 32, 24)
	bomb := bombJPEG(t, 65000, 65000)
	h.write("coco/train2017/2.jpg", bomb)
	h.cocoFiles(`{"id":1,"file_name":"1.jpg","width":32,"height":24},{"id":2,"file_name":"2.jpg","width":32,"height":24}`,
		`{"id":10,"image_id":1,"caption":"a picture"},{"id":20,"image_id":2,"caption":"a bomb"}`, "", "")
	t.Logf("bomb: %d bytes", len(bomb))

	child := func(mode string) (string, error) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestImportBombUnderAddressSpaceLimit$", "-test.count=1", "-test.v")
		cmd.Env = append(os.Environ(), bombChildEnv+"="+h.root, "VLP_SHARDING_BOMB_MODE="+mode)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	out, err := child("limits")
	if err != nil {
		t.Fatalf("the import under %d GiB with the default limits failed: %v\n%s", bombAddressSpace>>30, err, tail(out))
	}
	data, err := os.ReadFile(filepath.Join(h.root, "report.json"))
	if err != nil {
		t.Fatalf("the child wrote no report: %v\n%s", err, tail(out))
	}
	var rep Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	if err := rep.Balanced(); err != nil {
		t.Fatal(err)
	}
	wantSkips(t, &rep, UnitImage, map[string]int64{SkipImageTooLarge: 1})
	wantSkips(t, &rep, UnitCaption, map[string]int64{SkipImageTooLarge: 1})
	wantExample(t, &rep, UnitImage, SkipImageTooLarge, "coco_000000000002: image 65000×65000 exceeds 16384×16384")
	if got := keys(t, filepath.Join(h.root, "shards")); len(got) != 1 || got[0] != "coco_000000000001" {
		t.Fatalf("samples %v", got)
	}

	// The control: without the limits the bomb is decoded, and the same
	// address space is not enough.
	out, err = child("unlimited")
	if err == nil || !strings.Contains(out, "out of memory") {
		t.Fatalf("without limits the import of the bomb did not run out of memory (err %v):\n%s", err, tail(out))
	}
}

// bombChild runs in the re-executed test binary: it limits its own address
// space, imports dir/coco and writes the report to dir/report.json.
func bombChild(t *testing.T, dir string) {
	lim := &syscall.Rlimit{Cur: bombAddressSpace, Max: bombAddressSpace}
	if err := syscall.Setrlimit(syscall.RLIMIT_AS, lim); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	cfg := BuildConfig{COCODir: filepath.Join(dir, "coco"), Out: filepath.Join(dir, "shards"), ShardSize: 4, Workers: 1}
	if os.Getenv("VLP_SHARDING_BOMB_MODE") == "unlimited" {
		cfg.MaxImageSide, cfg.MaxImagePixels, cfg.DecodeMemory = 65535, 65535*65535, 1<<50
	}
	_, rep, err := Build(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "report.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(s string) string {
	if len(s) > 3000 {
		return "…" + s[len(s)-3000:]
	}
	return s
}
