package sharding

import "fmt"

// Dataset-wide ids. An image id and a pair id are 64-bit: the top bits name
// the dataset (IDSpaceCOCO or IDSpaceVG) and the low 40 bits are the id the
// source dataset itself uses. So an id never depends on shard size, worker
// count, import order or what else was imported, and the same caption keeps
// the same pair id in every import (see docs/data.md).
//
//	image id = space<<40 | coco image id  (COCO images, including those also in VG)
//	         = space<<40 | vg image id    (VG-only images)
//	pair id  = space<<40 | coco caption annotation id
//	         = space<<40 | vg region_id
const (
	IDSpaceCOCO = 1
	IDSpaceVG   = 2
	idShift     = 40
	idLowMask   = 1<<idShift - 1
)

// MakeID builds the dataset-wide id of local id n in space.
func MakeID(space int, n uint64) (uint64, error) {
	if n > idLowMask {
		return 0, fmt.Errorf("sharding: id %d does not fit in %d bits", n, idShift)
	}
	return uint64(space)<<idShift | n, nil
}

// SplitID returns the space and the source dataset's own id.
func SplitID(id uint64) (space int, n uint64) {
	return int(id >> idShift), id & idLowMask
}

// SampleKey is the tar member stem of an image: "coco_%012d" by COCO id for
// COCO images (shared ones too), "vg_%012d" by VG id for VG-only images.
func SampleKey(imageID uint64) string {
	space, n := SplitID(imageID)
	if space == IDSpaceCOCO {
		return fmt.Sprintf("coco_%012d", n)
	}
	return fmt.Sprintf("vg_%012d", n)
}
