package sharding

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// jsonFile streams one annotation file: a top-level object whose arrays
// are handled key by key (COCO), or a top-level array (VG). Array elements
// are handed over one at a time as raw bytes, so a multi-gigabyte file is
// never in memory, and an element larger than the record limit is read to
// its end, checked and skipped (element.tooLarge) rather than held. Every
// error wraps ErrMalformedJSON and names the file and the byte offset.
type jsonFile struct {
	path      string
	sc        *jsonScanner
	closer    io.Closer
	maxRecord int
}

// element is one array element.
type element struct {
	raw      []byte // its bytes; valid until the next element; nil when tooLarge
	off      int64  // byte offset of its first byte in the file
	size     int64  // its length in bytes
	tooLarge bool   // longer than the record limit: not kept
}

func openJSON(path string, maxRecord int) (*jsonFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	j := newJSONFile(f, path, maxRecord)
	j.closer = f
	return j, nil
}

// newJSONFile reads from r; name is used in errors.
func newJSONFile(r io.Reader, name string, maxRecord int) *jsonFile {
	return &jsonFile{path: name, sc: newJSONScanner(r, 1<<20), maxRecord: maxRecord}
}

func (j *jsonFile) Close() error {
	if j.closer == nil {
		return nil
	}
	return j.closer.Close()
}

// malformed wraps a scanner or decoding error with the file name and the
// byte offset.
func (j *jsonFile) malformed(err error) error {
	var se *scanError
	if errors.As(err, &se) {
		return fmt.Errorf("%w: %s: byte %d: %s", ErrMalformedJSON, j.path, se.off, se.msg)
	}
	return fmt.Errorf("%w: %s: %v", ErrMalformedJSON, j.path, err)
}

// object walks a top-level object: handlers[key] consumes the value of key
// (usually through array); other values are read, checked and dropped.
// The object must be all the file holds.
func (j *jsonFile) object(handlers map[string]func() error) error {
	if err := j.sc.expect('{', "'{' (a JSON object)"); err != nil {
		return j.malformed(err)
	}
	c, err := j.sc.peekNonSpace()
	if err != nil {
		return j.malformed(err)
	}
	if c == '}' {
		j.sc.pos++
		return j.end()
	}
	for {
		c, err := j.sc.peekNonSpace()
		if err != nil {
			return j.malformed(err)
		}
		if c != '"' {
			return j.malformed(j.sc.errorf("invalid character %s looking for beginning of object key string", quoteChar(c)))
		}
		off := j.sc.offset()
		raw, over, err := j.sc.captureValue(1 << 10)
		if err != nil {
			return j.malformed(err)
		}
		var key string
		if !over {
			if err := json.Unmarshal(raw, &key); err != nil {
				return j.malformed(&scanError{off: off, msg: "object key is not a string"})
			}
		}
		if err := j.sc.expect(':', "':' after object key"); err != nil {
			return j.malformed(err)
		}
		if h, ok := handlers[key]; ok && !over {
			if err := h(); err != nil {
				return err
			}
		} else if err := j.sc.value(); err != nil {
			return j.malformed(err)
		}
		c, err = j.sc.peekNonSpace()
		if err != nil {
			return j.malformed(err)
		}
		switch c {
		case ',':
			j.sc.pos++
		case '}':
			j.sc.pos++
			return j.end()
		default:
			return j.malformed(j.sc.errorf("invalid character %s after object key:value pair", quoteChar(c)))
		}
	}
}

// array walks an array and calls fn with each element in order. Elements
// are checked JSON; whether they have the right shape is fn's business.
func (j *jsonFile) array(fn func(e element) error) error {
	if err := j.sc.expect('[', "'[' (a JSON array)"); err != nil {
		return j.malformed(err)
	}
	c, err := j.sc.peekNonSpace()
	if err != nil {
		return j.malformed(err)
	}
	if c == ']' {
		j.sc.pos++
		return nil
	}
	for {
		off := j.sc.offset()
		raw, over, err := j.sc.captureValue(j.maxRecord)
		if err != nil {
			return j.malformed(err)
		}
		if err := fn(element{raw: raw, off: off, size: j.sc.offset() - off, tooLarge: over}); err != nil {
			return err
		}
		c, err := j.sc.peekNonSpace()
		if err != nil {
			return j.malformed(err)
		}
		switch c {
		case ',':
			j.sc.pos++
		case ']':
			j.sc.pos++
			return nil
		default:
			return j.malformed(j.sc.errorf("invalid character %s after array element", quoteChar(c)))
		}
	}
}

// topArray walks a file that is one array.
func (j *jsonFile) topArray(fn func(e element) error) error {
	if err := j.array(fn); err != nil {
		return err
	}
	return j.end()
}

// end checks that nothing but white space follows the top-level value.
func (j *jsonFile) end() error {
	done, err := j.sc.atEnd()
	if err != nil {
		return j.malformed(err)
	}
	if !done {
		return j.malformed(j.sc.errorf("data after the top-level value"))
	}
	return nil
}
