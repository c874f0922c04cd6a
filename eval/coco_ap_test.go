package eval

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/e2evlp/vlp/model"
)

// stats lists COCOStats in pycocotools' summarize order.
func (s COCOStats) list() [12]float64 {
	return [12]float64{s.AP, s.AP50, s.AP75, s.APSmall, s.APMedium, s.APLarge,
		s.AR1, s.AR10, s.AR100, s.ARSmall, s.ARMedium, s.ARLarge}
}

var statNames = [12]string{"AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"}

// TestCOCOByHand checks the evaluation on cases worked out on paper.
func TestCOCOByHand(t *testing.T) {
	const u = -1 // undefined: no ground truth in the area range
	sq := func(x, y, s float64) Box { return Box{x, y, s, s} }
	tests := []struct {
		name string
		gts  []GroundTruth
		dets []Detection
		want [12]float64
	}{{
		// One small box found exactly.
		name: "exact",
		gts:  []GroundTruth{{Image: 1, Box: sq(0, 0, 10)}},
		dets: []Detection{{Image: 1, Score: 0.9, Box: sq(0, 0, 10)}},
		want: [12]float64{1, 1, 1, 1, u, u, 1, 1, 1, 1, u, u},
	}, {
		// A miss (IoU 1/3) scored above the hit: precision 0 then ½, made
		// monotone to ½ everywhere; with one detection per image the
		// recall is 0.
		name: "false positive first",
		gts:  []GroundTruth{{Image: 1, Box: sq(0, 0, 10)}},
		dets: []Detection{{Image: 1, Score: 0.9, Box: sq(5, 0, 10)}, {Image: 1, Score: 0.8, Box: sq(0, 0, 10)}},
		want: [12]float64{0.5, 0.5, 0.5, 0.5, u, u, 0, 1, 1, 1, u, u},
	}, {
		// Two detections inside a crowd, scored above the hit: matched to
		// the crowd (IoU over the detection's own area is 1), so ignored:
		// AP 1. Counted as false positives they would give ⅓.
		name: "crowd",
		gts:  []GroundTruth{{Image: 1, Box: sq(0, 0, 10)}, {Image: 1, Box: sq(20, 20, 30), Crowd: true}},
		dets: []Detection{{Image: 1, Score: 0.95, Box: sq(25, 25, 10)}, {Image: 1, Score: 0.92, Box: sq(30, 30, 5)},
			{Image: 1, Score: 0.9, Box: sq(0, 0, 10)}},
		want: [12]float64{1, 1, 1, 1, u, u, 0, 1, 1, 1, u, u},
	}, {
		// An object inside a crowd, found exactly: the object, sorted
		// first, takes the detection, though the crowd's IoU is as high.
		name: "object in a crowd",
		gts:  []GroundTruth{{Image: 1, Box: sq(0, 0, 10)}, {Image: 1, Box: sq(0, 0, 20), Crowd: true}},
		dets: []Detection{{Image: 1, Score: 0.9, Box: sq(0, 0, 10)}},
		want: [12]float64{1, 1, 1, 1, u, u, 1, 1, 1, 1, u, u},
	}, {
		// A small and a large box, both found; a large false positive on
		// another image scored first: it counts in "all" and "large"
		// (precision 0, ½, ⅔ → ⅔ and ½) and is outside "small".
		name: "areas",
		gts:  []GroundTruth{{Image: 1, Box: sq(0, 0, 10)}, {Image: 1, Box: sq(100, 100, 200)}},
		dets: []Detection{{Image: 2, Score: 0.95, Box: sq(300, 300, 150)}, {Image: 1, Score: 0.9, Box: sq(0, 0, 10)},
			{Image: 1, Score: 0.85, Box: sq(100, 100, 200)}},
		want: [12]float64{2.0 / 3, 2.0 / 3, 2.0 / 3, 1, u, 0.5, 0.5, 1, 1, 1, u, 1},
	}, {
		// The "area" field, not the box, decides the range: a 50×50 box
		// annotated with area 500 is small.
		name: "area field",
		gts:  []GroundTruth{{Image: 1, Box: sq(0, 0, 50), Area: 500}},
		dets: []Detection{{Image: 1, Score: 0.9, Box: sq(0, 0, 50)}},
		want: [12]float64{1, 1, 1, 1, u, u, 1, 1, 1, 1, u, u},
	}, {
		// IoU 0.6 (a 10×10 box shifted by 2.5): a hit at .50–.60, a miss
		// above: AP is 3 of 10 thresholds; AP75 is 0.
		name: "iou thresholds",
		gts:  []GroundTruth{{Image: 1, Box: sq(0, 0, 10)}},
		dets: []Detection{{Image: 1, Score: 0.9, Box: Box{2.5, 0, 10, 10}}},
		want: [12]float64{0.3, 1, 0, 0.3, u, u, 0.3, 0.3, 0.3, 0.3, u, u},
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, err := EvaluateCOCO([]int{1, 2}, []int{0}, tc.gts, tc.dets)
			if err != nil {
				t.Fatal(err)
			}
			got := res.Stats.list()
			for i := range got {
				near(t, statNames[i], got[i], tc.want[i], 1e-9)
			}
		})
	}
	if _, err := EvaluateCOCO([]int{1}, []int{0}, nil, []Detection{{Image: 7}}); err == nil {
		t.Error("a detection on an unknown image: no error")
	}
}

