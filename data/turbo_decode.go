package data

import (
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/ebitengine/purego"
)

// ErrNoTurboJPEG: libturbojpeg could not be loaded.
var ErrNoTurboJPEG = errors.New("data: libturbojpeg not available")

// TurboLibNames are the names LoadTurboDecoder tries, in order, after
// $VLP_TURBOJPEG_LIB: Debian's libturbojpeg0 package, then the unversioned
// development link.
var TurboLibNames = []string{"libturbojpeg.so.0", "libturbojpeg.so"}

// TurboJPEG constants (turbojpeg.h, libjpeg-turbo 2.x).
const (
	tjpfRGB         = 0
	tjflagFastDCT   = 2048
	tjMaxHandlePool = 64
)

type tjScalingFactor struct{ num, denom int32 }

// TurboDecoder decodes with libjpeg-turbo's TurboJPEG API, loaded at run
// time (no cgo, no link-time dependency): the binary runs where the library
// is absent and falls back to GoDecoder. When the target size is at most
// half the source in both dimensions, it decodes straight to a smaller size
// in the DCT domain (scale 1/2, 1/4 or 1/8; the largest reduction that still
// leaves at least the target), which skips most of the IDCT and colour
// conversion work. TurboJPEG handles are not thread-safe; the decoder keeps
// a free list of them, so it is safe for concurrent use.
type TurboDecoder struct {
	lib uintptr

	initDecompress   func() uintptr
	decompressHeader func(h uintptr, buf *byte, size uint64, w, ht, subsamp, colorspace *int32) int32
	decompress       func(h uintptr, buf *byte, size uint64, dst *byte, w, pitch, ht, pixfmt, flags int32) int32
	errorStr         func(h uintptr) string
	destroy          func(h uintptr) int32

	// FastDCT selects libjpeg-turbo's fast integer IDCT (slightly less exact).
	FastDCT bool
	// NoScale disables DCT-domain downscaling (for measurements).
	NoScale bool

	mu      sync.Mutex
	handles []uintptr
	closed  bool
}

var _ Decoder = (*TurboDecoder)(nil)

// LoadTurboDecoder loads libturbojpeg from path, or when path is empty from
// $VLP_TURBOJPEG_LIB or TurboLibNames. The error wraps ErrNoTurboJPEG.
func LoadTurboDecoder(path string) (*TurboDecoder, error) {
	names := TurboLibNames
	if path == "" {
		path = os.Getenv("VLP_TURBOJPEG_LIB")
	}
	if path != "" {
		names = []string{path}
	}
	var lib uintptr
	var errs []error
	for _, n := range names {
		h, err := purego.Dlopen(n, purego.RTLD_NOW|purego.RTLD_LOCAL)
		if err == nil {
			lib = h
			break
		}
		errs = append(errs, err)
	}
	if lib == 0 {
		return nil, fmt.Errorf("%w: %w", ErrNoTurboJPEG, errors.Join(errs...))
	}
	d := &TurboDecoder{lib: lib}
	for _, f := range []struct {
		ptr  any
		name string
	}{
		{&d.initDecompress, "tjInitDecompress"},
		{&d.decompressHeader, "tjDecompressHeader3"},
		{&d.decompress, "tjDecompress2"},
		{&d.errorStr, "tjGetErrorStr2"},
		{&d.destroy, "tjDestroy"},
	} {
		if _, err := purego.Dlsym(lib, f.name); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoTurboJPEG, f.name, err)
		}
		purego.RegisterLibFunc(f.ptr, lib, f.name)
	}
	return d, nil
}

// NewDecoder returns the fastest decoder available: libjpeg-turbo when it
// loads, else image/jpeg.
func NewDecoder() Decoder {
	if d, err := LoadTurboDecoder(""); err == nil {
		return d
	}
	return GoDecoder{}
}

// Name implements Decoder.
func (d *TurboDecoder) Name() string { return "libjpeg-turbo" }

func (d *TurboDecoder) handle() (uintptr, error) {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return 0, fmt.Errorf("%w: decoder closed", ErrNoTurboJPEG)
	}
	if n := len(d.handles); n > 0 {
		h := d.handles[n-1]
		d.handles = d.handles[:n-1]
		d.mu.Unlock()
		return h, nil
	}
	d.mu.Unlock()
	h := d.initDecompress()
	if h == 0 {
		return 0, fmt.Errorf("%w: tjInitDecompress failed", ErrNoTurboJPEG)
	}
	return h, nil
}

func (d *TurboDecoder) release(h uintptr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || len(d.handles) >= tjMaxHandlePool {
		d.destroy(h)
		return
	}
	d.handles = append(d.handles, h)
}

// Close frees the cached handles; decoding after Close fails.
func (d *TurboDecoder) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.handles {
		d.destroy(h)
	}
	d.handles, d.closed = nil, true
	return nil
}

// scaleFor returns the DCT scaling denominator (1, 2, 4 or 8) for decoding
// a w×h image that will be resized to tw×th: the largest that keeps both
// scaled sides at least the target. Scaling only applies from a factor of 2.
func scaleFor(w, h, tw, th int) int {
	for _, den := range []int{8, 4, 2} {
		sw, sh := (w+den-1)/den, (h+den-1)/den
		if sw >= tw && sh >= th {
			return den
		}
	}
	return 1
}

// Decode implements Decoder.
func (d *TurboDecoder) Decode(src []byte, target TargetFunc) (*RGB, error) {
	if len(src) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrCorruptImage)
	}
	h, err := d.handle()
	if err != nil {
		return nil, err
	}
	defer d.release(h)
	var w, ht, ss, cs int32
	if d.decompressHeader(h, &src[0], uint64(len(src)), &w, &ht, &ss, &cs) != 0 {
		return nil, fmt.Errorf("%w: %s", ErrCorruptImage, d.errorStr(h))
	}
	if w <= 0 || ht <= 0 || int64(w)*int64(ht) > 1<<28 {
		return nil, fmt.Errorf("%w: size %dx%d", ErrCorruptImage, w, ht)
	}
	den := 1
	if target != nil && !d.NoScale {
		tw, th := target(int(w), int(ht))
		den = scaleFor(int(w), int(ht), tw, th)
	}
	ow, oh := (int(w)+den-1)/den, (int(ht)+den-1)/den
	out := &RGB{W: ow, H: oh, Pix: getBytes(ow * oh * 3)}
	var flags int32
	if d.FastDCT {
		flags |= tjflagFastDCT
	}
	// Asking for ow×oh makes TurboJPEG pick the 1/den scaling factor.
	if d.decompress(h, &src[0], uint64(len(src)), &out.Pix[0], int32(ow), int32(ow*3), int32(oh), tjpfRGB, flags) != 0 {
		putBytes(out.Pix)
		return nil, fmt.Errorf("%w: %s", ErrCorruptImage, d.errorStr(h))
	}
	return out, nil
}
