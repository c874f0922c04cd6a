package sharding

import (
	"bytes"
	"encoding/json"
	"errors"
	"image/jpeg"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Fuzz targets of the importer's parsers: the streaming JSON reader, the
// COCO and VG record decoders, the tar shard reader and the JPEG header
// check. Their seed corpora are in testdata/fuzz/<target>; `go test` runs
// the seeds, scripts/fuzz.sh fuzzes each target for a while.

// FuzzJSONScan: the scanner accepts exactly what encoding/json accepts,
// captures exactly the value's bytes, and reports errors at an offset
// inside the input; the file walker never panics and always names the
// file and the byte.
func FuzzJSONScan(f *testing.F) {
	for _, s := range []string{`{"images":[{"id":1}],"annotations":[]}`, `[1, -0.5e+3, "a\"\\u00e9", true, null, {}]`,
		`{"a":[1,2`, `[01]`, `"\ud800"`, "[\"\xff\"]", ` {"k" : [ ] } `, `{"a":1}x`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, bufSize := range []int{1, 7, 4096} {
			sc := newJSONScanner(bytes.NewReader(data), bufSize)
			err := sc.value()
			ok := err == nil
			if ok {
				end, err := sc.atEnd()
				ok = err == nil && end
			}
			if ok != json.Valid(data) {
				t.Fatalf("buffer %d: scanner says valid=%v (%v), encoding/json says %v", bufSize, ok, err, !ok)
			}
			var se *scanError
			if errors.As(err, &se) && (se.off < 0 || se.off > int64(len(data))) {
				t.Fatalf("error offset %d outside [0, %d]: %v", se.off, len(data), err)
			}

			// Capture: the value's bytes, or over when longer than the limit.
			for _, limit := range []int{3, 1 << 20} {
				sc := newJSONScanner(bytes.NewReader(data), bufSize)
				raw, over, err := sc.captureValue(limit)
				if err != nil {
					continue
				}
				lead := len(data) - len(bytes.TrimLeft(data, " \t\r\n"))
				want := data[lead:sc.offset()]
				if over != (len(want) > limit) || !over && !bytes.Equal(raw, want) {
					t.Fatalf("limit %d: captured %q (over %v), want %q", limit, raw, over, want)
				}
			}
		}

		// The walkers never panic and name the file and the byte.
		j := newJSONFile(bytes.NewReader(data), "f.json", 64)
		n := 0
		err := j.object(map[string]func() error{"a": func() error { return j.array(func(e element) error { n++; return nil }) }})
		if err != nil && (!errors.Is(err, ErrMalformedJSON) || !strings.Contains(err.Error(), "f.json: byte ")) {
			t.Fatalf("object walker: %v", err)
		}
		j = newJSONFile(bytes.NewReader(data), "g.json", 64)
		err = j.topArray(func(e element) error {
			if !e.tooLarge && !json.Valid(e.raw) || e.tooLarge != (e.size > 64) {
				t.Fatalf("element at %d: %q (size %d, tooLarge %v)", e.off, e.raw, e.size, e.tooLarge)
			}
			return nil
		})
		if err != nil && (!errors.Is(err, ErrMalformedJSON) || !strings.Contains(err.Error(), "g.json: byte ")) {
			t.Fatalf("array walker: %v", err)
		}
	})
}

// FuzzCOCORecord: the COCO decoders never panic; what they keep has ids in
// range and texts that are valid UTF-8, cleaned and within the limit; and
// jsonText agrees with encoding/json on every valid string.
func FuzzCOCORecord(f *testing.F) {
	for _, s := range []string{`{"id":1,"image_id":2,"caption":"A  dog "}`, `{"id":3,"image_id":2,"category_id":7,"bbox":[1,2,3,4],"iscrowd":0}`,
		`{"id":2,"file_name":"x.jpg","width":640,"height":480}`, `{"id":7,"name":"teddy bear"}`, "{\"id\":1,\"image_id\":2,\"caption\":\"\xff\"}",
		`{"id":1,"image_id":2,"caption":"\ud83d\ude00 \ud800"}`, `"caf\u00e9"`} {
		f.Add([]byte(s))
	}
	const maxText = 40
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return // the scanner hands decoders valid JSON only
		}
		checkText := func(what, s string) {
			if !utf8.ValidString(s) || len(s) > maxText || s == "" || s != strings.Join(strings.Fields(s), " ") {
				t.Fatalf("%s: kept text %q", what, s)
			}
		}
		if _, rec, err := decodeCOCOCaption(data, maxText, place{}); err == nil {
			if rec.ID == 0 || rec.ID > idLowMask || (rec.Def == nil) == (rec.Text == "") {
				t.Fatalf("caption %+v", rec)
			}
			if rec.Def == nil {
				checkText("caption", rec.Text)
			}
		}
		if imageID, rec, err := decodeCOCOInstance(data); err == nil && (imageID == 0 || rec.ID == 0 || rec.ID > idLowMask) {
			t.Fatalf("instance %d %+v", imageID, rec)
		}
		if im, err := decodeCOCOImage(data); err == nil && (im.ID == 0 || im.ID > idLowMask) {
			t.Fatalf("image %+v", im)
		}
		if _, name, def, err := decodeCOCOCategory(data, maxText, place{}); err == nil && def == nil {
			checkText("category", name)
		}

		// jsonText against encoding/json.
		var std string
		if json.Unmarshal(data, &std) == nil {
			var jt jsonText
			if err := json.Unmarshal(data, &jt); err != nil {
				t.Fatalf("jsonText refused a string: %v", err)
			}
			if jt.Bad == 0 && jt.S != std {
				t.Fatalf("jsonText %q, encoding/json %q", jt.S, std)
			}
			if jt.Bad != 0 && (jt.Bad > len(jt.S) || !strings.ContainsRune(std, utf8.RuneError)) {
				t.Fatalf("jsonText marks %q bad at %d; encoding/json decodes %q", jt.S, jt.Bad, std)
			}
		}
	})
}

