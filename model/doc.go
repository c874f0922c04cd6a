// Package model is E2E-VLP (Xu et al., ACL 2021) in Go on the torch binding.
//
// # Reading order
//
// The package reads bottom-up, one concept per file, in the manner of DETR:
//
//   - config.go: Config, its defaults with their reasons, the presets.
//   - boxops.go: pure float64 box maths (cxcywh↔xyxy, IoU, GIoU).
//   - hungarian.go: exact O(n³) linear assignment for rectangular costs.
//   - backbone.go, position.go: ResNet to C5, 1×1 projection, 2-D sine positions.
//   - text.go, encoder.go, heads.go: the single-stream encoder and its MLM / ITM heads.
//   - decoder.go: the detection decoder (learned queries) and the caption decoder.
//   - matcher.go, criterion.go: bipartite matching (no gradient) and the losses by name.
//   - postprocess.go, eval_ap.go: detections in pixels, greedy captions, ITM scores, AP50.
//   - model.go: the assembled model and BatchToTensors.
//   - train.go: one training step, and a Trainer (AdamW, schedule, clipping).
//   - weights.go: torchvision ResNet weights from a .pth file, read in pure Go.
//
// # Caveats
//
// Every tensor made in a forward pass lives in the caller's *torch.Scope;
// parameters are owned by the Model and freed by Model.Close. The matcher
// copies its costs to the host: it is the one host sync of a training step
// besides reading the loss.
package model
