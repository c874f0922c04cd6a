// Package eval measures a trained E2E-VLP model the way papers and users
// do, and evaluates a checkpoint on held-out data.
//
// # Metrics
//
// Each metric is a pure function of predictions and ground truth, with no
// LibTorch, in a file of its own:
//
//   - coco_ap.go: object detection with pycocotools' COCOeval semantics
//     (boxes): AP over IoU .50:.05:.95, AP50, AP75, AP by area (small <
//     32², medium, large > 96² pixels²), AR with 1, 10 and 100 detections,
//     101-point interpolated precision, crowds as pycocotools treats them.
//   - attributes.go: attribute accuracy on the boxes matched at IoU .50.
//   - tokens.go, bleu.go, cider.go: captioning, coco-caption's corpus
//     BLEU-1…4 and CIDEr-D on one stated tokenisation (CaptionTokens).
//   - retrieval.go: image→text and text→image recall at 1, 5, 10 from an
//     N×N matrix of ITM scores, or N images × M texts with each text's
//     image (several sentences an image, the 1K / 5K test protocol).
//
// METEOR and SPICE are not here: coco-caption runs them as Java programs
// (SPICE with a Stanford CoreNLP parser); none is on these machines.
//
// # Evaluating a checkpoint
//
// RestoreParams loads a checkpoint's parameters into a model built with
// the job's configuration; SynthSet (a fresh synthetic world, seeded apart
// from the training world) or ShardSet (held-out shards) is the data; and
// Evaluate runs the model over it in batches: colour words masked for
// MLM (one per text, then every one at once), half the texts mismatched for ITM, detections and captions
// (greedy, and by beam search) from the image alone, and the N² pairs of
// retrieval. The Report prints as a table (WriteTable), as JSON
// (WriteReport) and as scalars (Report.Scalars); its Predictions are
// written in the formats the standard tools read (coco_files.go), so any
// number can be checked with pycocotools or coco-caption.
//
// # Caveats
//
//   - Retrieval costs N² forward passes of the whole model: the
//     single-stream encoder must see every image with every text.
//   - Detections are every decoder query (at most 100 per image for the
//     presets), scored by the most probable real class; boxes and areas are
//     in pixels of the original image.
//   - The tokenisation is BERT's basic tokenizer with punctuation dropped,
//     not Stanford's PTB tokenizer: the two differ on clitics.
//
// docs/eval.md gives each metric's definition and its test oracle.
package eval
