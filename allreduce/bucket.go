package allreduce

// SplitBuckets cuts a flat gradient buffer into consecutive buckets of at most
// bucketElems elements (the last one shorter), sharing buf's memory. A worker
// that lays its gradients out in the order backward produces them starts
// Ring.StartAllReduce on each bucket as soon as it is complete, so the
// reduction of early buckets overlaps the rest of backward; the boundaries
// depend only on len(buf) and bucketElems, so every rank and every run cuts
// the same buckets.
func SplitBuckets(buf []float32, bucketElems int) [][]float32 {
	if bucketElems <= 0 {
		bucketElems = len(buf)
	}
	var out [][]float32
	for len(buf) > bucketElems {
		out = append(out, buf[:bucketElems:bucketElems])
		buf = buf[bucketElems:]
	}
	return append(out, buf)
}