func TestIoUByHand(t *testing.T) {
	near(t, "half overlap", IoU(Box{0, 0, 10, 10}, Box{5, 0, 10, 10}, false), 50.0/150, 1e-15)
	near(t, "crowd", IoU(Box{0, 0, 10, 10}, Box{5, 0, 100, 100}, true), 0.5, 1e-15)
	near(t, "touching", IoU(Box{0, 0, 10, 10}, Box{10, 0, 10, 10}, false), 0, 0)
}

func TestMatchedAttributes(t *testing.T) {
	gts := []GroundTruth{{Attributes: []int{1, 6}}, {Attributes: []int{2, 7}}, {Attributes: []int{3}}, {}}
	dets := []Detection{{Attributes: []int{6, 1}}, {Attributes: []int{7, 4}}, {Attributes: []int{5, 3}}, {Attributes: []int{1}}}
	got := MatchedAttributes(dets, gts, []Match{{0, 0}, {1, 1}, {2, 2}, {3, 3}})
	// Object 0: exact (order aside) and top-1; object 1: top-1 only;
	// object 2: neither; object 3 has no attribute and is not counted.
	if want := (AttributeAccuracy{Objects: 3, Top1: 2, Exact: 1}); got != want {
		t.Fatalf("MatchedAttributes = %+v, want %+v", got, want)
	}
}

type cocoCase struct {
	Images  []int        `json:"images"`
	Classes []int        `json:"classes"`
	GTs     []cocoGTJSON `json:"gts"`
	Dets    []cocoDTJSON `json:"dets"`
}

type cocoGTJSON struct {
	Image, Class int
	Box          [4]float64
	Area         float64
	Crowd        bool
}

type cocoDTJSON struct {
	Image, Class int
	Box          [4]float64
	Score        float64
}

// randomCOCO makes a detection problem: a few images and classes, boxes
// of every area range, some crowds and some "area" fields that disagree
// with the box, detections near the objects and at random, scores often
// tied, sometimes more than 10 per image and class.
func randomCOCO(rng *rand.Rand) cocoCase {
	c := cocoCase{Images: []int{3, 1, 2, 5, 8}, Classes: []int{0, 1, 2}}
	side := func() float64 { return []float64{4, 12, 25, 40, 70, 120, 200}[rng.IntN(7)] * (0.8 + 0.4*rng.Float64()) }
	box := func() [4]float64 { return [4]float64{rng.Float64() * 300, rng.Float64() * 300, side(), side()} }
	score := func() float64 {
		if rng.IntN(2) == 0 {
			return float64(1+rng.IntN(5)) / 5 // ties, within and across images
		}
		return rng.Float64()
	}
	for _, im := range c.Images {
		for range rng.IntN(6) {
			g := cocoGTJSON{Image: im, Class: rng.IntN(3), Box: box(), Crowd: rng.IntN(8) == 0}
			if rng.IntN(5) == 0 {
				g.Area = g.Box[2] * g.Box[3] * (0.2 + rng.Float64())
			}
			c.GTs = append(c.GTs, g)
			for range rng.IntN(4) {
				b := g.Box
				for k := range b {
					b[k] += (rng.Float64() - 0.5) * 0.4 * g.Box[2+k%2]
				}
				b[2], b[3] = math.Abs(b[2])+1, math.Abs(b[3])+1
				cl := g.Class
				if rng.IntN(6) == 0 {
					cl = rng.IntN(3)
				}
				c.Dets = append(c.Dets, cocoDTJSON{Image: im, Class: cl, Box: b, Score: score()})
			}
		}
		for range rng.IntN(14) {
			c.Dets = append(c.Dets, cocoDTJSON{Image: im, Class: rng.IntN(3), Box: box(), Score: score()})
		}
	}
	return c
}

