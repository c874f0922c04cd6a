package sharding

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// Hostile and damaged input, one defect per test, on hand-made files:
// each checks the counts by unit and reason and what lands in the shards
// (and, through build, that every unit adds up).

// TestImportImageLimits: images over the side, pixel-count and file-size
// limits are skipped before they are decoded, with a reason that says
// what was too large; their annotations go with them.
func TestImportImageLimits(t *testing.T) {
	h := newHandmade(t)
	h.picture("coco/train2017/1.jpg", 32, 24)
	h.write("coco/train2017/2.jpg", bombJPEG(t, 65000, 65000))
	h.picture("coco/train2017/3.jpg", 600, 400) // 240000 pixels
	big := append(testJPEG(t, 16, 16), make([]byte, 70<<10)...)
	h.write("coco/train2017/4.jpg", big) // decodes (trailing bytes are ignored), but the file is 70 KiB
	var imgs, caps []string
	for i := 1; i <= 4; i++ {
		imgs = append(imgs, fmt.Sprintf(`{"id":%d,"file_name":"%d.jpg","width":32,"height":24}`, i, i))
		caps = append(caps, fmt.Sprintf(`{"id":%d,"image_id":%d,"caption":"picture %d"}`, 10*i, i, i),
			fmt.Sprintf(`{"id":%d,"image_id":%d,"caption":"again %d"}`, 10*i+1, i, i))
	}
	h.cocoFiles(strings.Join(imgs, ","), strings.Join(caps, ","), "", "")
	_, rep, out := h.build(func(c *BuildConfig) {
		c.MaxImagePixels = 200000
		c.MaxImageBytes = 64 << 10
	})
	wantSkips(t, rep, UnitImage, map[string]int64{SkipImageTooLarge: 3})
	wantSkips(t, rep, UnitCaption, map[string]int64{SkipImageTooLarge: 6})
	wantExample(t, rep, UnitImage, SkipImageTooLarge, "coco_000000000002: image 65000×65000 exceeds 16384×16384")
	wantExample(t, rep, UnitImage, SkipImageTooLarge, "coco_000000000003: image 600×400 (240000 pixels) exceeds the 200000-pixel limit")
	wantExample(t, rep, UnitImage, SkipImageTooLarge, "file larger than the 65536-byte limit")
	if got := keys(t, out); !reflect.DeepEqual(got, []string{"coco_000000000001"}) {
		t.Fatalf("samples %v", got)
	}
}

// TestImportDuplicateIDsCOCO: images, captions, instances and categories
// that share an id are kept once when identical and not at all when they
// differ, so nothing is paired with another image's picture or text.
func TestImportDuplicateIDsCOCO(t *testing.T) {
	h := newHandmade(t)
	for _, f := range []string{"1", "1b", "2", "3", "3x", "4"} {
		h.picture("coco/train2017/"+f+".jpg", 32, 24)
	}
	im := func(id int, file string) string {
		return fmt.Sprintf(`{"id":%d,"file_name":"%s.jpg","width":32,"height":24}`, id, file)
	}
	capImages := strings.Join([]string{im(1, "1"), im(1, "1b"), im(2, "2"), im(2, "2"), im(3, "3"), im(4, "4")}, ",")
	instImages := strings.Join([]string{im(1, "1"), im(1, "1b"), im(2, "2"), im(2, "2"), im(3, "3x"), im(4, "4")}, ",")
	captions := `{"id":10,"image_id":2,"caption":"a dog"},{"id":10,"image_id":2,"caption":"a dog"},
		{"id":11,"image_id":2,"caption":"a cat"},{"id":11,"image_id":4,"caption":"a cat"},
		{"id":12,"image_id":1,"caption":"which picture?"},{"id":13,"image_id":3,"caption":"which file?"},
		{"id":14,"image_id":4,"caption":"a bird"}`
	instances := `{"id":20,"image_id":2,"category_id":1,"bbox":[1,1,10,10]},{"id":20,"image_id":2,"category_id":1,"bbox":[1,1,10,10]},
		{"id":21,"image_id":2,"category_id":1,"bbox":[1,1,10,10]},{"id":21,"image_id":2,"category_id":1,"bbox":[2,2,10,10]},
		{"id":22,"image_id":4,"category_id":5,"bbox":[1,1,10,10]}`
	categories := `{"id":1,"name":"dog"},{"id":5,"name":"cat"},{"id":5,"name":"bird"},{"id":1,"name":"dog"}`
	h.write("coco/annotations/captions_train2017.json", []byte(`{"images":[`+capImages+`],"annotations":[`+captions+`]}`))
	h.write("coco/annotations/instances_train2017.json", []byte(`{"images":[`+instImages+`],"annotations":[`+instances+`],"categories":[`+categories+`]}`))
	m, rep, out := h.build(nil)

	// Image 1: two files in both lists; image 2 listed twice alike in each;
	// image 3: a different file in each list.
	wantSkips(t, rep, UnitImage, map[string]int64{SkipDuplicate: 2, SkipIDConflict: 4})
	wantSkips(t, rep, UnitCaption, map[string]int64{SkipDuplicate: 1, SkipIDConflict: 2, SkipImageIDConflict: 2})
	wantSkips(t, rep, UnitInstance, map[string]int64{SkipDuplicate: 1, SkipIDConflict: 2, SkipObjectCategory: 1})
	wantSkips(t, rep, UnitCategory, map[string]int64{SkipDuplicate: 1, SkipIDConflict: 2})
	wantExample(t, rep, UnitInstance, SkipObjectCategory, "category 5 is listed with different names")
	want := map[string][]string{
		"coco_000000000002": {"caption 10: a dog"},
		"coco_000000000004": {"caption 14: a bird"},
	}
	if got := texts(t, out); !reflect.DeepEqual(got, want) {
		t.Fatalf("texts %q, want %q", got, want)
	}
	if s := readSamples(t, out)["coco_000000000002"]; len(s.Meta.Objects) != 1 || m.Classes[s.Meta.Objects[0].Class] != "dog" {
		t.Fatalf("objects of image 2: %+v (classes %v)", s.Meta.Objects, m.Classes)
	}
	if len(m.CocoCategories) != 1 || m.CocoCategories[0].CocoID != 1 {
		t.Fatalf("categories %+v", m.CocoCategories)
	}
}

