package checkpoint

import "fmt"

// DType is the element type of a stored tensor. Its string form is the name
// PyTorch prints without the "torch." prefix ("float32", "bfloat16", …), which
// is also how it is written on disk.
type DType string

// The element types a checkpoint stores. Values are little-endian; bool is one
// byte per element (0 or 1), as in PyTorch.
const (
	Float32  DType = "float32"
	Float64  DType = "float64"
	Float16  DType = "float16"
	BFloat16 DType = "bfloat16"
	Int64    DType = "int64"
	Int32    DType = "int32"
	Int16    DType = "int16"
	Int8     DType = "int8"
	Uint8    DType = "uint8"
	Bool     DType = "bool"
)

// dtypeInfo is what the store and the exporter need to know of a dtype.
type dtypeInfo struct {
	size    int    // bytes per element
	storage string // PyTorch's legacy storage class in the torch module
}

var dtypes = map[DType]dtypeInfo{
	Float32:  {4, "FloatStorage"},
	Float64:  {8, "DoubleStorage"},
	Float16:  {2, "HalfStorage"},
	BFloat16: {2, "BFloat16Storage"},
	Int64:    {8, "LongStorage"},
	Int32:    {4, "IntStorage"},
	Int16:    {2, "ShortStorage"},
	Int8:     {1, "CharStorage"},
	Uint8:    {1, "ByteStorage"},
	Bool:     {1, "BoolStorage"},
}

// Size returns the number of bytes of one element, or 0 for an unknown dtype.
func (d DType) Size() int { return dtypes[d].size }

// Valid reports whether d is one of the dtypes above.
func (d DType) Valid() bool { _, ok := dtypes[d]; return ok }

func (d DType) String() string { return string(d) }

// ParseDType accepts the names above and PyTorch's spelling with a "torch."
// prefix, plus the common aliases float, half, long, int.
func ParseDType(s string) (DType, error) {
	if len(s) > 6 && s[:6] == "torch." {
		s = s[6:]
	}
	switch s {
	case "float":
		return Float32, nil
	case "double":
		return Float64, nil
	case "half":
		return Float16, nil
	case "long":
		return Int64, nil
	case "int":
		return Int32, nil
	}
	if d := DType(s); d.Valid() {
		return d, nil
	}
	return "", fmt.Errorf("%w: unknown dtype %q", ErrInvalid, s)
}
