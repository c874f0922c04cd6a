package sharding

import (
	"bytes"
	"image"
	"image/jpeg"
	"strings"
	"testing"
	"time"
)

// TestJPEGHeader: the header gives the size image/jpeg reads, for real
// files of several shapes and kinds, and says what is wrong with bad ones.
func TestJPEGHeader(t *testing.T) {
	gray := func(w, h int) []byte {
		var buf bytes.Buffer
		if err := jpeg.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h)), nil); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	for _, data := range [][]byte{testJPEG(t, 1, 1), testJPEG(t, 33, 17), testJPEG(t, 640, 480), gray(7, 300)} {
		info, err := jpegHeader(data)
		cfg, cerr := jpeg.DecodeConfig(bytes.NewReader(data))
		if err != nil || cerr != nil || info.Width != cfg.Width || info.Height != cfg.Height {
			t.Fatalf("header %+v (%v), image/jpeg %dx%d (%v)", info, err, cfg.Width, cfg.Height, cerr)
		}
	}
	if info, err := jpegHeader(bombJPEG(t, 65000, 64999)); err != nil || info.Width != 65000 || info.Height != 64999 || info.Components != 3 {
		t.Fatalf("bomb header %+v, %v", info, err)
	}
	sof := func(marker byte) []byte {
		d := testJPEG(t, 8, 8)
		d[bytes.Index(d, []byte{0xff, 0xc0})+1] = marker
		return d
	}
	zero := testJPEG(t, 8, 8)
	i := bytes.Index(zero, []byte{0xff, 0xc0})
	zero[i+7], zero[i+8] = 0, 0
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"empty", nil, "not a JPEG"},
		{"png", []byte("\x89PNG\r\n\x1a\n"), "not a JPEG"},
		{"truncated", testJPEG(t, 8, 8)[:20], "truncated before the frame header"},
		{"lossless", sof(0xc3), "unsupported marker 0xc3"},
		{"zero width", zero, "image is 0×8"},
		{"end first", []byte{0xff, 0xd8, 0xff, 0xd9}, "end of image before a frame header"},
		{"scan first", []byte{0xff, 0xd8, 0xff, 0xda, 0x00, 0x02}, "scan before the frame header"},
		{"short segment", []byte{0xff, 0xd8, 0xff, 0xe0, 0x00, 0x01}, "short segment length"},
	}
	for _, tt := range tests {
		if _, err := jpegHeader(tt.data); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	// A progressive header is read as such (its decode needs more memory).
	if info, err := jpegHeader(sof(0xc2)); err != nil || !info.Progressive {
		t.Fatalf("progressive: %+v, %v", info, err)
	}
}

// TestDecodeBudget: decodes wait for memory, in turn, and a request larger
// than the whole budget is refused at once.
func TestDecodeBudget(t *testing.T) {
	b := newDecodeBudget(100)
	if !b.acquire(60) {
		t.Fatal("60 of 100 refused")
	}
	if b.acquire(101) {
		t.Fatal("101 of 100 granted")
	}
	got := make(chan bool)
	go func() { got <- b.acquire(50) }()
	select {
	case <-got:
		t.Fatal("50 granted while only 40 are free")
	case <-time.After(50 * time.Millisecond):
	}
	b.release(60)
	select {
	case ok := <-got:
		if !ok {
			t.Fatal("50 refused")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("50 still waiting after a release")
	}
	if b.free != 50 {
		t.Fatalf("%d free, want 50", b.free)
	}
}

// TestMaxDecodeCostBoundsEveryAllowedImage: the budget the config is
// validated against holds any image the limits let through.
func TestMaxDecodeCostBoundsEveryAllowedImage(t *testing.T) {
	const side, pixels = 1000, 200000
	bound := maxDecodeCost(side, pixels)
	for _, wh := range [][2]int{{1000, 200}, {200, 1000}, {447, 447}, {1, 1000}, {1000, 1}} {
		if c := decodeCost(wh[0], wh[1], 4, true); c > bound {
			t.Fatalf("%dx%d costs %d, bound %d", wh[0], wh[1], c, bound)
		}
	}
}
