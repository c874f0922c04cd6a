package synth

import (
	"image"
	"image/color"
	"math/rand/v2"
)

// Picture is one generated image with everything that describes it.
type Picture struct {
	Index    int         // image index in the world, 0..Images-1
	Image    *image.RGBA // Width x Height pixels
	Objects  []Object    // the shapes, in drawing order; they never overlap
	Captions []string    // whole-image captions (Config.Captions of them)
	Regions  []Region    // one per object, then one per ordered pair
}

// Object is one drawn shape.
type Object struct {
	Class  string          // one of ClassNames
	Colour string          // one of ColourNames
	Size   string          // one of SizeNames
	Box    image.Rectangle // tight box of the painted pixels; Max is exclusive
}

// Phrase returns "a <size> <colour> <class>", e.g. "a small red circle".
func (o Object) Phrase() string { return "a " + o.Size + " " + o.Colour + " " + o.Class }

// Attributes returns the object's attribute names: colour, then size.
func (o Object) Attributes() []string { return []string{o.Colour, o.Size} }

// Region is a described part of the image, in Visual Genome's sense.
type Region struct {
	Text string
	Box  image.Rectangle // pixels; Max is exclusive
}

// sizeFrac is the side of a shape's square as a fraction of the shorter
// image side, [min, max) per size; the gap keeps small and large apart.
var sizeFrac = [2][2]float64{{0.16, 0.22}, {0.32, 0.42}}

// Scene generates image i of the world described by cfg. It is a pure
// function of (cfg, i): the same arguments give the same pixels and words.
// cfg should pass Validate; zero fields take their defaults.
func Scene(cfg Config, i int) Picture {
	cfg = cfg.WithDefaults()
	rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)^0x9e3779b97f4a7c15))
	w, h := cfg.Width, cfg.Height
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	paintBackground(img, rng, cfg)

	n := cfg.MinObjects + rng.IntN(cfg.MaxObjects-cfg.MinObjects+1)
	short := min(w, h)
	var placed []image.Rectangle
	var objs []Object
	for k := 0; k < n; k++ {
		cls, col, sz := rng.IntN(len(ClassNames)), rng.IntN(len(ColourNames)), rng.IntN(len(SizeNames))
		f := sizeFrac[sz][0] + float64(rng.Float64()*(sizeFrac[sz][1]-sizeFrac[sz][0]))
		side := max(8, int(f*float64(short)))
		cell, ok := place(rng, w, h, side, placed)
		if !ok {
			continue // no room left: fewer shapes rather than overlapping ones
		}
		placed = append(placed, cell)
		box := drawShape(img, ClassNames[cls], Palette[col], cell)
		objs = append(objs, Object{Class: ClassNames[cls], Colour: ColourNames[col], Size: SizeNames[sz], Box: box})
	}
	return Picture{
		Index:    i,
		Image:    img,
		Objects:  objs,
		Captions: captions(rng, objs, w, h, cfg.Captions),
		Regions:  regions(objs),
	}
}

// place finds a side x side cell inside the image that keeps a margin of 3
// pixels from every placed cell.
func place(rng *rand.Rand, w, h, side int, placed []image.Rectangle) (image.Rectangle, bool) {
	const margin = 3
	if side+2 > w || side+2 > h {
		return image.Rectangle{}, false
	}
	for try := 0; try < 64; try++ {
		x := 1 + rng.IntN(w-side-1)
		y := 1 + rng.IntN(h-side-1)
		r := image.Rect(x, y, x+side, y+side)
		grown := image.Rect(r.Min.X-margin, r.Min.Y-margin, r.Max.X+margin, r.Max.Y+margin)
		free := true
		for _, p := range placed {
			if grown.Overlaps(p) {
				free = false
				break
			}
		}
		if free {
			return r, true
		}
	}
	return image.Rectangle{}, false
}

// paintBackground fills img with a light, slightly tinted grey plus a little
// per-pixel noise (cfg.Texture), kept far from every palette colour.
func paintBackground(img *image.RGBA, rng *rand.Rand, cfg Config) {
	base := 200 + rng.IntN(30)
	tint := [3]int{rng.IntN(13) - 6, rng.IntN(13) - 6, rng.IntN(13) - 6}
	salt := rng.Uint64()
	amp := max(cfg.Texture, 0)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			noise := 0
			if amp > 0 {
				noise = int(mix(salt^uint64(y)<<32^uint64(x))%uint64(2*amp+1)) - amp
			}
			off := img.PixOffset(x, y)
			for c := 0; c < 3; c++ {
				img.Pix[off+c] = clamp8(base + tint[c] + noise)
			}
			img.Pix[off+3] = 255
		}
	}
}

// mix is splitmix64's finaliser: a cheap, well-spread hash.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func clamp8(v int) uint8 {
	return uint8(min(255, max(0, v)))
}

// blend mixes c over the pixel at (x, y) with coverage a in [0, 1].
func blend(img *image.RGBA, x, y int, c color.RGBA, a float64) {
	off := img.PixOffset(x, y)
	src := [3]uint8{c.R, c.G, c.B}
	for k := 0; k < 3; k++ {
		v := float64(float64(img.Pix[off+k])*(1-a)) + float64(float64(src[k])*a)
		img.Pix[off+k] = uint8(v + 0.5)
	}
}
