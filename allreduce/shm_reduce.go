//go:build linux

package allreduce

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"
)

// The arena: when every rank of a generation is on one host (the shm kind),
// an all-reduce needs no ring. Each rank's inbox ends with an arena:
//
//	page    control: the op (seq, length, wire, meta length) and three round
//	        counters (staged, reduced, copied), plus a futex word rung on
//	        every change
//	1 MiB   the rank's metadata of the op (Config.MaxMeta is at most 1 MiB)
//	A       stage: the rank's values of the current round, for the others
//	A/2+4K  result: the rank's share of the round, summed
//
// The buffer goes in rounds of A/4 elements. In a round every rank copies its
// values into its stage (all but its own share, which only it reads), sums its
// share of the round from its own buffer and the others' stages — element i
// of ring segment j in the order j, j+1, …, j−1, exactly as the ring would —
// into its result, and copies the others' results into its buffer. Each step
// waits for the counters of every peer: a stage is overwritten only once
// every peer has reduced the previous round, a result only once every peer
// has copied it. A rank moves about 2.5 buffers of memory per all-reduce (the
// ring over the shm links: about 4.5, in frames), and waits three times per
// round instead of once per frame.
//
// A peer that dies stops its counters; the waits check the deadline, the
// Ring's failure (the reader reports the lost peer) and the peers' locks.
const (
	shmArenaMeta = 1 << 20

	arenaSeq     = 0   // uint64: the op's sequence number
	arenaLength  = 8   // uint64: elements of the op's buffer
	arenaWire    = 16  // uint32: the op's wire type
	arenaMetaLen = 20  // uint32
	arenaStaged  = 64  // uint64: rounds staged
	arenaReduced = 128 // uint64: rounds reduced
	arenaCopied  = 192 // uint64: rounds copied out
	arenaBell    = 256 // uint32 futex word
)

// shmArenaSize is the bytes of an arena whose stage holds a bytes; 0 for none.
func shmArenaSize(a int) int64 {
	if a == 0 {
		return 0
	}
	return int64(shmPage + shmArenaMeta + a + a/2 + shmPage)
}

// arenaView is one rank's arena inside a mapped inbox.
type arenaView struct {
	m    *shmMap
	base int
	a    int
}

func (t *ShmTransport) arenaOf(m *shmMap) arenaView {
	return arenaView{m: m, base: int(shmArenaOffset(t.gen.Size(), t.cfg.LinkBytes)), a: t.arena}
}

func (v arenaView) u64(off int) *uint64 { return v.m.u64(v.base + off) }
func (v arenaView) u32(off int) *uint32 { return v.m.u32(v.base + off) }
func (v arenaView) meta() []byte {
	o := v.base + shmPage
	return v.m.mem[o : o+shmArenaMeta]
}
func (v arenaView) stage() []float32 {
	o := v.base + shmPage + shmArenaMeta
	return bytesF32(v.m.mem[o : o+v.a])
}
func (v arenaView) result() []float32 {
	o := v.base + shmPage + shmArenaMeta + v.a
	return bytesF32(v.m.mem[o : o+v.a/2+shmPage])
}

// publish sets a counter and rings the bell.
func (v arenaView) publish(off int, value uint64) {
	atomic.StoreUint64(v.u64(off), value)
	atomic.AddUint32(v.u32(arenaBell), 1)
	futexWake(v.u32(arenaBell))
}

func (t *ShmTransport) reducesLocally() bool { return t.arena > 0 }

