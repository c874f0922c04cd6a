package allreduce

import (
	"encoding/binary"
	"fmt"
	"net"
)

// hierLayout is how a generation's members fall into hosts for the
// hierarchical all-reduce. A member's host is the host part of its TCP
// address (Member.Addr), the rule the auto transport uses to find same-host
// neighbours: the worker advertises the address its peers dial, so two
// workers with one host part run on one machine (or share its /dev/shm,
// which the shared-memory transport checks when it attaches). Hosts come in
// order of their first member in the ring, members within a host in ring
// order (TopologyOrder keeps them adjacent; the layout does not need it), and
// a host's leader is its first member.
type hierLayout struct {
	hosts [][]int // global ranks of each host, in ring order
	host  []int   // host index of each rank
	local []int   // index of each rank within its host
}

// hostOf is a member's host: its address's host part, which must name one.
func hostOf(m Member) (string, error) {
	h, _, err := net.SplitHostPort(m.Addr)
	if err != nil || h == "" {
		return "", fmt.Errorf("member %q has no TCP address (%q) to tell its host by", m.ID, m.Addr)
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsUnspecified() {
		return "", fmt.Errorf("member %q advertises the unspecified address %q, which names no host", m.ID, m.Addr)
	}
	return h, nil
}

func newHierLayout(gen Generation) (hierLayout, error) {
	n := gen.Size()
	l := hierLayout{host: make([]int, n), local: make([]int, n)}
	index := make(map[string]int)
	for r, m := range gen.Members {
		h, err := hostOf(m)
		if err != nil {
			return hierLayout{}, configErr("hierarchical all-reduce: %v", err)
		}
		k, ok := index[h]
		if !ok {
			k = len(l.hosts)
			index[h] = k
			l.hosts = append(l.hosts, nil)
		}
		l.host[r], l.local[r] = k, len(l.hosts[k])
		l.hosts[k] = append(l.hosts[k], r)
	}
	return l, nil
}

// leaders lists each host's leader, by host.
func (l hierLayout) leaders() []int {
	out := make([]int, len(l.hosts))
	for k, rs := range l.hosts {
		out[k] = rs[0]
	}
	return out
}

// maxPerHost is the largest host's member count.
func (l hierLayout) maxPerHost() int {
	m := 0
	for _, rs := range l.hosts {
		m = max(m, len(rs))
	}
	return m
}

// subGeneration is the generation of the given ranks, in that order: the
// same job and number, so that frames keep the job's tags (only one ring of
// a generation uses each transport).
func subGeneration(gen Generation, ranks []int) Generation {
	g := Generation{Job: gen.Job, Number: gen.Number, Members: make([]Member, len(ranks))}
	for i, r := range ranks {
		g.Members[i] = gen.Members[r]
	}
	return g
}

// packMetas joins per-rank metadata into one blob: a uint32 length before
// each, little-endian.
func packMetas(metas [][]byte) []byte {
	size := 0
	for _, m := range metas {
		size += 4 + len(m)
	}
	b := make([]byte, 0, size)
	for _, m := range metas {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(m)))
		b = append(b, m...)
	}
	return b
}

// unpackMetas splits a packMetas blob of exactly n entries.
func unpackMetas(b []byte, n int) ([][]byte, error) {
	out := make([][]byte, n)
	for i := range n {
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: packed metadata ends before entry %d of %d", ErrMismatch, i, n)
		}
		k := int(binary.LittleEndian.Uint32(b))
		if k > len(b)-4 {
			return nil, fmt.Errorf("%w: packed metadata entry %d claims %d bytes, %d left", ErrMismatch, i, k, len(b)-4)
		}
		out[i] = append([]byte(nil), b[4:4+k]...)
		b = b[4+k:]
	}
	if len(b) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after %d packed metadata entries", ErrMismatch, len(b), n)
	}
	return out, nil
}