// TestImportDuplicateIDsVG: the same for VG images, regions, objects and
// attribute entries.
func TestImportDuplicateIDsVG(t *testing.T) {
	h := newHandmade(t)
	for i := 1; i <= 4; i++ {
		h.picture(fmt.Sprintf("vg/VG_100K/%d.jpg", i), 32, 24)
	}
	images := `{"image_id":1,"width":32,"height":24},{"image_id":2,"width":32,"height":24},{"image_id":2,"width":32,"height":24},
		{"image_id":3,"width":32,"height":24},{"image_id":3,"width":64,"height":48},{"image_id":4,"width":32,"height":24}`
	reg := func(id int, phrase string) string {
		return fmt.Sprintf(`{"region_id":%d,"x":1,"y":1,"width":10,"height":10,"phrase":%q}`, id, phrase)
	}
	regions := `{"id":1,"regions":[` + reg(100, "a dog") + `,` + reg(100, "a dog") + `,` + reg(101, "on the left") + `]},
		{"id":2,"regions":[` + reg(103, "a tree") + `]},
		{"id":3,"regions":[` + reg(102, "which size?") + `]},
		{"id":4,"regions":[` + reg(101, "on the left") + `,` + reg(104, "grass") + `]}`
	obj := func(id int, name string) string {
		return fmt.Sprintf(`{"object_id":%d,"x":2,"y":2,"w":8,"h":8,"names":[%q]}`, id, name)
	}
	objects := `{"image_id":1,"objects":[` + obj(500, "dog") + `,` + obj(501, "cat") + `,` + obj(502, "tree") + `,` + obj(502, "tree") + `]},
		{"image_id":4,"objects":[` + obj(501, "cat") + `]}`
	attrs := `{"image_id":1,"attributes":[{"object_id":500,"attributes":["brown"]},{"object_id":500,"attributes":["brown"]},
			{"object_id":501,"attributes":["black"]}]},
		{"image_id":4,"attributes":[{"object_id":501,"attributes":["white"]}]}`
	h.vgFiles(images, regions, objects, attrs)
	m, rep, out := h.build(nil)

	wantSkips(t, rep, UnitImage, map[string]int64{SkipDuplicate: 1, SkipIDConflict: 2})
	wantSkips(t, rep, UnitRegion, map[string]int64{SkipDuplicate: 1, SkipIDConflict: 2, SkipImageIDConflict: 1})
	wantSkips(t, rep, UnitObject, map[string]int64{SkipDuplicate: 1, SkipIDConflict: 2})
	// The entries for object 501 differ (and name two images): a conflict too.
	wantSkips(t, rep, UnitAttribute, map[string]int64{SkipDuplicate: 1, SkipIDConflict: 2})
	want := map[string][]string{
		"vg_000000000001": {"region 100: a dog"},
		"vg_000000000002": {"region 103: a tree"},
		"vg_000000000004": {"region 104: grass"},
	}
	if got := texts(t, out); !reflect.DeepEqual(got, want) {
		t.Fatalf("texts %q, want %q", got, want)
	}
	s := readSamples(t, out)["vg_000000000001"]
	var objs []string
	for _, o := range s.Meta.Objects {
		label := m.Classes[o.Class]
		for _, a := range o.Attributes {
			label += "+" + m.Attributes[a]
		}
		objs = append(objs, label)
	}
	if !reflect.DeepEqual(objs, []string{"dog+brown", "tree"}) || len(readSamples(t, out)["vg_000000000004"].Meta.Objects) != 0 {
		t.Fatalf("objects of image 1: %v", objs)
	}
	// Attributes of objects left out never enter the vocabulary.
	if !reflect.DeepEqual(m.Attributes, []string{"brown"}) {
		t.Fatalf("attributes %v", m.Attributes)
	}
}

