// Package model is E2E-VLP (Xu et al., ACL 2021) in Go on the torch binding.
//
// # Reading order
//
// The package reads bottom-up, one concept per file, in the manner of DETR:
//
//   - config.go: Config, its defaults with their reasons, the presets.
//   - boxops.go: pure float64 box maths (cxcywh↔xyxy, IoU, GIoU).
//   - hungarian.go: exact O(n²m) linear assignment for rectangular costs.
//   - params.go, nn.go: named parameters (host-initialised from a seed) and
//     the building blocks (linear, LayerNorm, fused attention, FFN).
//   - backbone.go, position.go: ResNet to C5, 2-D sine positions.
//   - text.go, encoder.go, heads.go: the single-stream encoder and its MLM / ITM heads.
//   - decoder.go: the detection decoder (learned queries) and the caption decoder.
//   - model.go, inputs.go: the assembled model and BatchToTensors.
//   - matcher.go, criterion.go: bipartite matching (no gradient) and the losses by name.
//   - postprocess.go, eval_ap.go: detections in pixels, greedy captions, ITM scores, AP50.
//   - beam.go: captions by beam search.
//   - task_heads.go, vqa.go, nlvr2.go, caption_task.go, retrieval.go,
//     init_from.go: the fine-tuning tasks' heads and losses, and
//     initialisation from a pretraining checkpoint.
//   - schedule.go, train.go: TrainStep (what a worker calls), and a Trainer
//     (AdamW with a lower backbone lr, warm-up + cosine decay, clipping).
//   - statedict.go, weights.go: torchvision ResNet weights from a .pth file, read in pure Go.
//   - describe.go: layers and parameter counts of a Config without building it.
//
// reference/e2evlp.py is the same model in PyTorch; the parity test checks
// that both give the same losses and gradients.
//
// # Caveats
//
// Every tensor made in a forward pass lives in the caller's *torch.Scope;
// parameters are owned by the Model and freed by Model.Close. The matcher
// copies its inputs to the host: with the loss read, one of the two host
// syncs of a training step. Shapes of intermediate (non-leaf) tensors are
// never read: they are known from the Config and the batch.
package model
