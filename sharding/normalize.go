package sharding

import (
	"fmt"
	"sort"
	"strings"
)

// NormalizeName is the normalisation applied to Visual Genome object names
// (and COCO category names) before counting and matching:
//
//  1. lower-case; trim; strip surrounding punctuation (.,;:!?"'); collapse
//     runs of white space into one space;
//  2. singularise the last word when it is a simple plural: an irregular
//     form from a short table (men→man, leaves→leaf, …); "-ies"→"-y"
//     (berries→berry); "-ches", "-shes", "-sses", "-xes", "-zzes" drop "es"
//     (benches→bench, crosses→cross, boxes→box); otherwise a final "s" is
//     dropped unless the word ends in "ss", "us", "is" or "ous", is at most
//     3 letters, or is a plural-only noun (pants, jeans, glasses, …).
func NormalizeName(s string) string {
	s = NormalizeAttribute(s)
	if s == "" {
		return s
	}
	i := strings.LastIndexByte(s, ' ')
	return s[:i+1] + singular(s[i+1:])
}

// NormalizeAttribute is step 1 of NormalizeName only: attributes are
// adjectives and participles ("glass", "leaves"-like plurals are rare and
// meaningful), so they are not singularised.
func NormalizeAttribute(s string) string {
	s = strings.ToLower(s)
	s = strings.Trim(s, " \t\r\n.,;:!?\"'")
	return strings.Join(strings.Fields(s), " ")
}

var irregular = map[string]string{
	"men": "man", "women": "woman", "children": "child", "people": "person",
	"feet": "foot", "teeth": "tooth", "mice": "mouse", "geese": "goose",
	"leaves": "leaf", "shelves": "shelf", "knives": "knife", "wolves": "wolf",
	"loaves": "loaf", "halves": "half", "scarves": "scarf", "wives": "wife",
	"lives": "life", "calves": "calf", "hooves": "hoof",
}

var pluralOnly = map[string]bool{
	"pants": true, "jeans": true, "shorts": true, "glasses": true, "sunglasses": true,
	"scissors": true, "trousers": true, "goggles": true, "clothes": true, "skis": true,
	"tennis": true, "news": true, "species": true, "series": true, "headphones": true,
	"binoculars": true, "tongs": true, "pliers": true, "stairs": true, "sweatpants": true,
}

func singular(w string) string {
	if v, ok := irregular[w]; ok {
		return v
	}
	if len(w) <= 3 || pluralOnly[w] || !strings.HasSuffix(w, "s") {
		return w
	}
	switch {
	case strings.HasSuffix(w, "ies") && len(w) > 4:
		return w[:len(w)-3] + "y"
	case strings.HasSuffix(w, "ches"), strings.HasSuffix(w, "shes"), strings.HasSuffix(w, "sses"),
		strings.HasSuffix(w, "xes"), strings.HasSuffix(w, "zzes"):
		return w[:len(w)-2]
	case strings.HasSuffix(w, "ss"), strings.HasSuffix(w, "us"), strings.HasSuffix(w, "is"), strings.HasSuffix(w, "ous"):
		return w
	}
	return w[:len(w)-1]
}

// Vocabulary sizes of the usual setup (Anderson et al.'s VG split).
const (
	DefaultClasses    = 1600
	DefaultAttributes = 400
)

// counter counts normalised names.
type counter map[string]int64

// top returns the k most frequent names, ties broken by name.
func (c counter) top(k int) []string {
	names := make([]string, 0, len(c))
	for n := range c {
		if n != "" {
			names = append(names, n)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if c[names[i]] != c[names[j]] {
			return c[names[i]] > c[names[j]]
		}
		return names[i] < names[j]
	})
	if len(names) > k {
		names = names[:k]
	}
	return names
}

// cocoSynonyms maps COCO category names with no exact entry in the VG
// vocabulary to the VG name that means the same thing.
var cocoSynonyms = map[string][]string{
	"sports ball":    {"ball"},
	"dining table":   {"table"},
	"potted plant":   {"plant"},
	"cell phone":     {"phone", "cellphone"},
	"hair drier":     {"hair dryer", "dryer"},
	"tv":             {"television", "tv"},
	"wine glass":     {"glass"},
	"baseball glove": {"glove", "mitt"},
	"baseball bat":   {"bat"},
	"fire hydrant":   {"hydrant"},
	"teddy bear":     {"teddy bear", "bear"},
	"tennis racket":  {"racket", "tennis racquet"},
	"motorcycle":     {"motorcycle", "motorbike"},
	"airplane":       {"airplane", "plane"},
	"couch":          {"couch", "sofa"},
	"mouse":          {"mouse"},
	"remote":         {"remote", "remote control"},
	"handbag":        {"handbag", "purse", "bag"},
	"stop sign":      {"stop sign", "sign"},
	"parking meter":  {"parking meter", "meter"},
	"traffic light":  {"traffic light", "stoplight"},
	"skis":           {"ski"},
	"donut":          {"donut", "doughnut"},
	"laptop":         {"laptop", "computer"},
}

// category is a usable COCO category: its id and name.
type category struct {
	ID   int
	Name string
}

// mapCategories maps COCO categories into the class vocabulary: by exact
// normalised name, then by the synonym table; a category with neither is
// appended to the vocabulary. classes is extended in place. A synonym only
// ever names a class of the VG vocabulary, never one that another COCO
// category added: COCO's "teddy bear" is not COCO's "bear".
func mapCategories(cats []category, classes *[]string) []CategoryMapping {
	index := make(map[string]int, len(*classes))
	for i, c := range *classes {
		index[c] = i
	}
	vg := len(*classes) // classes below vg come from VG's object names
	sorted := append([]category(nil), cats...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	var out []CategoryMapping
	for _, c := range sorted {
		name := NormalizeName(c.Name)
		m := CategoryMapping{CocoID: c.ID, Name: c.Name}
		if i, ok := index[name]; ok && name != "" {
			m.Class, m.Via = i, "name"
		} else {
			m.Via = "added"
			for _, syn := range cocoSynonyms[NormalizeAttribute(c.Name)] {
				if i, ok := index[syn]; ok && i < vg {
					m.Class, m.Via = i, "synonym"
					break
				}
			}
			if m.Via == "added" {
				if name == "" {
					name = fmt.Sprintf("coco category %d", c.ID)
				}
				*classes = append(*classes, name)
				m.Class = len(*classes) - 1
				index[name] = m.Class
			}
		}
		out = append(out, m)
	}
	return out
}