// TestImportTextRules: invalid UTF-8 (raw bytes or a lone surrogate
// escape) is skipped, never repaired; texts over MaxTextBytes are skipped,
// never cut; an element over MaxRecordBytes is skipped without being held.
func TestImportTextRules(t *testing.T) {
	h := newHandmade(t)
	h.picture("coco/train2017/1.jpg", 32, 24)
	h.picture("coco/train2017/2.jpg", 32, 24)
	h.picture("vg/VG_100K/7.jpg", 32, 24)
	exactly64 := strings.Repeat("x", 30) + "   " + strings.Repeat("y", 33) // 64 bytes once cleaned
	huge := strings.Repeat("a dog ", 10<<20/6)                             // ~10 MB
	huger := strings.Repeat("b", 12<<20)                                   // a 12 MB element
	captions := strings.Join([]string{
		`{"id":1,"image_id":1,"caption":"a caf\u00e9 sign"}`,
		"{\"id\":2,\"image_id\":1,\"caption\":\"bad \xff byte\"}",
		`{"id":3,"image_id":1,"caption":"lone \ud800 surrogate"}`,
		`{"id":4,"image_id":1,"caption":"` + strings.Repeat("z", 65) + `"}`,
		`{"id":5,"image_id":1,"caption":"` + exactly64 + `"}`,
		`{"id":6,"image_id":1,"caption":"` + huge + `"}`,
		`{"id":7,"image_id":2,"caption":"` + huger + `"}`,
		`{"id":8,"image_id":1,"caption":"smile \ud83d\ude00 ok"}`,
		`{"id":9,"image_id":2,"caption":"   "}`,
		`{"id":10,"image_id":2,"caption":"a second picture"}`,
	}, ",")
	h.cocoFiles(`{"id":1,"file_name":"1.jpg","width":32,"height":24},{"id":2,"file_name":"2.jpg","width":32,"height":24}`, captions, "", "")
	regions := "{\"id\":7,\"regions\":[{\"region_id\":70,\"x\":1,\"y\":1,\"width\":9,\"height\":9,\"phrase\":\"a \xc3\x28 sign\"}," +
		`{"region_id":71,"x":1,"y":1,"width":9,"height":9,"phrase":"a clean sign"}]}`
	objects := "{\"image_id\":7,\"objects\":[{\"object_id\":700,\"x\":1,\"y\":1,\"w\":9,\"h\":9,\"names\":[\"si\xffgn\"]}," +
		`{"object_id":701,"x":1,"y":1,"w":9,"h":9,"names":["sign"]}]}`
	attrs := "{\"image_id\":7,\"attributes\":[{\"object_id\":701,\"attributes\":[\"re\xe2\x82d\",\"white\"]}]}"
	h.vgFiles(`{"image_id":7,"width":32,"height":24}`, regions, objects, attrs)
	m, rep, out := h.build(func(c *BuildConfig) {
		c.MaxTextBytes = 64
		c.MaxRecordBytes = 11 << 20
	})
	wantSkips(t, rep, UnitCaption, map[string]int64{SkipTextInvalidUTF8: 2, SkipTextTooLong: 2, SkipRecordTooLarge: 1, SkipTextEmpty: 1})
	wantSkips(t, rep, UnitRegion, map[string]int64{SkipTextInvalidUTF8: 1})
	wantSkips(t, rep, UnitObject, map[string]int64{SkipTextInvalidUTF8: 1})
	wantSkips(t, rep, UnitAttribute, map[string]int64{SkipTextInvalidUTF8: 1})
	wantExample(t, rep, UnitCaption, SkipTextInvalidUTF8, "captions_train2017.json: byte ")
	wantExample(t, rep, UnitCaption, SkipTextInvalidUTF8, "caption 2: invalid UTF-8 at byte 4 of the text")
	wantExample(t, rep, UnitCaption, SkipTextTooLong, "caption 6: text of ")
	wantExample(t, rep, UnitCaption, SkipRecordTooLarge, "more than the 11534336-byte record limit")
	want := map[string][]string{
		"coco_000000000001": {"caption 1: a caf\u00e9 sign", "caption 5: " + strings.Join(strings.Fields(exactly64), " "), "caption 8: smile \U0001F600 ok"},
		"coco_000000000002": {"caption 10: a second picture"},
		"vg_000000000007":   {"region 71: a clean sign"},
	}
	if got := texts(t, out); !reflect.DeepEqual(got, want) {
		t.Fatalf("texts %q, want %q", got, want)
	}
	if !reflect.DeepEqual(m.Attributes, []string{"white"}) {
		t.Fatalf("attributes %q", m.Attributes)
	}
	// Nothing in any shard was rewritten to U+FFFD.
	for _, s := range readSamples(t, out) {
		js := fmt.Sprintf("%+v", s.Meta)
		if strings.ContainsRune(js, '\uFFFD') || bytes.Contains([]byte(js), []byte(`\ufffd`)) {
			t.Fatalf("a replacement character in %s", js)
		}
	}
}

