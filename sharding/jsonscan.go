package sharding

import (
	"errors"
	"fmt"
	"io"
	"strconv"
)

// jsonScanner reads a JSON stream through its own buffer and checks the
// grammar (RFC 8259) byte by byte, so it always knows the exact offset of
// what it reads. It can capture the bytes of one value up to a limit: a
// larger value is still read and checked to its end but not kept. Memory is
// the buffer, the capture limit and a bracket stack of at most
// maxJSONDepth bytes, whatever the stream holds.
//
// Like encoding/json it does not check that strings are valid UTF-8; the
// record decoders do that for the texts they keep (jsontext.go).
type jsonScanner struct {
	r    io.Reader
	buf  []byte
	pos  int   // next unread byte of buf
	end  int   // bytes held in buf
	base int64 // stream offset of buf[0]
	rerr error // the read error that ended the stream (io.EOF at the end)

	stack []byte // open '{' and '['

	capturing bool
	mark      int // first byte of buf not yet copied to capture
	capture   []byte
	limit     int
	over      bool // the value outgrew limit
}

// maxJSONDepth is encoding/json's nesting limit too.
const maxJSONDepth = 10000

// scanError is a grammar error or a premature end at a stream offset.
type scanError struct {
	off int64
	msg string
	eof bool
}

func (e *scanError) Error() string { return fmt.Sprintf("byte %d: %s", e.off, e.msg) }

func newJSONScanner(r io.Reader, bufSize int) *jsonScanner {
	return &jsonScanner{r: r, buf: make([]byte, bufSize)}
}

// offset is the stream offset of the next unread byte.
func (s *jsonScanner) offset() int64 { return s.base + int64(s.pos) }

// fill makes buf[pos] readable; false at the end of the stream or after a
// read error (fail says which).
func (s *jsonScanner) fill() bool {
	if s.pos < s.end {
		return true
	}
	if s.rerr != nil {
		return false
	}
	if s.capturing {
		s.keep(s.buf[s.mark:s.end])
		s.mark = 0
	}
	s.base += int64(s.end)
	s.pos, s.end = 0, 0
	for tries := 0; s.end == 0 && s.rerr == nil; tries++ {
		if tries == 100 {
			s.rerr = io.ErrNoProgress
			break
		}
		n, err := s.r.Read(s.buf)
		s.end = n
		if err != nil {
			s.rerr = err
		}
	}
	return s.end > 0
}

// fail is the error for a stream that ended where more JSON was needed.
func (s *jsonScanner) fail() error {
	if s.rerr == nil || s.rerr == io.EOF {
		return &scanError{off: s.offset(), msg: "unexpected end of file (truncated?)", eof: true}
	}
	return fmt.Errorf("byte %d: %w", s.offset(), s.rerr)
}

func (s *jsonScanner) errorf(format string, args ...any) error {
	return &scanError{off: s.offset(), msg: fmt.Sprintf(format, args...)}
}

func (s *jsonScanner) keep(b []byte) {
	if s.over {
		return
	}
	if len(s.capture)+len(b) > s.limit {
		s.over = true
		s.capture = s.capture[:0]
		return
	}
	s.capture = append(s.capture, b...)
}

// peek returns the next byte without consuming it; ok is false at the end.
func (s *jsonScanner) peek() (byte, bool) {
	if !s.fill() {
		return 0, false
	}
	return s.buf[s.pos], true
}

// peekNonSpace skips white space and returns the next byte, unconsumed.
func (s *jsonScanner) peekNonSpace() (byte, error) {
	for {
		if !s.fill() {
			return 0, s.fail()
		}
		switch c := s.buf[s.pos]; c {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return c, nil
		}
	}
}

// atEnd reports whether only white space is left.
func (s *jsonScanner) atEnd() (bool, error) {
	_, err := s.peekNonSpace()
	if err == nil {
		return false, nil
	}
	var se *scanError
	if errors.As(err, &se) && se.eof {
		return true, nil
	}
	return false, err
}

// expect consumes white space and the byte c.
func (s *jsonScanner) expect(c byte, what string) error {
	got, err := s.peekNonSpace()
	if err != nil {
		return err
	}
	if got != c {
		return s.errorf("invalid character %s, expected %s", quoteChar(got), what)
	}
	s.pos++
	return nil
}

// captureValue reads one value (after white space) and returns its bytes,
// or over=true when it is longer than limit. The bytes stay valid until
// the next call.
func (s *jsonScanner) captureValue(limit int) (raw []byte, over bool, err error) {
	if _, err := s.peekNonSpace(); err != nil {
		return nil, false, err
	}
	if cap(s.capture) > 4<<20 {
		s.capture = nil // do not keep a rare huge record's buffer
	}
	s.capture, s.limit, s.over = s.capture[:0], limit, false
	s.capturing, s.mark = true, s.pos
	err = s.value()
	if s.pos >= s.mark && s.end > 0 {
		s.keep(s.buf[s.mark:s.pos])
	}
	s.capturing = false
	if err != nil {
		return nil, false, err
	}
	if s.over {
		return nil, true, nil
	}
	return s.capture, false, nil
}

