// Package torch is vlp's binding to LibTorch: tensors, the ops the E2E-VLP model and its
// training need, autograd, AdamW, and the flat buffers the all-reduce and checkpoints move.
//
// # Basics
//
// The package talks to LibTorch through libvlptorch.so, a small C ABI shim built from
// torch/csrc by `make lib`. The Go binary does not link it: Load opens it at run time (the
// --torch-lib flag or $VLP_TORCH_LIB, and only that file when one is named; else next to the
// binary, ./build/lib), so commands that need no tensors run on machines without LibTorch. Load
// checks the library's ABI (vlp_abi: its version and op-table sizes) before anything else and
// refuses one built from other sources. Call Load once at start; before it, ops carry
// ErrNotLoaded. CheckDevice then says whether LibTorch can drive the device asked for.
//
//	if err := torch.Load(c.String("torch-lib")); err != nil { … }
//	s := torch.NewScope()
//	defer s.Close()
//	x := torch.FromFloat32(s, data, []int64{2, 3}, torch.CPU)
//	y := torch.Linear(x, s.Use(w), s.Use(b)).Relu()  // [2, out]
//	loss := torch.CrossEntropy(y, target, nil, torch.IgnoreNone, torch.ReduceMean)
//	if err := loss.Backward(); err != nil { … }      // also reports any earlier op's error
//
// # Ownership
//
// Native memory is never left to Go's garbage collector: CUDA memory in particular must be
// freed at a known point. Every tensor has exactly one owner:
//
//   - a Scope: results of ops on scoped inputs join the youngest of their scopes, and
//     Scope.Close frees them all in one call. A training step opens one scope and closes it at
//     the end, so temporaries cannot outlive the step.
//   - the caller: tensors made with a nil scope, or taken out of a scope by Keep, and results
//     of ops whose inputs are all owned. Parameters and optimizer state live like this; the
//     caller calls Close.
//
// Scope.Use lends an owned tensor to a scope as a view that the scope never frees, so model
// code can combine parameters and step temporaries freely. LiveTensors counts the native
// handles alive, which is how the tests prove a loop leaks nothing. A finalizer on owned tensors
// and scopes only logs a warning when one is collected unclosed.
//
// # Errors
//
// Ops return *Tensor, never (*Tensor, error). A Tensor carries a sticky error: an op with a
// failed input does nothing and passes the error on; an op LibTorch rejects gets an *OpError
// naming the op and the input shapes ("torch: matmul: shapes [2 3] and [4 5]: …"). Model code
// writes straight-line maths and checks Err once (on the result, or Scope.Err for anything made
// in the scope); calls that return data (Item, Float32s, Backward, Step) return the error
// directly. Use after Close is an error wrapping ErrClosed, never a crash; no C++ exception
// crosses into Go.
//
// # Speed
//
// A call costs one purego.SyscallN on an address resolved at Load (about 0.1–0.2 µs and two
// small allocations), against about 1.5 µs for LibTorch's own dispatch of a tiny op on the CPU
// and 5–8 µs to launch a CUDA kernel: the Go side is not the bottleneck. Fusing work into one
// shim call is where speed comes from: ScaledDotProductAttention and MultiHeadAttention run a
// whole attention block per call (flash / memory-efficient kernels on LibTorch ≥ 2.1), AdamW
// updates all parameters in one call (foreach kernels on CUDA), and the Flatten functions move a
// whole parameter list in one device-side concatenation and one transfer. See
// docs/BENCHMARKS.md (LibTorch binding).
//
// # Caveats
//
//   - Tensors and scopes are not safe for concurrent use. Distinct tensors may be used from
//     distinct goroutines.
//   - Grad mode and autocast are per OS thread in LibTorch: NoGrad and Autocast run their
//     function on the calling goroutine locked to its thread; work started on other goroutines
//     inside them is not affected.
//   - A borrowed view (Scope.Use) goes bad when its owner is closed; a tensor that shares
//     storage with another (views from Reshape, Transpose, Narrow, …) sees in-place changes to
//     it, as in PyTorch.
//   - Reading values (Item, Float32s, ClipGradNorm's result) waits for the device.
//   - The shim builds against LibTorch 1.13 (Debian, CPU) and 2.x (CUDA); numerics follow the
//     version loaded (AdamW and attention use that version's kernels), so bitwise results can
//     differ between the two.
package torch
