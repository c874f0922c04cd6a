package torch

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/ebitengine/purego"
)

// LibraryName is the file name of the shim that Load looks for.
const LibraryName = "libvlptorch.so"

// EnvLibrary names the environment variable that points at the shim.
const EnvLibrary = "VLP_TORCH_LIB"

var (
	loadMu     sync.Mutex
	loadedPath string
	loadedABI  ABI
	fn         symbols // the shim's entry points; fn.ready is true once Load succeeded
)

// Load opens the shim and resolves every symbol, once per process. Which file (Locate):
// path (the --torch-lib flag) when it is not empty, else $VLP_TORCH_LIB when set, else the first
// that exists of libvlptorch.so next to the running binary, ../lib/libvlptorch.so from it (the
// build/ layout) and ./build/lib/libvlptorch.so. A library named explicitly, by path or by the
// environment, is the only candidate: when it is missing or does not load, Load fails rather
// than use another copy.
//
// Before resolving anything else Load asks the library for its ABI (vlp_abi) and refuses one
// whose version or op tables differ from this package's. The errors wrap ErrLibraryNotFound,
// ErrLibraryOpen, ErrNotShim or ErrABIMismatch and name the file.
//
// A second Load after a successful one returns nil and keeps the first library, unless path
// names a different file: that is an error, since the process cannot load two.
func Load(path string) error {
	loadMu.Lock()
	defer loadMu.Unlock()
	if fn.ready {
		if path == "" || sameFile(path, loadedPath) {
			return nil
		}
		return fmt.Errorf("torch: %s is loaded already; a process cannot also load %s", loadedPath, path)
	}
	found, err := Locate(path)
	if err != nil {
		return err
	}
	s, abi, err := open(found)
	if err != nil {
		return err
	}
	s.ready = true
	fn = s
	loadedPath, loadedABI = found, abi
	return nil
}

// open opens the library at path, checks its ABI against this package's and resolves every
// symbol. It changes no package state, so tests can try libraries that must fail.
func open(path string) (symbols, ABI, error) {
	var s symbols
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return s, ABI{}, fmt.Errorf("%w %s: %v (is it a shared library, and is its LibTorch installed? `make deps lib` installs LibTorch and builds the shim)", ErrLibraryOpen, path, err)
	}
	addr, err := purego.Dlsym(h, "vlp_abi")
	if err != nil || addr == 0 {
		return s, ABI{}, fmt.Errorf("%w: %s has no vlp_abi: it is another library, or a libvlptorch.so older than ABI version 1; build it with `make lib`",
			ErrNotShim, path)
	}
	abi, err := readABI(addr)
	if err != nil {
		return s, ABI{}, fmt.Errorf("%w: %s: %v", ErrNotShim, path, err)
	}
	if err := checkABI(path, abi, WantABI()); err != nil {
		return s, ABI{}, err
	}
	if err := s.resolve(h); err != nil {
		return s, ABI{}, fmt.Errorf("%w: %s: %v (rebuild it with `make lib`)", ErrABIMismatch, path, err)
	}
	return s, abi, nil
}

func sameFile(a, b string) bool {
	sa, err := os.Stat(a)
	if err != nil {
		return false
	}
	sb, err := os.Stat(b)
	return err == nil && os.SameFile(sa, sb)
}

// Loaded reports the path of the loaded shim, or "" before Load succeeds.
func Loaded() string {
	loadMu.Lock()
	defer loadMu.Unlock()
	return loadedPath
}

// Locate is the file Load would open for path. An explicit path, or without one
// $VLP_TORCH_LIB, is the only candidate: when it is not an existing file the error wraps
// ErrLibraryNotFound and names it (and where it came from). Otherwise it is the first of the
// search places that exists, or an error wrapping ErrLibraryNotFound that names every place and
// says how to build the library.
func Locate(path string) (string, error) {
	if path != "" || os.Getenv(EnvLibrary) != "" {
		p, from := path, ""
		if p == "" {
			p, from = os.Getenv(EnvLibrary), " ($"+EnvLibrary+")"
		}
		st, err := os.Stat(p)
		switch {
		case err != nil:
			return "", fmt.Errorf("%w: %s%s does not exist (`make lib` builds it); a library named explicitly is never replaced by another copy",
				ErrLibraryNotFound, p, from)
		case st.IsDir():
			return "", fmt.Errorf("%w: %s%s is a directory, not %s", ErrLibraryNotFound, p, from, LibraryName)
		}
		return p, nil
	}
	candidates := Candidates("")
	for _, c := range candidates {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c, nil
		}
	}
	return "", fmt.Errorf("%w: looked for %s in: %s; build it with `make lib` (or pass --torch-lib / set %s)",
		ErrLibraryNotFound, LibraryName, strings.Join(candidates, ", "), EnvLibrary)
}