// TestImportVGAttributes: attributes given on an object's merged id reach
// it; attributes of unknown, ambiguous or left-out objects are counted,
// and only attributes that land on kept objects make the vocabulary.
func TestImportVGAttributes(t *testing.T) {
	h := newHandmade(t)
	h.picture("vg/VG_100K/1.jpg", 40, 30)
	obj := func(id int, name, merged string) string {
		return fmt.Sprintf(`{"object_id":%d,"x":2,"y":2,"w":8,"h":8,"names":[%q],"merged_object_ids":[%s]}`, id, name, merged)
	}
	objects := `{"image_id":1,"objects":[` + strings.Join([]string{
		obj(1, "dog", "100,101"), obj(2, "cat", "200"), obj(3, "zebra", ""), obj(4, "cat", "200"), obj(5, "dog", "1")}, ",") + `]}`
	entry := func(id int, attrs string) string { return fmt.Sprintf(`{"object_id":%d,"attributes":[%s]}`, id, attrs) }
	attrs := `{"image_id":1,"attributes":[` + strings.Join([]string{
		entry(1, `"brown"`),
		entry(100, `"furry","Brown"`), // merged into 1; "Brown" is brown again
		entry(999, `"green"`),         // no such object
		entry(3, `"striped"`),         // zebra is no class: left out
		entry(200, `"purple"`),        // merged id of both 2 and 4
		entry(5, `"small"`),           // 5 lists 1 as merged, but 1 is an object's own id
	}, ",") + `]}`
	h.vgFiles(`{"image_id":1,"width":40,"height":30}`, `{"id":1,"regions":[{"region_id":9,"x":0,"y":0,"width":20,"height":20,"phrase":"two dogs and two cats"}]}`, objects, attrs)
	m, rep, out := h.build(func(c *BuildConfig) { c.Classes = 2 }) // dog, cat
	wantSkips(t, rep, UnitObject, map[string]int64{SkipObjectOutOfVocab: 1})
	wantSkips(t, rep, UnitAttribute, map[string]int64{SkipDuplicate: 1, SkipAttributeNoObject: 1, SkipAttributeObjectLeft: 1, SkipAttributeAmbiguous: 1})
	wantExample(t, rep, UnitAttribute, SkipAttributeNoObject, `no object 999 in the image (attributes ["green"])`)
	if want := []string{"brown", "furry", "small"}; !reflect.DeepEqual(m.Attributes, want) {
		t.Fatalf("attribute vocabulary %v, want %v", m.Attributes, want)
	}
	var got []string
	for _, o := range readSamples(t, out)["vg_000000000001"].Meta.Objects {
		label := m.Classes[o.Class]
		for _, a := range o.Attributes {
			label += "+" + m.Attributes[a]
		}
		got = append(got, label)
	}
	if want := []string{"dog+brown+furry", "cat", "cat", "dog+small"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("objects %v, want %v", got, want)
	}
}

