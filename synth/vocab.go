package synth

import "image/color"

// ClassNames are the shape classes, in class-index order.
var ClassNames = []string{"circle", "square", "triangle", "star", "diamond", "cross"}

// ColourNames are the colour attributes, in the order of Palette.
var ColourNames = []string{"red", "green", "blue", "yellow", "purple", "orange"}

// SizeNames are the size attributes.
var SizeNames = []string{"small", "large"}

// AttributeNames are every attribute: the colours, then the sizes.
var AttributeNames = append(append([]string{}, ColourNames...), SizeNames...)

// Palette holds the RGB of each colour in ColourNames. The colours are far
// apart in RGB so that they survive JPEG compression and resizing.
var Palette = []color.RGBA{
	{R: 220, G: 30, B: 30, A: 255},  // red
	{R: 30, G: 170, B: 50, A: 255},  // green
	{R: 30, G: 70, B: 220, A: 255},  // blue
	{R: 235, G: 215, B: 20, A: 255}, // yellow
	{R: 140, G: 40, B: 170, A: 255}, // purple
	{R: 250, G: 130, B: 10, A: 255}, // orange
}

// ClassIndex returns the index of name in ClassNames, or -1.
func ClassIndex(name string) int { return indexOf(ClassNames, name) }

// AttributeIndex returns the index of name in AttributeNames, or -1.
func AttributeIndex(name string) int { return indexOf(AttributeNames, name) }

func indexOf(list []string, name string) int {
	for i, s := range list {
		if s == name {
			return i
		}
	}
	return -1
}
