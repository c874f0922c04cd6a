package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"

	"github.com/e2evlp/vlp/torch"
)

// Param is one named, owned tensor of the model: a trainable or frozen
// parameter, or a buffer (BatchNorm running statistics).
type Param struct {
	Name     string
	Shape    []int64
	T        *torch.Tensor // owned by the Model (nil in a Describe)
	Buffer   bool          // running statistics: saved and loaded, never trained
	Frozen   bool          // a parameter that does not train (frozen stages, FrozenBN)
	Backbone bool          // trains with the lower backbone learning rate
}

// Trainable reports whether the optimiser updates p.
func (p *Param) Trainable() bool { return !p.Buffer && !p.Frozen }

// paramSet creates and names the model's tensors, initialised on the host
// from one seeded generator so that a seed gives the same model on every
// device and LibTorch version.
type paramSet struct {
	*store
	// prefix and flags applied to the tensors created next.
	prefix   string
	frozen   bool
	backbone bool
}

// store is what every paramSet derived from one root shares.
type store struct {
	dry    bool // record names and shapes only: no tensor, no LibTorch
	dev    torch.Device
	rng    *rand.Rand
	list   []*Param
	byName map[string]*Param
	err    error
}

func newParamSet(seed uint64, dev torch.Device) *paramSet {
	return &paramSet{store: &store{dev: dev, rng: rand.New(rand.NewPCG(seed, 0x5eed)), byName: map[string]*Param{}}}
}

// sub returns a paramSet whose names get the extra prefix, with the same
// flags; it shares the store.
func (ps *paramSet) sub(prefix string) *paramSet {
	c := *ps
	c.prefix = ps.prefix + prefix + "."
	return &c
}

// add creates the tensor from gen(i) for every element i (nil: zeros).
func (ps *paramSet) add(name string, shape []int64, gen func() float32, buffer bool) *torch.Tensor {
	full := ps.prefix + name
	p := &Param{Name: full, Shape: shape, Buffer: buffer, Frozen: ps.frozen, Backbone: ps.backbone}
	ps.list = append(ps.list, p)
	ps.byName[full] = p
	if ps.dry {
		return nil
	}
	d := make([]float32, numel(shape))
	if gen != nil {
		for i := range d {
			d[i] = gen()
		}
	}
	p.T = torch.FromFloat32(nil, d, shape, ps.dev)
	if err := p.T.Err(); err != nil && ps.err == nil {
		ps.err = fmt.Errorf("model: create %s: %w", full, err)
	}
	if p.Trainable() {
		p.T.RequiresGrad(true)
	}
	return p.T
}

func numel(shape []int64) int {
	n := 1
	for _, s := range shape {
		n *= int(s)
	}
	return n
}

// normal: N(0, std²), the BERT/GPT initialisation for linear and embedding weights.
func (ps *paramSet) normal(name string, std float64, shape ...int64) *torch.Tensor {
	return ps.add(name, shape, func() float32 { return float32(ps.rng.NormFloat64() * std) }, false)
}

// uniform: U(−a, a).
func (ps *paramSet) uniform(name string, a float64, shape ...int64) *torch.Tensor {
	return ps.add(name, shape, func() float32 { return float32((ps.rng.Float64()*2 - 1) * a) }, false)
}

func (ps *paramSet) constant(name string, v float32, buffer bool, shape ...int64) *torch.Tensor {
	return ps.add(name, shape, func() float32 { return v }, buffer)
}

// kaiming: He normal with fan-out (torchvision's ResNet initialisation).
func (ps *paramSet) kaiming(name string, shape ...int64) *torch.Tensor {
	fanOut := int(shape[0])
	for _, s := range shape[2:] {
		fanOut *= int(s)
	}
	return ps.normal(name, math.Sqrt(2/float64(fanOut)), shape...)
}

// names returns every name, sorted.
func (ps *paramSet) names() []string {
	n := make([]string, 0, len(ps.list))
	for _, p := range ps.list {
		n = append(n, p.Name)
	}
	sort.Strings(n)
	return n
}