// TestImportReasonsSayWhat: an object with no name is not "out of
// vocabulary", and every example names the item and what is wrong.
func TestImportReasonsSayWhat(t *testing.T) {
	h := newHandmade(t)
	h.picture("vg/VG_100K/1.jpg", 40, 30)
	objects := `{"image_id":1,"objects":[
		{"object_id":1,"x":1,"y":1,"w":5,"h":5,"names":[""]},
		{"object_id":2,"x":1,"y":1,"w":5,"h":5,"names":[]},
		{"object_id":3,"x":1,"y":1,"w":5,"h":5,"names":["  ","..."]},
		{"object_id":4,"x":1,"y":1,"w":5,"h":5,"names":["unicorn"]},
		{"object_id":5,"x":1,"y":1,"w":5,"h":5,"names":["tree"]},
		{"object_id":6,"x":1,"y":1,"w":5,"h":5,"names":["tree"]},
		{"object_id":7,"x":100,"y":1,"w":5,"h":5,"names":["tree"]}]}`
	attrs := `{"image_id":1,"attributes":[{"object_id":5,"attributes":["green"]},{"object_id":6,"attributes":["tall"]}]}`
	h.vgFiles(`{"image_id":1,"width":40,"height":30}`, `{"id":1,"regions":[{"region_id":9,"x":0,"y":0,"width":20,"height":20,"phrase":"trees"}]}`, objects, attrs)
	m, rep, out := h.build(func(c *BuildConfig) { c.Classes, c.Attributes = 1, 1 })
	wantSkips(t, rep, UnitObject, map[string]int64{SkipObjectNoName: 3, SkipObjectOutOfVocab: 1, SkipBoxOutside: 1})
	wantSkips(t, rep, UnitAttribute, map[string]int64{SkipAttributeOutOfVocab: 1})
	wantExample(t, rep, UnitObject, SkipObjectNoName, `objects.json: byte `)
	wantExample(t, rep, UnitObject, SkipObjectNoName, `object 1: no name (names [""])`)
	wantExample(t, rep, UnitObject, SkipObjectOutOfVocab, `vg_000000000001 object 4: names ["unicorn"] are no class`)
	wantExample(t, rep, UnitObject, SkipBoxOutside, `vg_000000000001 object 7: box [100 1 5 5] outside 40×30`)
	wantExample(t, rep, UnitAttribute, SkipAttributeOutOfVocab, `vg_000000000001 object 6: attribute "tall"`)
	for k, ex := range rep.Examples {
		for _, e := range ex {
			if strings.TrimSpace(e) == "" {
				t.Fatalf("an empty example for %s", k)
			}
		}
	}
	var sum strings.Builder
	rep.WriteSummary(&sum)
	if !strings.Contains(sum.String(), "object_no_name") || !strings.Contains(sum.String(), `no name (names [""])`) {
		t.Fatalf("summary:\n%s", sum.String())
	}
	var got []string
	for _, o := range readSamples(t, out)["vg_000000000001"].Meta.Objects {
		label := m.Classes[o.Class]
		for _, a := range o.Attributes {
			label += "+" + m.Attributes[a]
		}
		got = append(got, label)
	}
	if want := []string{"tree+green", "tree"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("objects %v, want %v", got, want)
	}
}

// TestImportCOCOOnlyCategories: without VG every COCO category is a class
// of its own: "teddy bear" is not mapped onto the "bear" that COCO's own
// "bear" added.
func TestImportCOCOOnlyCategories(t *testing.T) {
	h := newHandmade(t)
	h.picture("coco/train2017/1.jpg", 64, 48)
	names := []string{"person", "bear", "teddy bear", "sports ball", "dining table", "tv", "cell phone", "skis"}
	ids := []int{1, 23, 88, 37, 67, 72, 77, 35}
	var cats, insts []string
	for i, n := range names {
		cats = append(cats, fmt.Sprintf(`{"id":%d,"name":%q}`, ids[i], n))
		insts = append(insts, fmt.Sprintf(`{"id":%d,"image_id":1,"category_id":%d,"bbox":[%d,1,5,5]}`, 100+i, ids[i], 2*i))
	}
	h.cocoFiles(`{"id":1,"file_name":"1.jpg","width":64,"height":48}`, `{"id":5,"image_id":1,"caption":"things"}`, strings.Join(insts, ","), strings.Join(cats, ","))
	m, rep, out := h.build(nil)
	if len(m.Classes) != len(names) || len(m.CocoCategories) != len(names) {
		t.Fatalf("%d categories became %d classes: %v", len(names), len(m.Classes), m.Classes)
	}
	for _, cm := range m.CocoCategories {
		if cm.Via != "added" || m.Classes[cm.Class] != NormalizeName(cm.Name) {
			t.Fatalf("category %+v -> %q", cm, m.Classes[cm.Class])
		}
	}
	wantSkips(t, rep, UnitCategory, map[string]int64{})
	var got []string
	for _, o := range readSamples(t, out)["coco_000000000001"].Meta.Objects {
		got = append(got, m.Classes[o.Class])
	}
	want := []string{"person", "bear", "teddy bear", "sports ball", "dining table", "tv", "cell phone", "skis"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("object classes %q, want %q", got, want)
	}
}