// pyCOCO is an independent COCO box evaluation written from the
// definitions in the COCO detection evaluation page and pycocotools'
// documented semantics (crowds, area ranges, maxDets, 101 recall points).
// Interpolated precision at recall r is the best precision at any recall
// ≥ r; images are taken in id order and detections of equal score in the
// order given.
const pyCOCOLib = `
import json, math, sys

IOUS = [0.5 + i * ((0.95 - 0.5) / 9) for i in range(9)] + [0.95]   # numpy.linspace(.5, .95, 10)
RECALLS = [i * 0.01 for i in range(100)] + [1.0]                   # numpy.linspace(0, 1, 101)
AREAS = [(0, 1e10), (0, 32 ** 2), (32 ** 2, 96 ** 2), (96 ** 2, 1e10)]
MAXDETS = [1, 10, 100]

def overlap(d, g, crowd):
    iw = min(d[0] + d[2], g[0] + g[2]) - max(d[0], g[0])
    ih = min(d[1] + d[3], g[1] + g[3]) - max(d[1], g[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / (d[2] * d[3] if crowd else d[2] * d[3] + g[2] * g[3] - inter)

def label(gts, dts, rng, thr, maxdet):
    """Greedy matching in one image and class: each detection (best score first)
    takes the best remaining ground truth with IoU >= thr, preferring counted ones;
    crowds may be taken many times. Returns (score, 'tp'|'fp'|'skip') and the count
    of ground truths that count."""
    out_of = lambda a: a < rng[0] or a > rng[1]
    skip = lambda g: g["Crowd"] or out_of(g["Area"] or g["Box"][2] * g["Box"][3])
    gs = [g for g in gts if not skip(g)] + [g for g in gts if skip(g)]
    taken = set()
    res = []
    for d in sorted(dts, key=lambda d: -d["Score"])[:maxdet]:
        best, pick = min(thr, 1 - 1e-10), None
        for j, g in enumerate(gs):
            if j in taken and not g["Crowd"]:
                continue
            if pick is not None and not skip(gs[pick]) and skip(g):
                break
            o = overlap(d["Box"], g["Box"], g["Crowd"])
            if o >= best:
                best, pick = o, j
        if pick is None:
            res.append((d["Score"], "skip" if out_of(d["Box"][2] * d["Box"][3]) else "fp"))
        else:
            taken.add(pick)
            res.append((d["Score"], "skip" if skip(gs[pick]) else "tp"))
    return res, sum(1 for g in gts if not skip(g))

def ap_recall(case, cls, rng, thr, maxdet):
    dets, npos = [], 0
    for im in sorted(case["images"]):
        gts = [g for g in case["gts"] if g["Image"] == im and g["Class"] == cls]
        dts = [d for d in case["dets"] if d["Image"] == im and d["Class"] == cls]
        r, n = label(gts, dts, rng, thr, maxdet)
        dets += r
        npos += n
    if npos == 0:
        return None
    dets.sort(key=lambda x: -x[0])
    tp = fp = 0
    curve = []
    for _, kind in dets:
        if kind == "skip":
            continue
        tp += kind == "tp"
        fp += kind == "fp"
        curve.append((tp / npos, tp / (tp + fp)))
    ap = sum(max([p for rc, p in curve if rc >= r], default=0.0) for r in RECALLS) / len(RECALLS)
    return ap, (curve[-1][0] if curve else 0.0)

def mean(xs):
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else -1.0

def stats(case):
    def ap(ious, a, m):
        return mean([r[0] if r else None for t in ious for c in case["classes"] for r in [ap_recall(case, c, AREAS[a], t, MAXDETS[m])]])
    def ar(a, m):
        return mean([r[1] if r else None for t in IOUS for c in case["classes"] for r in [ap_recall(case, c, AREAS[a], t, MAXDETS[m])]])
    return [ap(IOUS, 0, 2), ap([IOUS[0]], 0, 2), ap([IOUS[5]], 0, 2), ap(IOUS, 1, 2), ap(IOUS, 2, 2), ap(IOUS, 3, 2),
            ar(0, 0), ar(0, 1), ar(0, 2), ar(1, 2), ar(2, 2), ar(3, 2)]

`