// FuzzVGRecord: the VG decoders never panic; decoding an element whole
// and item by item agree; kept records have ids in range and clean texts.
func FuzzVGRecord(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"regions":[{"region_id":2,"image_id":1,"x":1,"y":2,"width":3,"height":4,"phrase":"a sign"}]}`,
		`{"image_id":1,"objects":[{"object_id":5,"x":1,"y":1,"w":2,"h":2,"names":["Trees"],"merged_object_ids":[6,7]}]}`,
		`{"image_id":1,"attributes":[{"object_id":5,"attributes":["Red","red",""," "]},{"object_id":6}]}`,
		`{"image_id":1,"objects":[{"object_id":"5"},{"object_id":6,"names":["dog"]}]}`,
		`{"image_id":2,"objects":[{"id":4,"name":"man"}],"regions":[{"region_id":1,"image_id":3,"phrase":"x"}]}`,
	} {
		f.Add([]byte(s))
	}
	const maxText = 40
	f.Fuzz(func(t *testing.T, data []byte) {
		if !json.Valid(data) {
			return
		}
		checkID := func(what string, id uint64) {
			if id == 0 || id > idLowMask {
				t.Fatalf("%s id %d kept", what, id)
			}
		}
		same := func(what string, a, b any) {
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("%s: whole %+v, item by item %+v", what, a, b)
			}
		}
		rd := regionDecoder(maxText, place{})
		if id, recs, bad, ok := rd.whole(data); ok {
			id2, recs2, bad2, err := rd.items(data)
			same("regions", []any{id, recs, bad, nil}, []any{id2, recs2, bad2, err})
		}
		if id, recs, _, err := decodeVGRegions(data, maxText, place{}); err == nil {
			checkID("image", id)
			for _, r := range recs {
				checkID("region", r.ID)
				if r.Def == nil && (!utf8.ValidString(r.Text) || len(r.Text) > maxText || r.Text == "") {
					t.Fatalf("region text %q", r.Text)
				}
			}
		}
		od := objectDecoder(maxText, place{})
		if id, recs, bad, ok := od.whole(data); ok {
			id2, recs2, bad2, err := od.items(data)
			same("objects", []any{id, recs, bad, nil}, []any{id2, recs2, bad2, err})
		}
		if _, recs, _, err := decodeVGObjects(data, maxText, place{}); err == nil {
			for _, r := range recs {
				checkID("object", r.ID)
				if (r.Def == nil) == (len(r.Names) == 0) {
					t.Fatalf("object %+v", r)
				}
				for _, n := range r.Names {
					if n == "" || !utf8.ValidString(n) || n != NormalizeName(n) {
						t.Fatalf("object name %q", n)
					}
				}
			}
		}
		ad := attributeDecoder(maxText, place{})
		if id, recs, bad, ok := ad.whole(data); ok {
			id2, recs2, bad2, err := ad.items(data)
			same("attributes", []any{id, recs, bad, nil}, []any{id2, recs2, bad2, err})
		}
		if _, recs, _, err := decodeVGAttributes(data, maxText, place{}); err == nil {
			for _, r := range recs {
				checkID("attribute entry", r.ID)
				if r.items() == 0 {
					t.Fatalf("an entry with no attributes kept: %+v", r)
				}
				for _, n := range r.Attrs {
					if n == "" || !utf8.ValidString(n) || n != NormalizeAttribute(n) {
						t.Fatalf("attribute %q", n)
					}
				}
			}
		}
	})
}

// FuzzShardReader: reading any bytes as a shard never panics, never
// allocates what a header merely claims, and fails only with
// ErrCorruptShard; a sample it returns has the structure a writer gives.
func FuzzShardReader(f *testing.F) {
	var buf bytes.Buffer
	w := NewShardWriter(&buf, "seed.tar")
	for i := 0; i < 2; i++ {
		id, _ := MakeID(IDSpaceCOCO, uint64(i+1))
		meta := &SampleMeta{Key: SampleKey(id), ImageID: id, Source: "coco", Texts: []Text{{PairID: id, Kind: "caption", Text: "a"}}}
		if err := w.Add(meta, []byte{0xff, 0xd8, byte(i)}); err != nil {
			f.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(buf.Bytes()[:700])
	f.Fuzz(func(t *testing.T, data []byte) {
		r := NewReader(bytes.NewReader(data), "fuzz.tar")
		for i := 0; ; i++ {
			s, err := r.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				if !errors.Is(err, ErrCorruptShard) {
					t.Fatalf("error %v is no ErrCorruptShard", err)
				}
				break
			}
			if s.Index != i || s.Meta.Key == "" || len(s.JPEG) > len(data) {
				t.Fatalf("sample %d: %+v", i, s.Meta)
			}
		}
		if _, err := ReadSampleAt(bytes.NewReader(data), "fuzz.tar", 0, 0); err != nil && !errors.Is(err, ErrCorruptShard) {
			t.Fatalf("ReadSampleAt: %v", err)
		}
	})
}

// FuzzJPEGHeader: the header check never panics and sees the size
// image/jpeg would allocate: whenever image/jpeg reads a header, it is the
// same size, and a decode never yields another.
func FuzzJPEGHeader(f *testing.F) {
	for _, size := range [][2]int{{1, 1}, {16, 16}, {33, 17}} {
		f.Add(testJPEG(f, size[0], size[1]))
	}
	f.Add(bombJPEG(f, 65000, 65000))
	f.Add([]byte{0xff, 0xd8, 0xff, 0xff, 0x00, 0xff, 0xd0, 0xff, 0xc0, 0x00, 0x0b, 0x08, 0x00, 0x01, 0x00, 0x01, 0x01, 0x01, 0x11, 0x00})
	f.Fuzz(func(t *testing.T, data []byte) {
		info, herr := jpegHeader(data)
		cfg, cerr := jpeg.DecodeConfig(bytes.NewReader(data))
		if cerr == nil && cfg.Width > 0 && cfg.Height > 0 {
			if herr != nil || info.Width != cfg.Width || info.Height != cfg.Height {
				t.Fatalf("header %+v (%v), image/jpeg %dx%d", info, herr, cfg.Width, cfg.Height)
			}
		}
		if herr != nil {
			return
		}
		if info.Width < 1 || info.Height < 1 || info.Width > 65535 || info.Height > 65535 {
			t.Fatalf("header %+v", info)
		}
		const side = 256
		if _, reason, err := checkImage(data, side, side*side); (err == nil) != (info.Width <= side && info.Height <= side) ||
			err != nil && reason != SkipImageTooLarge {
			t.Fatalf("checkImage %+v: %s %v", info, reason, err)
		}
		if info.Width <= side && info.Height <= side {
			b, reason, err := decodeJPEG(data, side, side*side, newDecodeBudget(maxDecodeCost(side, side*side)))
			if err == nil && (b.Dx() != info.Width || b.Dy() != info.Height) {
				t.Fatalf("decoded %v, header %+v", b, info)
			}
			if err != nil && reason != SkipImageCorrupt {
				t.Fatalf("decode: %s %v", reason, err)
			}
		}
	})
}

func ExampleReport_WriteSummary() {
	rep := newReport()
	rep.read(UnitImage, 3)
	rep.kept(UnitImage, 2)
	rep.skip(UnitImage, SkipImageTooLarge, 1, "coco_000000000002: image 65000×65000 exceeds 16384×16384")
	rep.ShardsBuilt = 1
	rep.WriteSummary(os.Stdout)
	// Output:
	// shards: 1 written, 0 kept from a previous run
	// repaired: 0 boxes clipped to the image, 0 VG objects merged into COCO ones, 0 images with a size other than annotated
	// input, by unit (read = kept + skipped):
	//   image               3 =          2 +        1
	// skipped, by unit and reason:
	//   image      image_too_large                    1   e.g. coco_000000000002: image 65000×65000 exceeds 16384×16384
}
