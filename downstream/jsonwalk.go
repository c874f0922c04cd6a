package downstream

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// jsonFile streams one annotation file: a top-level object whose values
// are handled key by key, arrays element by element. An element is held
// only up to the record limit: a longer one is read to its end with its
// strings and brackets followed, and skipped (element.tooLarge), so no
// file makes memory grow past the limit, whatever it holds. Elements that
// are kept are checked by encoding/json; an oversized one is only checked
// for balanced brackets and closed strings, since it is dropped anyway.
// Every error wraps ErrMalformed and names the file and the byte offset.
type jsonFile struct {
	name      string
	r         *bufio.Reader
	closer    io.Closer
	off       int64 // offset of the next unread byte
	maxRecord int
	buf       []byte // the capture of the current value, reused
	stack     []byte // open '{' and '['
}

// element is one array element.
type element struct {
	raw      []byte // its bytes; valid until the next read; nil when tooLarge
	off      int64  // byte offset of its first byte
	tooLarge bool   // longer than the record limit: not kept
}

// maxJSONDepth is encoding/json's nesting limit too.
const maxJSONDepth = 10000

// openJSON opens path, refusing a file larger than lim.MaxFileBytes.
func openJSON(path string, lim Limits) (*jsonFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("downstream: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("downstream: %w", err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrMalformed, path)
	}
	if st.Size() > lim.MaxFileBytes {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %d bytes, the limit is %d", ErrFileTooLarge, path, st.Size(), lim.MaxFileBytes)
	}
	j := newJSONFile(f, path, lim.MaxRecordBytes)
	j.closer = f
	return j, nil
}

// newJSONFile reads from r; name is used in errors.
func newJSONFile(r io.Reader, name string, maxRecord int) *jsonFile {
	return &jsonFile{name: name, r: bufio.NewReaderSize(r, 1<<20), maxRecord: maxRecord}
}

func (j *jsonFile) Close() error {
	if j.closer == nil {
		return nil
	}
	return j.closer.Close()
}

// errAt is a malformed-file error at byte off.
func (j *jsonFile) errAt(off int64, format string, args ...any) error {
	return fmt.Errorf("%w: %s: byte %d: %s", ErrMalformed, j.name, off, fmt.Sprintf(format, args...))
}

func (j *jsonFile) readByte() (byte, error) {
	c, err := j.r.ReadByte()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return 0, j.errAt(j.off, "unexpected end of file (truncated?)")
		}
		return 0, fmt.Errorf("downstream: %s: byte %d: %w", j.name, j.off, err)
	}
	j.off++
	return c, nil
}

func (j *jsonFile) unread() {
	j.r.UnreadByte()
	j.off--
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// peek skips white space and returns the next byte, unread.
func (j *jsonFile) peek() (byte, error) {
	for {
		c, err := j.readByte()
		if err != nil {
			return 0, err
		}
		if !isSpace(c) {
			j.unread()
			return c, nil
		}
	}
}

// expect consumes the next non-space byte, which must be want.
func (j *jsonFile) expect(want byte, what string) error {
	c, err := j.peek()
	if err != nil {
		return err
	}
	if c != want {
		return j.errAt(j.off, "found %q, expected %s", c, what)
	}
	j.readByte()
	return nil
}

// value reads one JSON value, holding at most limit of its bytes: raw is
// nil and over true when it is longer. A held value is checked by
// encoding/json.
func (j *jsonFile) value(limit int) (raw []byte, start int64, over bool, err error) {
	c, err := j.peek()
	if err != nil {
		return nil, 0, false, err
	}
	start = j.off
	j.buf = j.buf[:0]
	j.stack = j.stack[:0]
	add := func(c byte) {
		if over {
			return
		}
		if len(j.buf) >= limit {
			over = true
			j.buf = j.buf[:0]
			return
		}
		j.buf = append(j.buf, c)
	}
	switch {
	case c == '"':
		if err := j.str(add); err != nil {
			return nil, start, false, err
		}
	case c == '{' || c == '[':
		for {
			c, err := j.readByte()
			if err != nil {
				return nil, start, false, err
			}
			switch c {
			case '"':
				j.unread()
				if err := j.str(add); err != nil {
					return nil, start, false, err
				}
				continue
			case '{', '[':
				if len(j.stack) == maxJSONDepth {
					return nil, start, false, j.errAt(j.off-1, "nesting deeper than %d", maxJSONDepth)
				}
				j.stack = append(j.stack, c)
			case '}', ']':
				open := byte('{')
				if c == ']' {
					open = '['
				}
				if len(j.stack) == 0 || j.stack[len(j.stack)-1] != open {
					return nil, start, false, j.errAt(j.off-1, "unexpected %q", c)
				}
				j.stack = j.stack[:len(j.stack)-1]
			}
			add(c)
			if len(j.stack) == 0 {
				break
			}
		}
	default: // a number or a literal: up to the next delimiter
		for {
			c, err := j.r.ReadByte()
			if err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				return nil, start, false, fmt.Errorf("downstream: %s: byte %d: %w", j.name, j.off, err)
			}
			if isSpace(c) || c == ',' || c == ']' || c == '}' || c == ':' {
				j.r.UnreadByte()
				break
			}
			j.off++
			add(c)
		}
		if j.off == start {
			return nil, start, false, j.errAt(start, "found %q, expected a value", c)
		}
	}
	if over {
		return nil, start, true, nil
	}
	if !json.Valid(j.buf) {
		var se *json.SyntaxError
		if err := json.Unmarshal(j.buf, new(json.RawMessage)); errors.As(err, &se) {
			return nil, start, false, j.errAt(start+se.Offset-1, "%s", se.Error())
		}
		return nil, start, false, j.errAt(start, "invalid JSON value")
	}
	return j.buf, start, false, nil
}