// value reads one complete value (after white space).
func (s *jsonScanner) value() error {
	s.stack = s.stack[:0]
	for {
		// A value starts here.
		c, err := s.peekNonSpace()
		if err != nil {
			return err
		}
		switch {
		case c == '{' || c == '[':
			if len(s.stack) >= maxJSONDepth {
				return s.errorf("nesting deeper than %d", maxJSONDepth)
			}
			s.pos++
			next, err := s.peekNonSpace()
			if err != nil {
				return err
			}
			if next != closer(c) {
				s.stack = append(s.stack, c)
				if c == '{' {
					if err := s.key(); err != nil {
						return err
					}
				}
				continue
			}
			s.pos++ // an empty object or array
		case c == '"':
			s.pos++
			if err := s.str(); err != nil {
				return err
			}
		case c == '-' || isDigit(c):
			if err := s.number(); err != nil {
				return err
			}
		case c == 't':
			err = s.literal("true")
		case c == 'f':
			err = s.literal("false")
		case c == 'n':
			err = s.literal("null")
		default:
			return s.errorf("invalid character %s looking for beginning of value", quoteChar(c))
		}
		if err != nil {
			return err
		}
		// A value ended: close containers, or go on to the next element.
		for {
			if len(s.stack) == 0 {
				return nil
			}
			c, err := s.peekNonSpace()
			if err != nil {
				return err
			}
			top := s.stack[len(s.stack)-1]
			if c == closer(top) {
				s.pos++
				s.stack = s.stack[:len(s.stack)-1]
				continue
			}
			if c != ',' {
				if top == '{' {
					return s.errorf("invalid character %s after object key:value pair", quoteChar(c))
				}
				return s.errorf("invalid character %s after array element", quoteChar(c))
			}
			s.pos++
			if top == '{' {
				if err := s.key(); err != nil {
					return err
				}
			}
			break
		}
	}
}

func closer(open byte) byte {
	if open == '{' {
		return '}'
	}
	return ']'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// key reads `"name" :` inside an object.
func (s *jsonScanner) key() error {
	c, err := s.peekNonSpace()
	if err != nil {
		return err
	}
	if c != '"' {
		return s.errorf("invalid character %s looking for beginning of object key string", quoteChar(c))
	}
	s.pos++
	if err := s.str(); err != nil {
		return err
	}
	c, err = s.peekNonSpace()
	if err != nil {
		return err
	}
	if c != ':' {
		return s.errorf("invalid character %s after object key", quoteChar(c))
	}
	s.pos++
	return nil
}

// str reads the rest of a string after its opening quote.
func (s *jsonScanner) str() error {
	for {
		if !s.fill() {
			return s.fail()
		}
		b := s.buf[s.pos:s.end]
		i := 0
		for i < len(b) && b[i] != '"' && b[i] != '\\' && b[i] >= 0x20 {
			i++
		}
		s.pos += i
		if i == len(b) {
			continue
		}
		switch c := b[i]; {
		case c == '"':
			s.pos++
			return nil
		case c < 0x20:
			return s.errorf("invalid character %s in string literal", quoteChar(c))
		}
		s.pos++ // the backslash
		e, ok := s.peek()
		if !ok {
			return s.fail()
		}
		switch e {
		case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			s.pos++
		case 'u':
			s.pos++
			for k := 0; k < 4; k++ {
				h, ok := s.peek()
				if !ok {
					return s.fail()
				}
				if !isHex(h) {
					return s.errorf("invalid character %s in \\u hexadecimal character escape", quoteChar(h))
				}
				s.pos++
			}
		default:
			return s.errorf("invalid character %s in string escape code", quoteChar(e))
		}
	}
}

func isHex(c byte) bool { return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F' }

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *jsonScanner) number() error {
	c, _ := s.peek()
	if c == '-' {
		s.pos++
		var ok bool
		if c, ok = s.peek(); !ok {
			return s.fail()
		}
		if !isDigit(c) {
			return s.errorf("invalid character %s in numeric literal", quoteChar(c))
		}
	}
	s.pos++ // first digit
	if c != '0' {
		s.digits()
	}
	if c, ok := s.peek(); ok && c == '.' {
		s.pos++
		if err := s.someDigits(); err != nil {
			return err
		}
	}
	if c, ok := s.peek(); ok && (c == 'e' || c == 'E') {
		s.pos++
		if c, ok := s.peek(); ok && (c == '+' || c == '-') {
			s.pos++
		}
		if err := s.someDigits(); err != nil {
			return err
		}
	}
	return nil
}

func (s *jsonScanner) digits() {
	for {
		c, ok := s.peek()
		if !ok || !isDigit(c) {
			return
		}
		s.pos++
	}
}

// someDigits reads one or more digits.
func (s *jsonScanner) someDigits() error {
	c, ok := s.peek()
	if !ok {
		return s.fail()
	}
	if !isDigit(c) {
		return s.errorf("invalid character %s in numeric literal", quoteChar(c))
	}
	s.digits()
	return nil
}

func (s *jsonScanner) literal(word string) error {
	for i := 0; i < len(word); i++ {
		c, ok := s.peek()
		if !ok {
			return s.fail()
		}
		if c != word[i] {
			return s.errorf("invalid character %s in literal %s (expecting %s)", quoteChar(c), word, quoteChar(word[i]))
		}
		s.pos++
	}
	return nil
}

// quoteChar formats c as encoding/json's errors do.
func quoteChar(c byte) string {
	if c == '\'' {
		return `'\''`
	}
	if c == '"' {
		return `'"'`
	}
	q := strconv.Quote(string(rune(c)))
	if c >= 0x80 {
		q = strconv.Quote(string([]byte{c}))
	}
	return "'" + q[1:len(q)-1] + "'"
}
