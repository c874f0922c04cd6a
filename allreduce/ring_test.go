package allreduce

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// transportMaker builds the transports of one generation (filling in the
// members' addresses where it needs them).
type transportMaker func(t *testing.T, gen Generation) (Generation, []Transport)

func allTransports(t *testing.T) map[string]transportMaker {
	s := runNATSServer(t)
	return map[string]transportMaker{
		"inmem": func(t *testing.T, gen Generation) (Generation, []Transport) {
			return gen, inmemTransports(gen.Size(), 0)
		},
		"nats": func(t *testing.T, gen Generation) (Generation, []Transport) {
			return gen, natsTransports(t, s, gen)
		},
		"tcp": func(t *testing.T, gen Generation) (Generation, []Transport) {
			return tcpTransports(t, gen, nil)
		},
		"auto": func(t *testing.T, gen Generation) (Generation, []Transport) {
			return autoTransports(t, s, gen, -1)
		},
		"auto-mixed": func(t *testing.T, gen Generation) (Generation, []Transport) {
			return autoTransports(t, s, gen, gen.Size()/2)
		},
		// Shared memory between most neighbours, TCP toward a rank that
		// does not share the directory, NATS toward one that has no TCP.
		"auto-shm": func(t *testing.T, gen Generation) (Generation, []Transport) {
			unreachable := -1
			if gen.Size() > 3 {
				unreachable = gen.Size() - 1
			}
			return autoShmTransports(t, s, gen, unreachable, shmTestDir(t), gen.Size()/2)
		},
		"shm": func(t *testing.T, gen Generation) (Generation, []Transport) {
			return gen, shmTransports(t, gen, ShmConfig{})
		},
		// One rank takes smaller frames than its neighbours send: it cannot
		// pass them on as they are, and cuts them anew.
		"inmem-small-frames": func(t *testing.T, gen Generation) (Generation, []Transport) {
			ts := inmemTransports(gen.Size(), 0)
			ts[gen.Size()/2] = smallFrames{ts[gen.Size()/2], headerSize + 64 + 64}
			return gen, ts
		},
	}
}

// lengthsFor returns buffer lengths that stress the partitioning: empty,
// shorter than the ring, not divisible by the ring or by the chunk.
func lengthsFor(n int) []int {
	ls := []int{0, 1, 2 * n, 64*n + 1, 1000 + n}
	if n > 1 {
		ls = append(ls, n-1)
	}
	return ls
}

func TestAllReduceMatchesSerialSum(t *testing.T) {
	for name, mk := range allTransports(t) {
		for _, n := range []int{1, 2, 3, 5, 8} {
			for _, wire := range []DType{Float32, BFloat16} {
				t.Run(fmt.Sprintf("%s/n=%d/%v", name, n, wire), func(t *testing.T) {
					gen := testGeneration("job1", 7, n)
					cfg := testConfig(t)
					cfg.Wire = wire
					gen, ts := mk(t, gen)
					rings := newRings(t, gen, ts, cfg)
					ctx := ctxTimeout(t, 60*time.Second)
					for _, L := range lengthsFor(n) {
						inputs := randomInputs(uint64(L), n, L)
						bufs := clone2(inputs)
						metas := make([][][]byte, n)
						errs := onAll(rings, func(rank int, r *Ring) error {
							var err error
							metas[rank], err = r.AllReduce(ctx, bufs[rank], []byte(fmt.Sprintf("cursor-%d-%d", rank, L)))
							return err
						})
						want := serialSum(inputs, wire)
						for rank := range n {
							if errs[rank] != nil {
								t.Fatalf("L=%d rank %d: %v", L, rank, errs[rank])
							}
							checkBits(t, fmt.Sprintf("L=%d rank %d", L, rank), bufs[rank], want)
							for q := range n {
								if w := fmt.Sprintf("cursor-%d-%d", q, L); string(metas[rank][q]) != w {
									t.Fatalf("L=%d rank %d: meta of rank %d = %q, want %q", L, rank, q, metas[rank][q], w)
								}
							}
						}
					}
				})
			}
		}
	}
}

func TestBroadcastAndAllGather(t *testing.T) {
	for name, mk := range allTransports(t) {
		for _, n := range []int{1, 2, 3, 5} {
			t.Run(fmt.Sprintf("%s/n=%d", name, n), func(t *testing.T) {
				gen := testGeneration("job1", 3, n)
				gen, ts := mk(t, gen)
				rings := newRings(t, gen, ts, testConfig(t))
				ctx := ctxTimeout(t, 60*time.Second)
				for _, size := range []int{0, 1, 1000, 4097} {
					root := size % n
					src := make([]byte, size)
					for i := range src {
						src[i] = byte(i*7 + size)
					}
					got := make([][]byte, n)
					errs := onAll(rings, func(rank int, r *Ring) error {
						var in []byte
						if rank == root {
							in = src
						}
						var err error
						got[rank], err = r.Broadcast(ctx, root, in)
						return err
					})
					for rank := range n {
						if errs[rank] != nil || !bytes.Equal(got[rank], src) {
							t.Fatalf("size %d root %d rank %d: err %v, equal %v", size, root, rank, errs[rank], bytes.Equal(got[rank], src))
						}
					}
					params := make([][]float32, n)
					for rank := range params {
						params[rank] = make([]float32, size)
						if rank == root {
							for i := range params[rank] {
								params[rank][i] = float32(i) / 3
							}
						}
					}
					errs = onAll(rings, func(rank int, r *Ring) error { return r.BroadcastFloat32(ctx, root, params[rank]) })
					for rank := range n {
						if errs[rank] != nil {
							t.Fatalf("BroadcastFloat32 rank %d: %v", rank, errs[rank])
						}
						checkBits(t, "BroadcastFloat32", params[rank], params[root])
					}
				}
				metas := make([][][]byte, n)
				errs := onAll(rings, func(rank int, r *Ring) error {
					var err error
					metas[rank], err = r.AllGather(ctx, []byte{byte(rank), 42})
					return err
				})
				for rank := range n {
					if errs[rank] != nil {
						t.Fatal(errs[rank])
					}
					for q := range n {
						if !bytes.Equal(metas[rank][q], []byte{byte(q), 42}) {
							t.Fatalf("rank %d sees meta %v for rank %d", rank, metas[rank][q], q)
						}
					}
				}
			})
		}
	}
}

// smallFrames reports a smaller frame limit than the transport's.
type smallFrames struct {
	Transport
	max int
}

func (s smallFrames) MaxFrame() int { return s.max }