// allReduceLocal implements localReducer.
func (t *ShmTransport) allReduceLocal(ctx context.Context, failed <-chan struct{}, seq uint64, buf []float32, wire DType, meta []byte, metas [][]byte) error {
	t.arenaMu.Lock()
	defer t.arenaMu.Unlock()
	if t.closed.Load() {
		return ErrClosed
	}
	n, L := t.gen.Size(), len(buf)
	views, err := t.attachArenas(ctx, failed)
	if err != nil {
		return err
	}
	own := views[t.rank]
	per := t.arena / 4 // elements per round
	rounds := max(1, (L+per-1)/per)
	for k := range rounds {
		g := t.rounds + 1
		lo, hi := k*per, min(L, (k+1)*per)
		// The stage and the metadata are read by the peers until they have
		// reduced the previous round.
		if err := t.waitArena(ctx, failed, views, arenaReduced, g-1); err != nil {
			return err
		}
		if k == 0 {
			copy(own.meta(), meta)
			*own.u64(arenaSeq) = seq
			*own.u64(arenaLength) = uint64(L)
			*own.u32(arenaWire) = uint32(wire)
			*own.u32(arenaMetaLen) = uint32(len(meta))
		}
		stage := own.stage()
		shareLo, shareLen := segment(hi-lo, n, t.rank)
		copy(stage[:shareLo], buf[lo:lo+shareLo])
		copy(stage[shareLo+shareLen:hi-lo], buf[lo+shareLo+shareLen:hi])
		own.publish(arenaStaged, g)
		if t.hook != nil {
			t.hook()
		}
		if err := t.waitArena(ctx, failed, views, arenaStaged, g); err != nil {
			return err
		}
		for q, v := range views {
			if q == t.rank {
				continue
			}
			if s, l, w := *v.u64(arenaSeq), *v.u64(arenaLength), DType(*v.u32(arenaWire)); s != seq || l != uint64(L) || w != wire {
				return fmt.Errorf("%w: rank %d runs op %d on %d elements as %v, this rank op %d on %d as %v", ErrMismatch, q, s, l, w, seq, L, wire)
			}
			if k == 0 {
				ml := int(*v.u32(arenaMetaLen))
				if ml > shmArenaMeta {
					return fmt.Errorf("%w: rank %d announces %d bytes of metadata", ErrMismatch, q, ml)
				}
				metas[q] = append([]byte(nil), v.meta()[:ml]...)
			}
		}
		// The result is read by the peers until they have copied the
		// previous round.
		if err := t.waitArena(ctx, failed, views, arenaCopied, g-1); err != nil {
			return err
		}
		res := own.result()[:shareLen]
		t.reduceShare(res, buf, views, L, lo+shareLo, lo, wire)
		copy(buf[lo+shareLo:lo+shareLo+shareLen], res)
		own.publish(arenaReduced, g)
		if err := t.waitArena(ctx, failed, views, arenaReduced, g); err != nil {
			return err
		}
		for q, v := range views {
			if q == t.rank {
				continue
			}
			qLo, qLen := segment(hi-lo, n, q)
			copy(buf[lo+qLo:lo+qLo+qLen], v.result()[:qLen])
		}
		own.publish(arenaCopied, g)
		t.rounds = g
	}
	return nil
}

// attachArenas maps every peer's inbox (the first op waits for those not
// there yet) and returns the arenas by rank. A peer that died before it was
// mapped leaves an inbox nobody holds: the wait ends when the Ring fails, or
// with a *PeerError once the inbox has stayed ownerless for deadInboxGrace.
func (t *ShmTransport) attachArenas(ctx context.Context, failed <-chan struct{}) ([]arenaView, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-failed:
			cancel()
		case <-ctx.Done():
		}
	}()
	views := make([]arenaView, t.gen.Size())
	for q := range views {
		if q == t.rank {
			views[q] = t.arenaOf(t.inbox)
			continue
		}
		p := t.peers[q]
		p.mu.Lock()
		err := t.attachLocked(ctx, p, q)
		p.mu.Unlock()
		select {
		case <-failed:
			return nil, errRingFailed
		default:
		}
		if err != nil {
			return nil, err
		}
		views[q] = t.arenaOf(p.attached.Load())
	}
	return views, nil
}

// reduceShare sums elements [from, from+len(out)) of the buffer (of L
// elements; the round starts at element lo) into out: each run of elements
// within one ring segment j starts from rank j's values and adds the next
// ranks' in ring order.
func (t *ShmTransport) reduceShare(out, buf []float32, views []arenaView, L, from, lo int, wire DType) {
	n := len(views)
	src := func(q, i, cnt int) []float32 {
		if q == t.rank {
			return buf[i : i+cnt]
		}
		return views[q].stage()[i-lo : i-lo+cnt]
	}
	for done := 0; done < len(out); {
		i := from + done
		j := segmentOf(L, n, i)
		start, length := segment(L, n, j)
		cnt := min(len(out)-done, start+length-i)
		dst := out[done : done+cnt]
		copy(dst, src(j, i, cnt))
		if wire == BFloat16 {
			roundBF16(dst)
		}
		for k := 1; k < n; k++ {
			addF32(dst, src((j+k)%n, i, cnt))
			if wire == BFloat16 {
				roundBF16(dst)
			}
		}
		done += cnt
	}
}

// segmentOf is the ring segment that element i of a buffer of L elements
// cut into n segments belongs to (see segment).
func segmentOf(L, n, i int) int {
	base, rem := L/n, L%n
	if i < rem*(base+1) {
		return i / (base + 1)
	}
	return rem + (i-rem*(base+1))/base
}

// waitArena waits until counter off of every peer's arena reaches target,
// sleeping on the bell of the first one behind. It returns at the deadline,
// when the Ring fails, or with a *PeerError when a peer's lock is free.
func (t *ShmTransport) waitArena(ctx context.Context, failed <-chan struct{}, views []arenaView, off int, target uint64) error {
	if target == 0 {
		return nil
	}
	lastCheck := time.Now()
	for q, v := range views {
		if q == t.rank {
			continue
		}
		for atomic.LoadUint64(v.u64(off)) < target {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-failed:
				return errRingFailed
			default:
			}
			if time.Since(lastCheck) >= t.cfg.CheckInterval {
				lastCheck = time.Now()
				if !v.m.ownerAlive() {
					return t.lostError(q, v.m)
				}
			}
			seen := atomic.LoadUint32(v.u32(arenaBell))
			if atomic.LoadUint64(v.u64(off)) >= target {
				break
			}
			futexWait(v.u32(arenaBell), seen, t.cfg.CheckInterval)
		}
	}
	return nil
}