const pyCOCO = pyCOCOLib + `
json.dump([stats(c) for c in json.load(sys.stdin)], sys.stdout)
`

// TestCOCOAgainstPython compares the twelve numbers with the independent
// Python evaluation on random problems.
func TestCOCOAgainstPython(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 3))
	var cases []cocoCase
	for range 30 {
		cases = append(cases, randomCOCO(rng))
	}
	var want [][12]float64
	runOracle(t, pyCOCO, cases, &want)
	defined := 0
	for i, c := range cases {
		var gts []GroundTruth
		var dets []Detection
		for _, g := range c.GTs {
			gts = append(gts, GroundTruth{Image: g.Image, Class: g.Class, Box: Box{g.Box[0], g.Box[1], g.Box[2], g.Box[3]}, Area: g.Area, Crowd: g.Crowd})
		}
		for _, d := range c.Dets {
			dets = append(dets, Detection{Image: d.Image, Class: d.Class, Score: d.Score, Box: Box{d.Box[0], d.Box[1], d.Box[2], d.Box[3]}})
		}
		res, err := EvaluateCOCO(c.Images, c.Classes, gts, dets)
		if err != nil {
			t.Fatal(err)
		}
		got := res.Stats.list()
		for k := range got {
			if math.Abs(got[k]-want[i][k]) > 1e-9 {
				t.Errorf("case %d: %s = %.12f, the Python evaluation %.12f", i, statNames[k], got[k], want[i][k])
			}
			if want[i][k] > 0 && want[i][k] < 1 {
				defined++
			}
		}
	}
	if defined < len(cases)*6 {
		t.Fatalf("only %d numbers strictly between 0 and 1 over %d cases: the problems are too easy to tell anything", defined, len(cases))
	}
}

// TestCOCOAP50AgainstModel compares AP50 with the model package's
// AveragePrecision (the end-of-run AP50 before this package) on random
// problems without crowds, with distinct scores (the two break ties
// differently: by image id here, by input order there): at one threshold
// with every detection kept, both are COCO's AP.
func TestCOCOAP50AgainstModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(16, 5))
	for i := range 20 {
		c := randomCOCO(rng)
		var gts []GroundTruth
		var dets []Detection
		var mg []model.GroundTruth
		var md []model.Detection
		for _, g := range c.GTs {
			gts = append(gts, GroundTruth{Image: g.Image, Class: g.Class, Box: Box{g.Box[0], g.Box[1], g.Box[2], g.Box[3]}})
			mg = append(mg, model.GroundTruth{Image: g.Image, Class: g.Class, Box: model.Box{g.Box[0], g.Box[1], g.Box[0] + g.Box[2], g.Box[1] + g.Box[3]}})
		}
		for k, d := range c.Dets {
			score := d.Score + float64(k)*1e-6
			dets = append(dets, Detection{Image: d.Image, Class: d.Class, Score: score, Box: Box{d.Box[0], d.Box[1], d.Box[2], d.Box[3]}})
			md = append(md, model.Detection{Image: d.Image, Class: d.Class, Score: score, Box: model.Box{d.Box[0], d.Box[1], d.Box[0] + d.Box[2], d.Box[1] + d.Box[3]}})
		}
		res, err := EvaluateCOCO(c.Images, c.Classes, gts, dets)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := model.AveragePrecision(md, mg, 0.5)
		if res.Stats.AP50 < 0 {
			continue // no ground truth
		}
		if math.Abs(res.Stats.AP50-want) > 1e-6 {
			t.Errorf("case %d: AP50 %.9f, model.AveragePrecision %.9f", i, res.Stats.AP50, want)
		}
	}
}
