package torch

import (
	"fmt"
	"strings"
	"unsafe"
)

// ABIVersion is the version of the C ABI (VLP_ABI_VERSION in torch/csrc/vlp_torch.h) this package
// speaks. The shim is built apart from the Go binary (GPU hosts build it against their own
// LibTorch), so Load asks the library for its version before it resolves anything else, and
// refuses one that speaks another.
const ABIVersion = 6

// ABI is what a libvlptorch.so reports about its C ABI (vlp_abi): its version and the size of
// each op table (the codes of the dtype, shape, unary, binary and reduce enums), in that order.
type ABI struct {
	Version int64
	Tables  []int64
}

// abiTables names the op tables, in the order of VLP_TABLE_* in vlp_torch.h.
var abiTables = []string{"dtype", "shape", "unary", "binary", "reduce"}

// WantABI is the ABI this package was written against.
func WantABI() ABI {
	return ABI{Version: ABIVersion, Tables: []int64{int64(dtypeCount), shapeCount, uCount, bCount, rCount}}
}

func (a ABI) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ABI version %d (op tables:", a.Version)
	for i, n := range a.Tables {
		name := fmt.Sprintf("table %d", i)
		if i < len(abiTables) {
			name = abiTables[i]
		}
		fmt.Fprintf(&b, " %s %d", name, n)
	}
	b.WriteString(")")
	return b.String()
}

// checkABI compares what the library at path reports (got) with what this package speaks (want).
// The error wraps ErrABIMismatch and names both versions, or every op table whose size differs.
func checkABI(path string, got, want ABI) error {
	if got.Version != want.Version {
		return fmt.Errorf("%w: %s speaks ABI version %d, this vlp binary speaks version %d: build the library from the same source tree as the binary (`make lib`, or scripts/gpu-check.sh on a GPU host)",
			ErrABIMismatch, path, got.Version, want.Version)
	}
	var diff []string
	for i := range max(len(got.Tables), len(want.Tables)) {
		g, w := int64(-1), int64(-1)
		if i < len(got.Tables) {
			g = got.Tables[i]
		}
		if i < len(want.Tables) {
			w = want.Tables[i]
		}
		if g != w {
			name := fmt.Sprintf("table %d", i)
			if i < len(abiTables) {
				name = abiTables[i]
			}
			diff = append(diff, fmt.Sprintf("%s: the library has %s, vlp %s", name, tableSize(g), tableSize(w)))
		}
	}
	if len(diff) > 0 {
		return fmt.Errorf("%w: %s and this vlp binary both speak ABI version %d but their op tables differ (%s): they were built from different sources; rebuild the library (`make lib`)",
			ErrABIMismatch, path, want.Version, strings.Join(diff, "; "))
	}
	return nil
}

func tableSize(n int64) string {
	if n < 0 {
		return "no table"
	}
	return fmt.Sprint(n, " codes")
}

// readABI calls vlp_abi at addr: the one call made into a library before it is trusted.
func readABI(addr uintptr) (ABI, error) {
	var version, n int64
	sizes := make([]int64, 16)
	if call(addr, uintptr(unsafe.Pointer(&version)), uintptr(unsafe.Pointer(&sizes[0])), uintptr(len(sizes)),
		uintptr(unsafe.Pointer(&n))) != 0 {
		// vlp_abi never fails; a library whose vlp_abi does is not one to read strings from.
		return ABI{}, fmt.Errorf("vlp_abi returned an error")
	}
	if n < 0 || n > int64(len(sizes)) {
		return ABI{}, fmt.Errorf("vlp_abi reports %d op tables", n)
	}
	return ABI{Version: version, Tables: sizes[:n]}, nil
}

// LoadedABI is the ABI of the loaded library (the zero ABI before Load succeeds).
func LoadedABI() ABI {
	loadMu.Lock()
	defer loadMu.Unlock()
	return loadedABI
}
