package train

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/e2evlp/vlp/checkpoint"
	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/model"
	"github.com/e2evlp/vlp/worker"
)

// Pretrained is a pretraining checkpoint a fine-tuning job starts from (the spec's init_from):
// its parameters by name, the network layout they were written for and the job spec of the run
// that wrote them (its preset, tokenizer and classes make the fine-tuning model's shapes).
type Pretrained struct {
	Ref    string // STORE#ID as read
	Step   int64
	Layout string
	Spec   coordinator.JobSpec
	Params map[string]model.HostTensor
}

// ParseCheckpointRef splits STORE[#ID] (id 0: none given).
func ParseCheckpointRef(ref string) (store string, id uint64, err error) {
	i := strings.LastIndex(ref, "#")
	if i < 0 {
		return ref, 0, nil
	}
	id, err = strconv.ParseUint(ref[i+1:], 10, 64)
	if err != nil || id == 0 {
		return "", 0, fmt.Errorf("%w: init_from %q: after # comes a checkpoint id (see vlp checkpoint ls)", worker.ErrJobSpec, ref)
	}
	return ref[:i], id, nil
}

// OpenPretrained reads checkpoint ref (STORE#ID, or the latest that verifies in STORE): its
// parameters (the optimiser state is not read) and the job spec it records.
func OpenPretrained(ref string) (*Pretrained, error) {
	store, id, err := ParseCheckpointRef(ref)
	if err != nil {
		return nil, err
	}
	info, snap, _, err := checkpoint.Read(store, id)
	if err != nil {
		return nil, fmt.Errorf("train: init_from %s: %w", ref, err)
	}
	p := &Pretrained{Ref: fmt.Sprintf("%s#%d", store, info.ID), Step: info.Step(), Layout: snap.Meta.Layout, Params: map[string]model.HostTensor{}}
	if len(info.Meta.JobSpec) == 0 {
		return nil, fmt.Errorf("train: init_from %s: the checkpoint records no job spec: its model cannot be rebuilt", p.Ref)
	}
	if err := json.Unmarshal(info.Meta.JobSpec, &p.Spec); err != nil {
		return nil, fmt.Errorf("train: init_from %s: job spec: %w", p.Ref, err)
	}
	if p.Spec.Model == "linear" {
		return nil, fmt.Errorf("train: init_from %s: a checkpoint of the linear model, not E2E-VLP", p.Ref)
	}
	for _, t := range snap.Params {
		if t.DType != checkpoint.Float32 {
			continue
		}
		buf := make([]float32, t.NumElements())
		if err := t.Float32s(buf); err != nil {
			return nil, fmt.Errorf("train: init_from %s: %s: %w", p.Ref, t.Name, err)
		}
		p.Params[t.Name] = model.HostTensor{Shape: append([]int64(nil), t.Shape...), Data: buf}
	}
	return p, nil
}

// Check refuses a model whose network layout is not the checkpoint's (as eval.RestoreParams
// does): the same names and shapes from another backbone would load and mean nothing.
func (p *Pretrained) Check(c model.Config) error {
	if err := c.CheckLayout(p.Layout); err != nil {
		return fmt.Errorf("%w: init_from %s: %w", worker.ErrJobSpec, p.Ref, err)
	}
	return nil
}
