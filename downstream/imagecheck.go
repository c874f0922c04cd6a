package downstream

import (
	"errors"
	"fmt"
	"image"
	_ "image/gif" // NLVR2's ".png" files are now and then GIFs or JPEGs
	_ "image/jpeg"
	_ "image/png"
	"io"
	"io/fs"
	"os"
)

// imageChecker checks each image file once: it exists, is a regular file
// no larger than Limits.MaxImageBytes, and its header declares an image of
// a known format within Limits.MaxImageSide and MaxImagePixels. The pixels
// are never decoded here: the input pipeline decodes them, under its own
// limits. Each distinct path is one item of unit in the report.
type imageChecker struct {
	lim  Limits
	rep  *Report
	unit string
	seen map[string]string // path → skip reason, "" when usable
}

func newImageChecker(lim Limits, rep *Report, unit string) *imageChecker {
	return &imageChecker{lim: lim, rep: rep, unit: unit, seen: map[string]string{}}
}

// check returns "" when the image at path is usable, else the reason it
// was skipped.
func (c *imageChecker) check(path string) string {
	if reason, ok := c.seen[path]; ok {
		return reason
	}
	reason, detail := c.inspect(path)
	c.seen[path] = reason
	c.rep.read(c.unit, 1)
	if reason == "" {
		c.rep.kept(c.unit, 1)
	} else {
		c.rep.skip(c.unit, reason, 1, path+": "+detail)
	}
	return reason
}

func (c *imageChecker) inspect(path string) (reason, detail string) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return SkipImageMissing, "no such file"
	}
	if err != nil {
		return SkipImageMissing, err.Error()
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SkipImageMissing, err.Error()
	}
	if !st.Mode().IsRegular() {
		return SkipImageMissing, "not a regular file"
	}
	if st.Size() > c.lim.MaxImageBytes {
		return SkipImageTooLarge, fmt.Sprintf("%d bytes, the limit is %d", st.Size(), c.lim.MaxImageBytes)
	}
	cfg, format, err := image.DecodeConfig(io.LimitReader(f, c.lim.MaxImageBytes))
	if err != nil {
		return SkipImageCorrupt, err.Error()
	}
	if cfg.Width < 1 || cfg.Height < 1 || cfg.Width > c.lim.MaxImageSide || cfg.Height > c.lim.MaxImageSide ||
		int64(cfg.Width)*int64(cfg.Height) > c.lim.MaxImagePixels {
		return SkipImageTooLarge, fmt.Sprintf("%s of %d x %d pixels, outside the limits (side %d, %d pixels)",
			format, cfg.Width, cfg.Height, c.lim.MaxImageSide, c.lim.MaxImagePixels)
	}
	return "", ""
}
