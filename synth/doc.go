// Package synth generates the "shapes" world: small images of 1–4 coloured
// shapes on a light background, with captions, region descriptions, boxes,
// classes and attributes that describe exactly what is drawn.
//
// # Basics
//
// Everything is a pure function of (Config.Seed, image index): Scene(cfg, i)
// returns the same pixels and the same annotations on every machine and in
// every run (integer PCG streams; floating-point products are rounded
// explicitly, so no CPU's fused multiply-add changes a pixel), and images can
// be generated in any order or in parallel. The
// world is tiny on purpose: six classes (ClassNames), six colours and two
// sizes (AttributeNames). Colour and class are drawn independently, so a
// colour word can only be recovered from the pixels; that is what makes the
// masked-language and image-text-matching tasks need both modalities.
//
// Captions use a few templates: single-object descriptions ("a small red
// circle"), spatial relations computed from the boxes ("a small red circle
// left of a large blue square"), absolute positions ("a large green star in
// the top left") and counts ("two shapes: …"). Region descriptions name one
// object ("a large blue square") or a pair (with the union box).
//
// Export writes the world in the real COCO 2017 and Visual Genome 1.4 file
// formats, with a chosen fraction of the images in both datasets (joined by
// coco_id, as in the real data), so the importer in package sharding is
// exercised on exactly the files it reads in production. VG object names and
// attributes are now and then capitalised, pluralised or padded, as VG
// annotators write them, so the importer's normalisation is exercised too.
// For scale runs Export pads annotations to the real per-image counts and
// hard-links a small pool of JPEGs (ExportConfig).
//
// # Caveats
//
// Shapes never overlap, so every object is fully visible and the pixel at its
// box centre has its colour. JPEG at the default quality keeps the six
// colours apart; very low qualities do not.
package synth
