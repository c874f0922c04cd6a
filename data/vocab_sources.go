package data

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/e2evlp/vlp/sharding"
)

// WordCounts counts the words of texts as the uncased BasicTokenizer splits
// them: the input of BuildVocabFromCounts, gathered one text at a time so
// that no corpus is held in memory.
type WordCounts map[string]int

// Add counts the words of text.
func (wc WordCounts) Add(text string) {
	for _, w := range (BasicTokenizer{Lower: true}).Tokenize(text) {
		wc[w]++
	}
}

// AddCaptionFile counts the texts of a file: a COCO captions file (.json,
// every annotations[].caption) or plain text with one caption per line. It
// returns the number of texts read.
func (wc WordCounts) AddCaptionFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("data: %w", err)
	}
	defer f.Close()
	if strings.HasSuffix(strings.ToLower(path), ".json") {
		return wc.addCOCOCaptions(f, path)
	}
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		if line := strings.TrimSpace(sc.Text()); line != "" {
			wc.Add(line)
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return n, fmt.Errorf("data: %s: %w", path, err)
	}
	return n, nil
}

// addCOCOCaptions streams a COCO captions file's "annotations" array.
func (wc WordCounts) addCOCOCaptions(r io.Reader, path string) (int, error) {
	dec := json.NewDecoder(bufio.NewReaderSize(r, 1<<20))
	bad := func(err error) error {
		return fmt.Errorf("data: %s: byte %d: %w", path, dec.InputOffset(), err)
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return 0, bad(errors.New("not a JSON object"))
	}
	n := 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return n, bad(err)
		}
		if t != "annotations" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return n, bad(err)
			}
			continue
		}
		if t, err := dec.Token(); err != nil || t != json.Delim('[') {
			return n, bad(errors.New(`"annotations" is not an array`))
		}
		for dec.More() {
			var a struct {
				Caption string `json:"caption"`
			}
			if err := dec.Decode(&a); err != nil {
				return n, bad(err)
			}
			wc.Add(a.Caption)
			n++
		}
		if _, err := dec.Token(); err != nil {
			return n, bad(err)
		}
	}
	return n, nil
}

// AddShards counts every text of every shard of the manifest in dir,
// verifying the shards' checksums. It returns the number of texts read.
func (wc WordCounts) AddShards(dir string) (int, error) {
	m, err := sharding.ReadManifest(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, info := range m.Shards {
		r, err := sharding.OpenShard(dir, info)
		if err != nil {
			return n, err
		}
		for s, err := range r.All() {
			if err != nil {
				r.Close()
				return n, err
			}
			for _, t := range s.Meta.Texts {
				wc.Add(t.Text)
				n++
			}
		}
		r.Close()
	}
	return n, nil
}
