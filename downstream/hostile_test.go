package downstream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// hugePNG is a valid PNG header declaring width × height pixels, with no
// pixel data: a decompression bomb's announcement.
func hugePNG(t *testing.T, w, h int) []byte {
	b := pngBytes(t, 1, 1)
	// IHDR's width and height are bytes 16..23, its CRC (over type and
	// data, bytes 12..28) bytes 29..32.
	binary.BigEndian.PutUint32(b[16:], uint32(w))
	binary.BigEndian.PutUint32(b[20:], uint32(h))
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

func checkSkips(t *testing.T, rep *Report, unit string, want map[string]int64) {
	t.Helper()
	if err := rep.Balanced(); err != nil {
		t.Error(err)
	}
	got := rep.Skipped(unit)
	for reason, n := range want {
		if got[reason] != n {
			t.Errorf("%s %s: %d skipped, want %d (all: %v; examples %v)", unit, reason, got[reason], n, got, rep.Examples)
		}
	}
	for reason, n := range got {
		if _, ok := want[reason]; !ok && n > 0 {
			t.Errorf("%s %s: %d skipped, want none (examples %v)", unit, reason, n, rep.Examples[unit+" "+reason])
		}
	}
}

func vqaQ(id, image int, question string) string {
	return fmt.Sprintf(`{"image_id":%d,"question":%s,"question_id":%d}`, image, question, id)
}

func vqaA(id, image int, answers ...string) string {
	var as []string
	for i, a := range answers {
		as = append(as, fmt.Sprintf(`{"answer":"%s","answer_confidence":"yes","answer_id":%d}`, a, i+1))
	}
	mc := "red"
	if len(answers) > 0 {
		mc = answers[0]
	}
	return fmt.Sprintf(`{"question_type":"what","multiple_choice_answer":%q,"answers":[%s],"image_id":%d,"answer_type":"other","question_id":%d}`,
		mc, strings.Join(as, ","), image, id)
}

func TestVQAHostileRecords(t *testing.T) {
	dir := t.TempDir()
	img := func(id int) string { return filepath.Join("val2014", fmt.Sprintf("COCO_val2014_%012d.jpg", id)) }
	write(t, dir, img(1), string(pngBytes(t, 8, 8)))
	write(t, dir, img(2), string(hugePNG(t, 100000, 100000)))
	write(t, dir, img(3), "not an image at all")
	ten := strings.Split("red red red red red red red red red red", " ")
	long := `"` + strings.Repeat("why ", 300) + `?"`
	questions := []string{
		vqaQ(10, 1, `"what color is it?"`),
		vqaQ(10, 1, `"what color is it?"`), // identical copy: one kept
		vqaQ(11, 1, `"is it red?"`),
		vqaQ(11, 1, `"is it blue?"`), // conflicting copies: none kept
		vqaQ(12, 1, "\"bad \xff byte\""),
		vqaQ(13, 1, `"lone \ud800 surrogate"`),
		vqaQ(14, 1, long), // over MaxRecordBytes
		`{"image_id":"1","question":"string id","question_id":15}`,
		`{"question":"no ids"}`,
		vqaQ(16, 2, `"bomb?"`),
		vqaQ(17, 3, `"corrupt?"`),
		vqaQ(18, 4, `"missing image?"`),
		vqaQ(19, 1, `"no annotation?"`),
		vqaQ(20, 1, `"no answers?"`),
		vqaQ(21, 1, `"   "`),
		vqaQ(22, 9, `"annotated for another image"`),
	}
	annotations := []string{
		vqaA(10, 1, ten...), vqaA(10, 1, ten...), vqaA(11, 1, ten...), vqaA(12, 1, ten...), vqaA(13, 1, ten...),
		vqaA(16, 2, ten...), vqaA(17, 3, ten...), vqaA(18, 4, ten...),
		vqaA(20, 1), // no answers
		vqaA(21, 1, ten...), vqaA(22, 1, ten...),
		vqaA(99, 1, ten...),               // no such question
		vqaA(23, 1, "ok", "bad \xfe one"), // an unusable human answer; no question either
	}
	qf := write(t, dir, "q.json", `{"info":{"nested":[1,{"a":[]}]},"data_subtype":"val2014","questions":[`+strings.Join(questions, ",")+`]}`)
	af := write(t, dir, "a.json", `{"annotations":[`+strings.Join(annotations, ",\n")+`],"data_subtype":"val2014"}`)
	set, rep, err := ImportVQA(VQAConfig{Questions: qf, Annotations: af, ImageDir: filepath.Join(dir, "val2014"), Limits: Limits{MaxRecordBytes: 800}})
	if err != nil {
		var b bytes.Buffer
		if rep != nil {
			rep.WriteSummary(&b)
		}
		t.Fatalf("%v\n%s", err, b.String())
	}
	if len(set.Questions) != 1 || set.Questions[0].QuestionID != 10 || len(set.Questions[0].Answers) != 10 {
		t.Fatalf("kept %+v", set.Questions)
	}
	checkSkips(t, rep, UnitQuestion, map[string]int64{
		SkipDuplicate: 1, SkipIDConflict: 3, SkipTextInvalidUTF8: 2, SkipRecordTooLarge: 1, SkipRecordMalformed: 2,
		SkipImageUnusable: 3, SkipNoAnnotation: 2, SkipTextEmpty: 1,
	})
	checkSkips(t, rep, UnitAnnotation, map[string]int64{
		SkipDuplicate: 1, SkipAnswerCount: 1, SkipBadAnswer: 1, SkipAnnotationNoQuestion: 1, SkipQuestionLeftOut: 8,
	})
	checkSkips(t, rep, UnitImage, map[string]int64{SkipImageTooLarge: 1, SkipImageCorrupt: 1, SkipImageMissing: 1})
	if ex := rep.Examples[UnitQuestion+" "+SkipRecordTooLarge]; len(ex) != 1 || !strings.Contains(ex[0], "q.json: byte ") {
		t.Errorf("example %q does not name the file and byte", ex)
	}
}

func TestVQAMalformedFiles(t *testing.T) {
	dir := t.TempDir()
	good := `{"data_subtype":"val2014","questions":[` + vqaQ(1, 1, `"q?"`) + `]}`
	cases := map[string]string{
		"truncated":     good[:len(good)-10],
		"trailing data": good + "{}",
		"not an object": `[1,2,3]`,
		"bad element":   `{"questions":[{"question_id":1,,}]}`,
		"bad separator": `{"questions":[1 2]}`,
		"no questions":  `{"data_subtype":"val2014"}`,
		"control char":  "{\"questions\":[\"a\x01b\"]}",
		"deep nesting":  `{"info":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `,"questions":[]}`,
		"mismatched":    `{"info":[1,2},"questions":[]}`,
		"empty file":    ``,
		"bad key":       `{1:2}`,
		"bad subtype":   `{"data_subtype":"../x","questions":[]}`,
	}
	for name, content := range cases {
		p := write(t, dir, strings.ReplaceAll(name, " ", "_")+".json", content)
		_, _, err := ImportVQA(VQAConfig{Questions: p})
		if !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want ErrMalformed naming the file", name, err)
			continue
		}
		if name != "no questions" && !strings.Contains(err.Error(), ": byte ") {
			t.Errorf("%s: error %v names no byte offset", name, err)
		}
	}
	// The offset is where the fault is: the truncated file ends early.
	p := write(t, dir, "t.json", good[:len(good)-10])
	_, _, err := ImportVQA(VQAConfig{Questions: p})
	if want := fmt.Sprintf("byte %d:", len(good)-10); !strings.Contains(err.Error(), want) {
		t.Errorf("truncated: %v, want %q", err, want)
	}

	big := write(t, dir, "big.json", good)
	if _, _, err := ImportVQA(VQAConfig{Questions: big, Limits: Limits{MaxFileBytes: 20}}); !errors.Is(err, ErrFileTooLarge) {
		t.Errorf("a file over MaxFileBytes: %v", err)
	}
	empty := write(t, dir, "empty.json", `{"questions":[]}`)
	if _, _, err := ImportVQA(VQAConfig{Questions: empty}); !errors.Is(err, ErrNothingUsable) {
		t.Errorf("no questions: %v", err)
	}
	if _, _, err := ImportVQA(VQAConfig{}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("no file named: %v", err)
	}
}

func TestNLVR2HostileLines(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"dev-1-0-img0.png", "dev-1-0-img1.png", "dev-1-1-img0.png", "dev-2-0-img0.png", "dev-2-0-img1.png"} {
		write(t, dir, filepath.Join("img", n), string(pngBytes(t, 4, 4)))
	}
	write(t, dir, filepath.Join("img", "dev-3-0-img0.png"), string(hugePNG(t, 30000, 30000)))
	write(t, dir, filepath.Join("img", "dev-3-0-img1.png"), string(pngBytes(t, 4, 4)))
	line := func(id, sentence, label string) string {
		return fmt.Sprintf(`{"identifier":%q,"sentence":%s,"label":%s,"left_url":"u","right_url":"v"}`, id, sentence, label)
	}
	lines := []string{
		line("dev-1-0-0", `"the left image has more circles"`, `"True"`),
		line("dev-1-0-0", `"the left image has more circles"`, `"True"`), // duplicate
		line("dev-1-0-1", `"a statement"`, `"false"`),
		line("dev-2-0-0", `"one"`, `"True"`),
		line("dev-2-0-0", `"one"`, `"False"`), // conflict: both go
		"this is not json",
		`[1,2]`,
		line("dev-1-0-2", `"`+strings.Repeat("x", 900)+`"`, `"True"`), // too large
		line("../../etc-1-0-0", `"escape"`, `"True"`),
		line("dev-1-x-0", `"pair not a number"`, `"True"`),
		line("dev-1-0-3", `"maybe"`, `"Maybe"`),
		line("dev-1-0-4", "\"bad \xc3\x28 utf8\"", `"True"`),
		line("dev-1-1-0", `"right image missing"`, `"True"`),
		line("dev-3-0-0", `"bomb"`, `"True"`),
		line("dev-1-0-5", `"unlabelled"`, `null`),
		"",
		`{"sentence":"no identifier"}`,
	}
	f := write(t, dir, "dev.json", strings.Join(lines, "\n")+"\n")
	set, rep, err := ImportNLVR2(NLVR2Config{File: f, ImageDir: filepath.Join(dir, "img"), Limits: Limits{MaxRecordBytes: 600}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range set.Examples {
		ids = append(ids, e.Identifier)
	}
	if got := strings.Join(ids, " "); got != "dev-1-0-0 dev-1-0-1 dev-1-0-5" {
		t.Errorf("kept %s", got)
	}
	if e := set.Examples[2]; e.Labelled {
		t.Errorf("a null label read as %+v", e)
	}
	checkSkips(t, rep, UnitExample, map[string]int64{
		SkipDuplicate: 1, SkipIDConflict: 2, SkipRecordMalformed: 2, SkipRecordTooLarge: 1, SkipBadIdentifier: 3,
		SkipBadLabel: 1, SkipTextInvalidUTF8: 1, SkipImageUnusable: 2,
	})
	checkSkips(t, rep, UnitImage, map[string]int64{SkipImageMissing: 1, SkipImageTooLarge: 1})
	if ex := rep.Examples[UnitExample+" "+SkipRecordMalformed]; len(ex) == 0 || !strings.Contains(ex[0], "dev.json: line 6") {
		t.Errorf("example %q does not name the line", ex)
	}
}

func TestKarpathyHostileEntries(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "val2014/a.jpg", string(pngBytes(t, 4, 4)))
	sent := func(id int, raw string) string {
		return fmt.Sprintf(`{"tokens":["a","red","circle"],"raw":%s,"imgid":0,"sentid":%d}`, raw, id)
	}
	entry := func(imgid int, path, name, split string, sents ...string) string {
		return fmt.Sprintf(`{"filepath":%q,"filename":%q,"imgid":%d,"split":%q,"sentences":[%s],"cocoid":%d}`,
			path, name, imgid, split, strings.Join(sents, ","), imgid+1)
	}
	entries := []string{
		entry(0, "val2014", "a.jpg", "test", sent(1, `"A red circle."`), sent(2, "\"bad \xff\""), sent(2, "\"bad \xff\""), sent(3, `""`)),
		entry(0, "val2014", "a.jpg", "test", sent(1, `"A red circle."`), sent(2, "\"bad \xff\""), sent(2, "\"bad \xff\""), sent(3, `""`)), // identical copy
		entry(1, "..", "passwd", "train", sent(10, `"escape"`)),
		entry(2, "val2014", "/etc/passwd", "train", sent(11, `"absolute"`)),
		entry(3, "val2014", "a.jpg", "holdout", sent(12, `"unknown split"`)),
		entry(4, "val2014", "missing.jpg", "val", sent(13, `"no file"`)),
		entry(5, "val2014", "a.jpg", "val", sent(1, `"A red circle."`)), // sentid 1 again, another image: conflict
		entry(6, "val2014", "a.jpg", "val", sent(20, `"   "`)),          // no usable sentence
		`{"filename":"x.jpg"}`,
	}
	f := write(t, dir, "dataset_coco.json", `{"images":[`+strings.Join(entries, ",")+`],"dataset":"coco"}`)
	set, rep, err := ImportKarpathy(KarpathyConfig{File: f, ImageDir: dir})
	if !errors.Is(err, ErrNothingUsable) {
		t.Fatalf("every entry is unusable, yet: %v %+v", err, set)
	}
	checkSkips(t, rep, UnitImage, map[string]int64{
		SkipDuplicate: 1, SkipUnsafePath: 2, SkipBadSplit: 1, SkipImageUnusable: 1, SkipImageNoText: 3, SkipRecordMalformed: 1,
	})
	checkSkips(t, rep, UnitSentence, map[string]int64{
		SkipIDConflict: 2, SkipTextInvalidUTF8: 1, SkipDuplicate: 1, SkipTextEmpty: 2, SkipImageLeftOut: 4,
	})
	checkSkips(t, rep, UnitImageFile, map[string]int64{SkipImageMissing: 1})
}
