// Package downstream reads the datasets E2E-VLP is fine-tuned on, in their
// real file formats, into typed records: VQA v2 (questions and annotations
// JSON), NLVR2 (one JSON object per line, two images per example) and the
// Karpathy split of COCO and Flickr30K captions (dataset_coco.json,
// dataset_flickr30k.json) used for captioning and retrieval.
//
// It needs no LibTorch and never imports the model: like package sharding,
// it runs wherever the data is prepared.
//
// # Basics
//
// ImportVQA, ImportNLVR2 and ImportKarpathy each take a config naming the
// files and, optionally, the image directory, and return a set of records
// (VQASet, NLVR2Set, KarpathySet) and a Report. Records keep the texts as
// the files give them, checked but never repaired; an image is referred to
// by its path, checked to exist and to be a readable image of bounded size
// when an image directory is given.
//
// VQA answers are compared after the official answer normalisation
// (answer.go: punctuation, number words to digits, articles, contractions,
// as the VQA evaluation script does). BuildAnswerVocab keeps the most
// frequent normalised answers of the training annotations (the usual 3,129
// of VQA v2 come from keeping those given as multiple_choice_answer at
// least 9 times), and AnswerVocab.Targets turns a question's ten human
// answers into the soft scores a classifier is trained on: min(n/3, 1)
// averaged over the ten subsets of nine annotators (SoftScore).
//
// # Bad and hostile input
//
// The rules are package sharding's (docs/data.md): every item read is
// kept or skipped for exactly one reason (Report, read = kept + skipped,
// unit by unit), with examples naming the file and the byte offset or
// line. A file that is not the JSON it should be fails the import with
// ErrMalformed naming the file and the byte offset (a JSON-lines file
// instead skips and counts each bad line, since lines stand alone). Files
// larger than Limits.MaxFileBytes are refused before they are read; a
// record larger than Limits.MaxRecordBytes is read to its end, checked
// and skipped, never held; texts with invalid UTF-8 or longer than
// Limits.MaxTextBytes are skipped, never cut or repaired. Ids given twice
// are kept once when the copies are identical and not at all when they
// differ. An image's size is read from its header, never decoded, and
// checked against Limits. Only an import with nothing usable fails
// (ErrNothingUsable).
//
// # Caveats
//
// Records are held in memory: about the size of the annotation files. The
// answer normalisation follows the Python script's string semantics
// (str.strip, str.split, \d) for every character; Python's str.lower
// differs from Go's for a handful of characters outside Latin scripts
// (U+0130 and a few title-case letters), which VQA answers do not use.
//
// docs/finetune.md says how each format is read and why these records are
// not written into pretraining shards.
package downstream
