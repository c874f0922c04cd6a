package sharding

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"sync"
)

// Decompression bombs. A JPEG of a few hundred bytes can claim 65535×65535
// pixels in its frame header, and image/jpeg allocates the whole picture
// (and, for a progressive file, four bytes per sample more) before it
// reads any pixel data. So the header is read first, by jpegHeader, and
// the dimensions and pixel count are checked against limits; then every
// decode takes its worst-case memory from a budget shared by the writers,
// so the importer's memory is bounded by its configuration, whatever the
// input.

// jpegInfo is what a JPEG's frame header (SOFn) says.
type jpegInfo struct {
	Width, Height int
	Components    int  // 1 (grey), 3 (YCbCr or RGB) or 4 (CMYK or YCbCrK)
	Progressive   bool // SOF2: coefficients of every scan are kept while decoding
}

// jpegHeader reads the markers of a JPEG up to its frame header, the way
// image/jpeg does (fill bytes, extraneous data between segments and
// restart markers are tolerated alike), so that the size it returns is the
// size image/jpeg would allocate.
func jpegHeader(data []byte) (jpegInfo, error) {
	if len(data) < 2 || data[0] != 0xff || data[1] != 0xd8 {
		return jpegInfo{}, errors.New("not a JPEG (no start-of-image marker)")
	}
	p := 2
	short := errors.New("truncated before the frame header")
	for {
		if p+2 > len(data) {
			return jpegInfo{}, short
		}
		t0, t1 := data[p], data[p+1]
		p += 2
		for t0 != 0xff { // extraneous data: image/jpeg skips it
			if p >= len(data) {
				return jpegInfo{}, short
			}
			t0, t1 = t1, data[p]
			p++
		}
		marker := t1
		if marker == 0 {
			continue // "\xff\x00" is extraneous data too
		}
		for marker == 0xff { // fill bytes
			if p >= len(data) {
				return jpegInfo{}, short
			}
			marker = data[p]
			p++
		}
		switch {
		case marker == 0xd9:
			return jpegInfo{}, errors.New("end of image before a frame header")
		case 0xd0 <= marker && marker <= 0xd7:
			continue // restart markers have no length
		}
		if p+2 > len(data) {
			return jpegInfo{}, short
		}
		n := int(data[p])<<8 | int(data[p+1]) - 2
		p += 2
		if n < 0 {
			return jpegInfo{}, errors.New("short segment length")
		}
		switch {
		case marker == 0xc0 || marker == 0xc1 || marker == 0xc2:
			if p+6 > len(data) {
				return jpegInfo{}, short
			}
			info := jpegInfo{
				Height:      int(data[p+1])<<8 | int(data[p+2]),
				Width:       int(data[p+3])<<8 | int(data[p+4]),
				Components:  int(data[p+5]),
				Progressive: marker == 0xc2,
			}
			switch {
			case data[p] != 8:
				return jpegInfo{}, fmt.Errorf("unsupported precision %d bits", data[p])
			case info.Components != 1 && info.Components != 3 && info.Components != 4:
				return jpegInfo{}, fmt.Errorf("unsupported number of components %d", info.Components)
			case n != 6+3*info.Components:
				return jpegInfo{}, errors.New("frame header has the wrong length")
			case info.Width == 0 || info.Height == 0:
				return jpegInfo{}, fmt.Errorf("image is %d×%d", info.Width, info.Height)
			}
			return info, nil
		case marker == 0xda:
			return jpegInfo{}, errors.New("scan before the frame header")
		case marker == 0xc4 || marker == 0xdb || marker == 0xdd || marker == 0xfe || 0xe0 <= marker && marker <= 0xef:
			p += n // tables, restart interval, comments, APPn: skipped
		case marker < 0xc0:
			return jpegInfo{}, fmt.Errorf("unknown marker 0x%02x", marker)
		default:
			return jpegInfo{}, fmt.Errorf("unsupported marker 0x%02x (a coding image/jpeg does not decode)", marker)
		}
	}
}

// decodeCost is an upper bound of what image/jpeg allocates to decode an
// image: every component at full resolution padded to whole 32-pixel MCUs,
// a 4-byte-per-pixel RGBA copy for RGB and CMYK files, and for progressive
// files the int32 coefficients of every sample.
func decodeCost(w, h, comps int, progressive bool) int64 {
	px := int64(w+32) * int64(h+32)
	perPx := int64(comps + 4)
	if progressive {
		perPx += 4 * int64(comps)
	}
	return px * perPx
}

// maxDecodeCost bounds decodeCost over every image the limits let through.
func maxDecodeCost(maxSide int, maxPixels int64) int64 {
	// (w+32)(h+32) = wh + 32(w+h) + 1024 with wh <= maxPixels, w, h <= maxSide.
	px := maxPixels + 64*int64(maxSide) + 1024
	return px * (4 + 4 + 16)
}

// checkImage reads the header of a JPEG and checks it against the limits.
// reason is SkipImageCorrupt or SkipImageTooLarge when it fails.
func checkImage(data []byte, maxSide int, maxPixels int64) (info jpegInfo, reason string, err error) {
	info, err = jpegHeader(data)
	if err != nil {
		return info, SkipImageCorrupt, err
	}
	if info.Width > maxSide || info.Height > maxSide {
		return info, SkipImageTooLarge, fmt.Errorf("image %d×%d exceeds %d×%d", info.Width, info.Height, maxSide, maxSide)
	}
	if px := int64(info.Width) * int64(info.Height); px > maxPixels {
		return info, SkipImageTooLarge, fmt.Errorf("image %d×%d (%d pixels) exceeds the %d-pixel limit", info.Width, info.Height, px, maxPixels)
	}
	return info, "", nil
}

// decodeBudget bounds the memory that image decodes hold at once. Requests
// are served in order, so a large one is not starved by small ones.
type decodeBudget struct {
	turn sync.Mutex // held by the request being served
	mu   sync.Mutex
	cond *sync.Cond
	free int64
	size int64
}

func newDecodeBudget(size int64) *decodeBudget {
	b := &decodeBudget{free: size, size: size}
	b.cond = sync.NewCond(&b.mu)
	return b
}

// acquire waits until n bytes are free and takes them; false (at once)
// when n exceeds the whole budget.
func (b *decodeBudget) acquire(n int64) bool {
	if n > b.size {
		return false
	}
	b.turn.Lock()
	defer b.turn.Unlock()
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.free < n {
		b.cond.Wait()
	}
	b.free -= n
	return true
}

func (b *decodeBudget) release(n int64) {
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.cond.Broadcast()
}

// decodeJPEG checks the header against the limits, then decodes the whole
// image within the budget (a full decode is what proves the file sound).
func decodeJPEG(data []byte, maxSide int, maxPixels int64, budget *decodeBudget) (image.Rectangle, string, error) {
	info, reason, err := checkImage(data, maxSide, maxPixels)
	if err != nil {
		return image.Rectangle{}, reason, err
	}
	cost := decodeCost(info.Width, info.Height, info.Components, info.Progressive)
	if budget != nil {
		if !budget.acquire(cost) {
			return image.Rectangle{}, SkipImageTooLarge, fmt.Errorf("decoding %d×%d needs %d MiB, more than the %d MiB decode budget", info.Width, info.Height, cost>>20, budget.size>>20)
		}
		defer budget.release(cost)
	}
	img, err := jpeg.Decode(bytes.NewReader(data))
	if err != nil {
		return image.Rectangle{}, SkipImageCorrupt, err
	}
	return img.Bounds(), "", nil
}
