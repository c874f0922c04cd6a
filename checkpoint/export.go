package checkpoint

import (
	"archive/zip"
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"io"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// ExportOptions configure ExportPyTorch.
type ExportOptions struct {
	// ArchiveName is the folder inside the zip every entry lives in; PyTorch
	// ignores its value. Default "archive".
	ArchiveName string
	// Groups are exported in order. Default: params only, named as stored,
	// so the file is a model state dict. With more than one group every
	// name is prefixed "<group>/".
	Groups []Group
}

// exportAlign is the alignment of each tensor's bytes in the zip, as
// torch.save writes it (it lets PyTorch 2.x map the file).
const exportAlign = 64

// extraPadID is the zip extra-field id PyTorch pads local headers with.
const extraPadID = 0x4246

// ExportPyTorch writes checkpoint id as a file torch.load reads: PyTorch's
// zip serialization (format version 3) holding an OrderedDict of tensors.
// Entries are stored uncompressed; tensor bytes are streamed from the
// store's memory map and checked against their sha256 on the way, so a
// corrupt checkpoint fails with ErrCorrupt (after part of the file has been
// written: write to a temporary name and rename on success).
func (s *Store) ExportPyTorch(w io.Writer, id uint64, opts ExportOptions) error {
	if opts.ArchiveName == "" {
		opts.ArchiveName = "archive"
	}
	if len(opts.Groups) == 0 {
		opts.Groups = []Group{GroupParams}
	}
	err := s.view(func(tx *bolt.Tx) error {
		rec, err := readRecord(tx, id)
		if err != nil {
			return err
		}
		data := tx.Bucket(bucketCheckpoints).Bucket(idKey(id)).Bucket(bucketData)
		if data == nil {
			return fmt.Errorf("%w: no %q bucket", ErrCorrupt, bucketData)
		}
		var picked []int
		for _, g := range opts.Groups {
			for i, t := range rec.Tensors {
				if t.Group == g {
					picked = append(picked, i)
				}
			}
		}
		return writeTorchZip(w, opts, rec, data, picked)
	})
	if err != nil {
		return fmt.Errorf("checkpoint: export %d from %s: %w", id, s.path, err)
	}
	return nil
}

// countWriter counts the bytes that reach the underlying writer.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func writeTorchZip(w io.Writer, opts ExportOptions, rec *record, data *bolt.Bucket, picked []int) error {
	prefix := opts.ArchiveName + "/"
	multi := len(opts.Groups) > 1

	// data.pkl: OrderedDict{name: _rebuild_tensor_v2(storage, 0, shape,
	// stride, False, OrderedDict())}, each tensor its own storage.
	var p pickler
	p.proto()
	p.orderedDict()
	p.mark()
	for key, i := range picked {
		t := rec.Tensors[i]
		name := t.Name
		if multi {
			name = string(t.Group) + "/" + name
		}
		p.str(name)
		p.global("torch._utils", "_rebuild_tensor_v2")
		p.mark()
		// persistent id: ('storage', torch.<X>Storage, key, 'cpu', numel)
		p.mark()
		p.str("storage")
		p.global("torch", dtypes[t.DType].storage)
		p.str(strconv.Itoa(key))
		p.str("cpu")
		p.int(t.Bytes / int64(t.DType.Size()))
		p.tuple()
		p.persID()
		p.int(0) // storage offset
		p.ints(t.Shape)
		p.ints(contiguousStrides(t.Shape))
		p.falseVal() // requires_grad
		p.orderedDict()
		p.tuple()
		p.reduce()
	}
	p.setItems()
	p.stop()

	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 1<<20)
	zw := zip.NewWriter(bw)
	// put writes one stored entry whose bytes are parts, padding its local
	// header so that the bytes start on an exportAlign boundary.
	put := func(name string, parts [][]byte) error {
		var size int64
		crc := crc32.NewIEEE()
		for _, b := range parts {
			crc.Write(b)
			size += int64(len(b))
		}
		if err := zw.Flush(); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		const localHeaderLen = 30
		at := cw.n + localHeaderLen + int64(len(name)) + 4
		pad := (exportAlign - at%exportAlign) % exportAlign
		extra := make([]byte, 4+pad)
		binary.LittleEndian.PutUint16(extra[0:], extraPadID)
		binary.LittleEndian.PutUint16(extra[2:], uint16(pad))
		for j := range extra[4:] {
			extra[4+j] = 'Z'
		}
		fw, err := zw.CreateRaw(&zip.FileHeader{
			Name: name, Method: zip.Store, Extra: extra,
			CRC32: crc.Sum32(), CompressedSize64: uint64(size), UncompressedSize64: uint64(size),
		})
		if err != nil {
			return err
		}
		for _, b := range parts {
			if _, err := fw.Write(b); err != nil {
				return err
			}
		}
		return nil
	}

	if err := put(prefix+"data.pkl", [][]byte{p.b.Bytes()}); err != nil {
		return err
	}
	if err := put(prefix+"byteorder", [][]byte{[]byte("little")}); err != nil {
		return err
	}
	for key, i := range picked {
		t := rec.Tensors[i]
		chunks, err := tensorChunks(data, i, t)
		if err != nil {
			return fmt.Errorf("%w: %s tensor %q: %w", ErrCorrupt, t.Group, t.Name, err)
		}
		h := sha256.New()
		for _, c := range chunks {
			h.Write(c)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != t.SHA256 {
			return fmt.Errorf("%w: %s tensor %q: sha256 is %s, recorded %s", ErrCorrupt, t.Group, t.Name, got, t.SHA256)
		}
		if err := put(prefix+"data/"+strconv.Itoa(key), chunks); err != nil {
			return err
		}
	}
	if err := put(prefix+"version", [][]byte{[]byte("3\n")}); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// contiguousStrides returns the row-major strides of shape, in elements.
func contiguousStrides(shape []int64) []int64 {
	st := make([]int64, len(shape))
	acc := int64(1)
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = acc
		if shape[i] > 1 {
			acc *= shape[i]
		}
	}
	return st
}
