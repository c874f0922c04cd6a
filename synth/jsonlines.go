package synth

import (
	"bufio"
	"encoding/json"
	"os"
)

// jsonLines writes one JSON value per line (NLVR2's files).
type jsonLines struct {
	f *os.File
	w *bufio.Writer
}

func createLines(path string) (*jsonLines, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	return &jsonLines{f: f, w: bufio.NewWriterSize(f, 1<<20)}, nil
}

func (l *jsonLines) add(v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	l.w.Write(data)
	return l.w.WriteByte('\n')
}

func (l *jsonLines) close() error {
	if err := l.w.Flush(); err != nil {
		l.f.Close()
		return err
	}
	return l.f.Close()
}
