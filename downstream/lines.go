package downstream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
)

// lineReader reads a JSON-lines file line by line, holding at most max
// bytes of a line: a longer one is read to its end and reported tooLarge.
type lineReader struct {
	name string
	f    *os.File
	r    *bufio.Reader
	max  int
	line int    // number of the line last returned, from 1
	buf  []byte // the line last returned; valid until the next call
}

func openLines(path string, lim Limits) (*lineReader, error) {
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
	return &lineReader{name: path, f: f, r: bufio.NewReaderSize(f, 64<<10), max: lim.MaxRecordBytes}, nil
}

func (l *lineReader) Close() error { return l.f.Close() }

// next returns the next line without its line ending; io.EOF after the
// last.
func (l *lineReader) next() (line []byte, tooLarge bool, err error) {
	l.buf = l.buf[:0]
	read := false
	for {
		chunk, err := l.r.ReadSlice('\n')
		if len(chunk) > 0 {
			read = true
		}
		if !tooLarge {
			if len(l.buf)+len(chunk) > l.max+2 { // +2: the line ending is not the record's
				tooLarge = true
				l.buf = l.buf[:0]
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			if !read {
				return nil, false, io.EOF
			}
		case err != nil:
			return nil, false, fmt.Errorf("downstream: %s: line %d: %w", l.name, l.line+1, err)
		}
		l.line++
		if tooLarge {
			return nil, true, nil
		}
		b := l.buf
		if n := len(b); n > 0 && b[n-1] == '\n' {
			b = b[:n-1]
		}
		if n := len(b); n > 0 && b[n-1] == '\r' {
			b = b[:n-1]
		}
		if len(b) > l.max {
			return nil, true, nil
		}
		return b, false, nil
	}
}

func (l *lineReader) where() string { return fmt.Sprintf("%s: line %d", l.name, l.line) }
