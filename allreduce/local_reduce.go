package allreduce

import "context"

// localReducer is a transport through which every rank of the generation
// shares memory (ShmTransport of the shm kind): the Ring's all-reduce then
// goes through it, each rank summing its share of the buffer straight from
// the others' memory, instead of passing frames around the ring.
//
// The contract is the ring's: element i of segment j (segment(L, N, j)) is
// summed in the order rank j, j+1, …, j−1, with a bfloat16 wire rounding
// every partial sum as the ring rounds what it sends — so every rank ends with
// the bits the ring gives. metas[q] receives rank q's meta (this rank's is
// set). The wait ends with ctx, or errRingFailed once failed is closed.
type localReducer interface {
	allReduceLocal(ctx context.Context, failed <-chan struct{}, seq uint64, buf []float32, wire DType, meta []byte, metas [][]byte) error
	reducesLocally() bool
}

// runLocalAllReduce is the all-reduce over a localReducer.
func (r *Ring) runLocalAllReduce(op *Op, lr localReducer) error {
	return lr.allReduceLocal(op.ctx, r.failed, op.seq, op.buf, r.cfg.Wire, op.meta, op.metas)
}
