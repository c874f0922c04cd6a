package checkpoint

import (
	"bytes"
	"encoding/binary"
)

// pickler emits the subset of pickle protocol 2 a PyTorch state dict needs:
// globals, tuples, ints, strings, False, persistent ids and REDUCE. It keeps
// no memo: every object is written once, so nothing needs to be shared.
type pickler struct{ b bytes.Buffer }

// Pickle opcodes (see Python's Lib/pickletools.py).
const (
	opProto      = 0x80
	opStop       = '.'
	opMark       = '('
	opTuple      = 't'
	opEmptyTuple = ')'
	opGlobal     = 'c'
	opReduce     = 'R'
	opBinPersID  = 'Q'
	opBinInt     = 'J'
	opBinInt1    = 'K'
	opBinInt2    = 'M'
	opLong1      = 0x8a
	opBinUnicode = 'X'
	opNewFalse   = 0x89
	opSetItems   = 'u'
)

func (p *pickler) proto()      { p.b.Write([]byte{opProto, 2}) }
func (p *pickler) stop()       { p.b.WriteByte(opStop) }
func (p *pickler) mark()       { p.b.WriteByte(opMark) }
func (p *pickler) tuple()      { p.b.WriteByte(opTuple) }
func (p *pickler) emptyTuple() { p.b.WriteByte(opEmptyTuple) }
func (p *pickler) reduce()     { p.b.WriteByte(opReduce) }
func (p *pickler) persID()     { p.b.WriteByte(opBinPersID) }
func (p *pickler) falseVal()   { p.b.WriteByte(opNewFalse) }
func (p *pickler) setItems()   { p.b.WriteByte(opSetItems) }

// global pushes module.name.
func (p *pickler) global(module, name string) {
	p.b.WriteByte(opGlobal)
	p.b.WriteString(module)
	p.b.WriteByte('\n')
	p.b.WriteString(name)
	p.b.WriteByte('\n')
}

// str pushes a Python str.
func (p *pickler) str(s string) {
	p.b.WriteByte(opBinUnicode)
	var n [4]byte
	binary.LittleEndian.PutUint32(n[:], uint32(len(s)))
	p.b.Write(n[:])
	p.b.WriteString(s)
}

// int pushes a Python int in the shortest encoding.
func (p *pickler) int(v int64) {
	switch {
	case v >= 0 && v < 1<<8:
		p.b.Write([]byte{opBinInt1, byte(v)})
	case v >= 0 && v < 1<<16:
		p.b.Write([]byte{opBinInt2, byte(v), byte(v >> 8)})
	case v >= -1<<31 && v < 1<<31:
		var n [4]byte
		binary.LittleEndian.PutUint32(n[:], uint32(int32(v)))
		p.b.WriteByte(opBinInt)
		p.b.Write(n[:])
	default:
		// LONG1: little-endian two's complement; 8 bytes always suffice.
		var n [8]byte
		binary.LittleEndian.PutUint64(n[:], uint64(v))
		p.b.Write([]byte{opLong1, 8})
		p.b.Write(n[:])
	}
}

// ints pushes a tuple of ints.
func (p *pickler) ints(vs []int64) {
	if len(vs) == 0 {
		p.emptyTuple()
		return
	}
	p.mark()
	for _, v := range vs {
		p.int(v)
	}
	p.tuple()
}

// orderedDict pushes collections.OrderedDict().
func (p *pickler) orderedDict() {
	p.global("collections", "OrderedDict")
	p.emptyTuple()
	p.reduce()
}
