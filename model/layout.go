package model

import (
	"encoding/json"
	"fmt"
)

// Layout is a canonical description of the network c builds: every field
// that decides what the parameters compute or which parameters exist, and
// none that only shapes training (dropout, loss weights, which stages
// train) or the memory layout of activations (ChannelsLast). Two layouts
// can share every parameter's name and shape — the tiny preset with or
// without its stem max-pool — so a checkpoint records its layout and a
// restore into another one is refused (CheckLayout).
func (c Config) Layout() string {
	c.Dropout, c.Loss, c.TrainableStages, c.ChannelsLast = 0, LossWeights{}, 0, false
	b, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("model: layout: %v", err)) // a struct of numbers and booleans always marshals
	}
	return string(b)
}

// CheckLayout refuses parameters written by another network: stored is the
// checkpoint's layout ("" for checkpoints written before layouts were
// recorded, which are accepted).
func (c Config) CheckLayout(stored string) error {
	if stored == "" || stored == c.Layout() {
		return nil
	}
	return fmt.Errorf("model: the checkpoint was written by another network than this one (a preset changed since, or another variant):\n  checkpoint: %s\n  this model: %s", stored, c.Layout())
}