// TestImportImageDataUnusable: with image_data.json malformed, the other
// VG files are not read, and the report names each of them.
func TestImportImageDataUnusable(t *testing.T) {
	h := newHandmade(t)
	h.picture("coco/train2017/1.jpg", 32, 24)
	h.picture("vg/VG_100K/1.jpg", 32, 24)
	h.cocoFiles(`{"id":1,"file_name":"1.jpg","width":32,"height":24}`, `{"id":5,"image_id":1,"caption":"a thing"}`, "", "")
	h.vgFiles(`{"image_id":1,"width":32,"height":24},{"image_id":2,`, `{"id":1,"regions":[]}`, `{"image_id":1,"objects":[]}`, `{"image_id":1,"attributes":[]}`)
	_, rep, out := h.build(nil)
	wantSkips(t, rep, UnitFile, map[string]int64{SkipFileMalformed: 1, SkipFileNotRead: 3})
	if got := keys(t, out); !reflect.DeepEqual(got, []string{"coco_000000000001"}) {
		t.Fatalf("samples %v", got)
	}
	wantSkips(t, rep, UnitImage, map[string]int64{SkipFileMalformed: 1}) // the entry read before the damage
	for _, f := range []string{"image_data.json: byte ", "region_descriptions.json: not read", "objects.json: not read", "attributes.json: not read"} {
		found := false
		for _, e := range rep.FileErrors {
			found = found || strings.Contains(e, f)
		}
		if !found {
			t.Fatalf("no file error mentions %q: %q", f, rep.FileErrors)
		}
	}
}

// TestImportNothingUsable: a run that finds nothing usable says that it
// wrote no shard, in the report and in the summary.
func TestImportNothingUsable(t *testing.T) {
	h := newHandmade(t)
	h.write("coco/train2017/1.jpg", []byte("not a picture"))
	h.cocoFiles(`{"id":1,"file_name":"1.jpg","width":32,"height":24}`, `{"id":5,"image_id":1,"caption":"a thing"}`, "", "")
	out := h.root + "/shards"
	m, rep, err := build(t, h.coco(), "", out, nil)
	if err == nil || len(m.Shards) != 0 {
		t.Fatalf("err %v, %d shards", err, len(m.Shards))
	}
	var sum strings.Builder
	rep.WriteSummary(&sum)
	if rep.ShardsBuilt != 0 || !strings.Contains(sum.String(), "shards: 0 written, 0 kept from a previous run, 1 left unwritten (no usable sample)") {
		t.Fatalf("summary:\n%s", sum.String())
	}
	wantSkips(t, rep, UnitImage, map[string]int64{SkipImageCorrupt: 1})
	wantSkips(t, rep, UnitCaption, map[string]int64{SkipImageCorrupt: 1})
}

// TestReportExamplesBounded: an example quoting a hostile text is cut, so
// the report stays small whatever the input.
func TestReportExamplesBounded(t *testing.T) {
	rep := newReport()
	rep.readSkip(UnitObject, SkipObjectNoName, 1, "object 1: no name (names [\""+strings.Repeat(" ", 10<<20)+"\"])")
	rep.readSkip(UnitObject, SkipObjectNoName, 1, "é"+strings.Repeat("é", maxExample))
	for _, e := range rep.Examples[UnitObject+" "+SkipObjectNoName] {
		if len(e) > maxExample+len("…") || !utf8.ValidString(e) {
			t.Fatalf("example of %d bytes (valid UTF-8: %v)", len(e), utf8.ValidString(e))
		}
	}
}