// Candidates lists the paths Load considers for the given explicit path: path alone when it is
// not empty, else $VLP_TORCH_LIB alone when set, else the search places in order.
func Candidates(path string) []string {
	if path != "" {
		return []string{path}
	}
	if env := os.Getenv(EnvLibrary); env != "" {
		return []string{env}
	}
	var c []string
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			exe = real
		}
		dir := filepath.Dir(exe)
		c = append(c, filepath.Join(dir, LibraryName), filepath.Join(dir, "..", "lib", LibraryName))
	}
	if abs, err := filepath.Abs(filepath.Join("build", "lib", LibraryName)); err == nil {
		c = append(c, abs)
	}
	return c
}

// symbols holds the address of every C entry point (see torch/csrc/vlp_torch.h). Calls go
// through purego.SyscallN on these addresses: no reflection and one small allocation per call.
type symbols struct {
	ready bool

	freeString, version, buildConfig, liveTensors, tensorFree, tensorFreeMany, tensorMeta, numThreads, blasThreads uintptr
	hostReads                                                                                                      uintptr
	fill, arange, fromData, toHost, item, toDevice, toDtype, copy_, fill_, tensorShare                             uintptr
	generatorNew, generatorFree, generatorSeed, rngGetState, rngSetState, manualSeed                               uintptr
	random, randint, randperm                                                                                      uintptr
	shapeOp, transpose, narrow, slice, selectOp, indexSelect, gather, scatterAdd, maskedSelect                     uintptr
	cat, squeeze, unsqueeze, flatten, split, nonzero                                                               uintptr
	unary, binary, binaryScalar, add_, mulScalar_, reduce, reduceIndex, topk, cumsum, clamp                        uintptr
	where, maskedFill, linear, tril, oneHot                                                                        uintptr
	conv2d, batchNorm, maxPool2d, adaptiveAvgPool2d, softmax, layerNorm, embedding, dropout                        uintptr
	interpolateNearest, crossEntropy, bceWithLogits, pairLoss, sdpa, mha                                           uintptr
	setRequiresGrad, backward, grad, setGrad, zeroGrad, setGradEnabled, autocastEnter, autocastExit                uintptr
	adamwNew, adamwFree, adamwAddGroup, adamwStep, adamwSetHparam, adamwGetHparam, adamwCounts, adamwSetFused      uintptr
	adamwGetState, adamwSetState, adamwFlatState, clipGradNorm, flatCopy                                           uintptr
	bucketsNew, bucketsArm, bucketsFinish, bucketsToDevice, bucketsFree                                            uintptr
	serialize, deserialize, pickleSave                                                                             uintptr
	cudaDeviceCount, cudaBuilt, cudaSynchronize, cudaMemory, cudaResetPeak, cudaEmptyCache                         uintptr
	cudaDeviceInfo, cudaMathGet, cudaMathSet                                                                       uintptr
}

