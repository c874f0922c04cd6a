package model

// ReferenceConfig is c as the PyTorch reference (reference/e2evlp.py) reads
// its config.json: the architecture and the loss weights, under the Go
// field names (StemPool is the reference's name for !NoStemPool).
func (c Config) ReferenceConfig() map[string]any {
	return map[string]any{
		"ResNetDepth": c.ResNetDepth, "ResNetWidth": c.ResNetWidth, "FrozenBN": c.FrozenBN, "DilateC5": c.DilateC5, "StemPool": !c.NoStemPool,
		"DModel": c.DModel, "Heads": c.Heads, "FFN": c.FFN, "EncoderLayers": c.EncoderLayers, "DecoderLayers": c.DecoderLayers,
		"VocabSize": c.VocabSize, "MaxTextLen": c.MaxTextLen, "MaxCaptionLen": c.MaxCaptionLen, "TieMLM": c.TieMLM,
		"NumQueries": c.NumQueries, "NumClasses": c.NumClasses, "NumAttributes": c.NumAttributes, "SharedDecoder": c.SharedDecoder,
		"Loss": c.Loss,
	}
}
