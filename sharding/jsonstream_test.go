package sharding

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestMalformedJSONOffset checks that the reported byte offset points at
// the damage, for damage early, in the middle and at the end of a file.
func TestMalformedJSONOffset(t *testing.T) {
	var b strings.Builder
	b.WriteString("[")
	for i := 0; i < 2000; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `{"id":%d,"image_id":%d,"regions":[]}`, i, i)
	}
	b.WriteString("]")
	good := b.String()
	// damage replaces the first ':' at or after at (always a syntax error).
	damage := func(at int) (string, int) {
		at += strings.IndexByte(good[at:], ':')
		return good[:at] + "#" + good[at+1:], at
	}
	early, earlyAt := damage(50)
	middle, middleAt := damage(40000)
	tests := []struct {
		name string
		text string
		at   int // where the damage is
	}{
		{"early", early, earlyAt},
		{"middle", middle, middleAt},
		{"truncated", good[:len(good)-30], len(good) - 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "regions.json")
			os.WriteFile(path, []byte(tt.text), 0o644)
			j, err := openJSON(path, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			n := 0
			err = j.topArray(func(e element) error { n++; return nil })
			if !errors.Is(err, ErrMalformedJSON) || !strings.Contains(err.Error(), "regions.json: byte ") {
				t.Fatalf("error %v", err)
			}
			var off int
			fmt.Sscanf(err.Error()[strings.Index(err.Error(), "byte ")+5:], "%d", &off)
			if off < tt.at-1 || off > tt.at+1 {
				t.Fatalf("offset %d, damage at %d: %v", off, tt.at, err)
			}
		})
	}
}
