package downstream

import "errors"

// Errors of an import.
var (
	// ErrMalformed: an annotation file is not valid JSON or not the shape
	// its format has; the error names the file and the byte offset.
	ErrMalformed = errors.New("downstream: malformed annotation file")
	// ErrFileTooLarge: an annotation file is larger than Limits.MaxFileBytes.
	ErrFileTooLarge = errors.New("downstream: annotation file too large")
	// ErrNothingUsable: the import kept no record.
	ErrNothingUsable = errors.New("downstream: nothing usable in the input")
	// ErrInvalidConfig is wrapped by every Validate error.
	ErrInvalidConfig = errors.New("downstream: invalid config")
)