func (s *symbols) resolve(h uintptr) error {
	table := []struct {
		name string
		p    *uintptr
	}{
		{"vlp_free_string", &s.freeString}, {"vlp_version", &s.version}, {"vlp_build_config", &s.buildConfig},
		{"vlp_live_tensors", &s.liveTensors}, {"vlp_tensor_free", &s.tensorFree},
		{"vlp_tensor_free_many", &s.tensorFreeMany}, {"vlp_tensor_meta", &s.tensorMeta},
		{"vlp_num_threads", &s.numThreads}, {"vlp_blas_threads", &s.blasThreads}, {"vlp_host_reads", &s.hostReads},
		{"vlp_fill", &s.fill}, {"vlp_arange", &s.arange}, {"vlp_from_data", &s.fromData},
		{"vlp_to_host", &s.toHost}, {"vlp_item", &s.item}, {"vlp_to_device", &s.toDevice},
		{"vlp_to_dtype", &s.toDtype}, {"vlp_copy_", &s.copy_}, {"vlp_fill_", &s.fill_},
		{"vlp_tensor_share", &s.tensorShare},
		{"vlp_generator_new", &s.generatorNew}, {"vlp_generator_free", &s.generatorFree},
		{"vlp_generator_seed", &s.generatorSeed}, {"vlp_rng_get_state", &s.rngGetState},
		{"vlp_rng_set_state", &s.rngSetState}, {"vlp_manual_seed", &s.manualSeed},
		{"vlp_random", &s.random}, {"vlp_randint", &s.randint}, {"vlp_randperm", &s.randperm},
		{"vlp_shape_op", &s.shapeOp}, {"vlp_transpose", &s.transpose}, {"vlp_narrow", &s.narrow},
		{"vlp_slice", &s.slice}, {"vlp_select", &s.selectOp}, {"vlp_index_select", &s.indexSelect},
		{"vlp_gather", &s.gather}, {"vlp_scatter_add", &s.scatterAdd}, {"vlp_masked_select", &s.maskedSelect},
		{"vlp_cat", &s.cat}, {"vlp_squeeze", &s.squeeze}, {"vlp_unsqueeze", &s.unsqueeze},
		{"vlp_flatten", &s.flatten}, {"vlp_split", &s.split}, {"vlp_nonzero", &s.nonzero},
		{"vlp_unary", &s.unary}, {"vlp_binary", &s.binary}, {"vlp_binary_scalar", &s.binaryScalar},
		{"vlp_add_", &s.add_}, {"vlp_mul_scalar_", &s.mulScalar_}, {"vlp_reduce", &s.reduce},
		{"vlp_reduce_index", &s.reduceIndex}, {"vlp_topk", &s.topk}, {"vlp_cumsum", &s.cumsum},
		{"vlp_clamp", &s.clamp}, {"vlp_where", &s.where}, {"vlp_masked_fill", &s.maskedFill},
		{"vlp_linear", &s.linear}, {"vlp_tril", &s.tril}, {"vlp_one_hot", &s.oneHot},
		{"vlp_conv2d", &s.conv2d}, {"vlp_batch_norm", &s.batchNorm}, {"vlp_max_pool2d", &s.maxPool2d},
		{"vlp_adaptive_avg_pool2d", &s.adaptiveAvgPool2d}, {"vlp_softmax", &s.softmax},
		{"vlp_layer_norm", &s.layerNorm}, {"vlp_embedding", &s.embedding}, {"vlp_dropout", &s.dropout},
		{"vlp_interpolate_nearest", &s.interpolateNearest}, {"vlp_cross_entropy", &s.crossEntropy},
		{"vlp_bce_with_logits", &s.bceWithLogits}, {"vlp_pair_loss", &s.pairLoss}, {"vlp_sdpa", &s.sdpa},
		{"vlp_mha", &s.mha},
		{"vlp_set_requires_grad", &s.setRequiresGrad}, {"vlp_backward", &s.backward}, {"vlp_grad", &s.grad},
		{"vlp_set_grad", &s.setGrad}, {"vlp_zero_grad", &s.zeroGrad},
		{"vlp_set_grad_enabled", &s.setGradEnabled}, {"vlp_autocast_enter", &s.autocastEnter},
		{"vlp_autocast_exit", &s.autocastExit},
		{"vlp_adamw_new", &s.adamwNew}, {"vlp_adamw_free", &s.adamwFree}, {"vlp_adamw_add_group", &s.adamwAddGroup},
		{"vlp_adamw_step", &s.adamwStep}, {"vlp_adamw_set_hparam", &s.adamwSetHparam},
		{"vlp_adamw_get_hparam", &s.adamwGetHparam}, {"vlp_adamw_counts", &s.adamwCounts},
		{"vlp_adamw_set_fused", &s.adamwSetFused},
		{"vlp_adamw_get_state", &s.adamwGetState}, {"vlp_adamw_set_state", &s.adamwSetState},
		{"vlp_adamw_flat_state", &s.adamwFlatState}, {"vlp_clip_grad_norm", &s.clipGradNorm},
		{"vlp_flat_copy", &s.flatCopy},
		{"vlp_buckets_new", &s.bucketsNew}, {"vlp_buckets_arm", &s.bucketsArm}, {"vlp_buckets_finish", &s.bucketsFinish},
		{"vlp_buckets_to_device", &s.bucketsToDevice}, {"vlp_buckets_free", &s.bucketsFree},
		{"vlp_serialize", &s.serialize}, {"vlp_deserialize", &s.deserialize}, {"vlp_pickle_save", &s.pickleSave},
		{"vlp_cuda_device_count", &s.cudaDeviceCount}, {"vlp_cuda_built", &s.cudaBuilt},
		{"vlp_cuda_synchronize", &s.cudaSynchronize},
		{"vlp_cuda_memory", &s.cudaMemory}, {"vlp_cuda_reset_peak", &s.cudaResetPeak},
		{"vlp_cuda_empty_cache", &s.cudaEmptyCache}, {"vlp_cuda_device_info", &s.cudaDeviceInfo},
		{"vlp_cuda_math_get", &s.cudaMathGet}, {"vlp_cuda_math_set", &s.cudaMathSet},
	}
	var missing []string
	for _, e := range table {
		addr, err := purego.Dlsym(h, e.name)
		if err != nil || addr == 0 {
			missing = append(missing, e.name)
			continue
		}
		*e.p = addr
	}
	if n := len(missing); n > 8 {
		missing = append(missing[:8], fmt.Sprintf("and %d more", n-8))
	}
	if len(missing) > 0 {
		return errors.New("missing symbols: " + strings.Join(missing, ", "))
	}
	return nil
}
