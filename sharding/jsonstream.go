package sharding

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
)

// jsonFile streams one annotation file with encoding/json's Decoder
// (Token/More), so a multi-gigabyte array never sits in memory at once.
// Every error names the file and the byte offset.
type jsonFile struct {
	path string
	f    *os.File
	dec  *json.Decoder
	size int64
	// badRecord is called for an element that is valid JSON of the wrong
	// shape: the caller counts it and the stream goes on.
	badRecord func(offset int64, err error)
}

func openJSON(path string) (*jsonFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	dec := json.NewDecoder(bufio.NewReaderSize(f, 1<<20))
	dec.UseNumber()
	return &jsonFile{path: path, f: f, dec: dec, size: st.Size()}, nil
}

func (j *jsonFile) Close() error { return j.f.Close() }

// malformed wraps a decoding error with the file name and byte offset.
func (j *jsonFile) malformed(err error) error {
	return j.malformedAt(j.dec.InputOffset(), err)
}

// malformedAt wraps an error met while decoding the value that starts at
// (or after a comma at) start. A Decoder's SyntaxError.Offset does not count
// the bytes its Token calls consumed, so the exact offset is found by
// re-scanning that one value from start with a fresh decoder.
func (j *jsonFile) malformedAt(start int64, err error) error {
	off := start
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		off, err = j.size, errors.New("unexpected end of file (truncated?)")
	} else if errors.As(err, new(*json.SyntaxError)) {
		off = j.syntaxOffset(start)
	}
	return fmt.Errorf("%w: %s: byte %d: %v", ErrMalformedJSON, j.path, off, err)
}

func (j *jsonFile) syntaxOffset(start int64) int64 {
	r := bufio.NewReader(io.NewSectionReader(j.f, start, j.size-start))
	pos := start
	for {
		c, err := r.ReadByte()
		if err != nil {
			return start
		}
		if c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == ',' || c == ':' {
			pos++
			continue
		}
		r.UnreadByte()
		break
	}
	var raw json.RawMessage
	var syn *json.SyntaxError
	if err := json.NewDecoder(r).Decode(&raw); errors.As(err, &syn) {
		return pos + syn.Offset - 1 // Offset counts the offending byte
	}
	return start
}

// expectDelim reads one token that must be the delimiter d.
func (j *jsonFile) expectDelim(d json.Delim) error {
	tok, err := j.dec.Token()
	if err != nil {
		return j.malformed(err)
	}
	if got, ok := tok.(json.Delim); !ok || got != d {
		return j.malformed(fmt.Errorf("expected %q, found %v", d, tok))
	}
	return nil
}

// object walks a top-level JSON object: handlers[key] consumes the value
// of key (usually through array); other values are skipped.
func (j *jsonFile) object(handlers map[string]func() error) error {
	if err := j.expectDelim('{'); err != nil {
		return err
	}
	for j.dec.More() {
		tok, err := j.dec.Token()
		if err != nil {
			return j.malformed(err)
		}
		key, _ := tok.(string)
		if h, ok := handlers[key]; ok {
			if err := h(); err != nil {
				return err
			}
			continue
		}
		if err := j.skip(); err != nil {
			return err
		}
	}
	if err := j.expectDelim('}'); err != nil {
		return err
	}
	return j.end()
}

// skip consumes one value token by token (never holding it whole).
func (j *jsonFile) skip() error {
	depth := 0
	for {
		tok, err := j.dec.Token()
		if err != nil {
			return j.malformed(err)
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
			} else {
				depth--
			}
		}
		if depth == 0 {
			return nil
		}
	}
}

// array decodes each element of a JSON array into a fresh T and passes it
// to fn. Elements of the wrong shape go to badRecord; syntax errors end the
// file.
func array[T any](j *jsonFile, fn func(v *T, offset int64) error) error {
	if err := j.expectDelim('['); err != nil {
		return err
	}
	for j.dec.More() {
		off := j.dec.InputOffset()
		var v T
		if err := j.dec.Decode(&v); err != nil {
			var typ *json.UnmarshalTypeError
			if errors.As(err, &typ) && j.badRecord != nil {
				j.badRecord(off, err)
				continue
			}
			return j.malformedAt(off, err)
		}
		if err := fn(&v, off); err != nil {
			return err
		}
	}
	return j.expectDelim(']')
}

// end checks that nothing but white space follows the top-level value.
func (j *jsonFile) end() error {
	if _, err := j.dec.Token(); err != io.EOF {
		if err == nil {
			err = errors.New("data after the top-level value")
		}
		return j.malformed(err)
	}
	return nil
}