// str reads a string, from its opening quote to its closing one.
func (j *jsonFile) str(add func(byte)) error {
	c, err := j.readByte()
	if err != nil {
		return err
	}
	add(c) // the opening quote
	for {
		c, err := j.readByte()
		if err != nil {
			return err
		}
		if c < 0x20 {
			return j.errAt(j.off-1, "control character %q in a string", c)
		}
		add(c)
		switch c {
		case '"':
			return nil
		case '\\':
			c, err := j.readByte()
			if err != nil {
				return err
			}
			add(c)
		}
	}
}

// object walks a top-level object: handlers[key] consumes the value of
// key (usually through array); other values are read, checked and
// dropped. The object must be all the file holds.
func (j *jsonFile) object(handlers map[string]func() error) error {
	if err := j.expect('{', "'{' (a JSON object)"); err != nil {
		return err
	}
	c, err := j.peek()
	if err != nil {
		return err
	}
	if c == '}' {
		j.readByte()
		return j.end()
	}
	for {
		raw, off, over, err := j.value(1 << 10)
		if err != nil {
			return err
		}
		var key string
		if over || json.Unmarshal(raw, &key) != nil {
			return j.errAt(off, "object key is not a string")
		}
		if err := j.expect(':', "':' after an object key"); err != nil {
			return err
		}
		if h, ok := handlers[key]; ok {
			if err := h(); err != nil {
				return err
			}
		} else if _, _, _, err := j.value(j.maxRecord); err != nil {
			return err
		}
		c, err := j.peek()
		if err != nil {
			return err
		}
		j.readByte()
		switch c {
		case ',':
		case '}':
			return j.end()
		default:
			return j.errAt(j.off-1, "found %q after an object member, expected ',' or '}'", c)
		}
	}
}

// array walks an array and calls fn with each element in order.
func (j *jsonFile) array(fn func(e element) error) error {
	if err := j.expect('[', "'[' (a JSON array)"); err != nil {
		return err
	}
	c, err := j.peek()
	if err != nil {
		return err
	}
	if c == ']' {
		j.readByte()
		return nil
	}
	for {
		raw, off, over, err := j.value(j.maxRecord)
		if err != nil {
			return err
		}
		if err := fn(element{raw: raw, off: off, tooLarge: over}); err != nil {
			return err
		}
		c, err := j.peek()
		if err != nil {
			return err
		}
		j.readByte()
		switch c {
		case ',':
		case ']':
			return nil
		default:
			return j.errAt(j.off-1, "found %q after an array element, expected ',' or ']'", c)
		}
	}
}

// end checks that nothing but white space follows the top-level value.
func (j *jsonFile) end() error {
	for {
		c, err := j.r.ReadByte()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("downstream: %s: byte %d: %w", j.name, j.off, err)
		}
		j.off++
		if !isSpace(c) {
			return j.errAt(j.off-1, "data after the top-level value")
		}
	}
}

// where names an element's position for reports.
func (j *jsonFile) where(e element) string { return fmt.Sprintf("%s: byte %d", j.name, e.off) }
