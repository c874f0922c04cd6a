// Package train is the training engine of E2E-VLP: the one place where a job spec becomes a model
// under training, used alike by `vlp train --local`, the workers of `vlp train` and
// `vlp worker join`.
//
//   - job.go: a job spec, typed and validated (Resolve): the preset, dropout, precision, the
//     optimiser's hyper-parameters, the schedule and the options; a field the model cannot honour
//     or an unknown option is an error naming it, never ignored.
//   - learner.go: Learner, the worker.Learner of E2E-VLP. It owns the model, AdamW with the
//     backbone's own parameter group, the schedule, clipping, bf16 autocast and the dropout
//     generator, and runs all its LibTorch work on one locked OS thread.
//   - buckets.go: the gradients in one flat buffer cut into buckets (torch.Buckets) whose
//     all-reduce the worker starts while backward still runs (worker.OverlapLearner).
//   - prefetch.go: batches built on a goroutine of their own while the current step computes.
//   - examples.go: where a job's pairs come from — the synthetic world or shards.
//   - task*.go: fine-tuning (a job spec's task: vqa, nlvr2, caption, retrieval). task.go names
//     the tasks and their learning rates; task_records.go numbers a records file's examples so
//     that work units cut them like pairs; task_examples.go makes their batches; task_forward.go
//     is each task's forward pass and loss in place of pretraining's; task_learner.go plugs them
//     into Learner with the task's head; task_init.go reads the pretraining checkpoint a job
//     starts from (init_from); task_predict.go runs a fine-tuned model on held-out records.
//
// The worker (package worker) knows nothing of LibTorch: it drives a Learner through the step
// protocol and moves bytes; this package is where tensors are.
package train
