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
	off := j.dec.InputOffset()
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		off = syn.Offset
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("unexpected end of file (truncated?)")
	}
	return fmt.Errorf("%w: %s: byte %d: %v", ErrMalformedJSON, j.path, off, err)
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
			return j.malformed(err)
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
