// Package allreduce sums gradients across the workers of a training job: a
// ring all-reduce of float32 buffers (optionally bfloat16 on the wire), a
// broadcast of parameters to a joining worker, and an all-gather of small
// per-rank metadata (each rank's data cursor) that rides on the all-reduce.
// It moves bytes, not tensors: it needs no LibTorch.
//
// # The ring
//
// The ranks of a Generation form a ring in member order; rank r sends to r+1
// and receives from r−1. A buffer of S bytes is cut into N segments. In the
// reduce-scatter, segment j starts at rank j, and every following rank adds
// its values to the partial sum it receives and passes it on; after N−1 steps
// rank j−1 holds segment j summed over every rank. In the all-gather the
// finished segments travel the ring once more. Every rank sends and receives
// 2(N−1)/N·S bytes, whatever N — so the bus bandwidth
// busbw = S/t·2(N−1)/N is the figure to compare with a link's speed.
//
// Segments travel in chunks (Config.ChunkBytes, at most the transport's frame
// size), and a rank forwards each chunk as soon as it has added to it — in the
// frame it arrived in, retagged — so the steps overlap and a chunk is copied
// or encoded once, when it enters the ring. A sender may have at most
// Config.WindowBytes unacknowledged at its receiver (credit flow control):
// the receiver never queues more than that, which keeps a NATS server from
// cutting it off as a slow consumer. Collectives can be started ahead
// (StartAllReduce) so that a worker reduces the early buckets of its
// gradients while backward still computes the rest (SplitBuckets).
//
// # Determinism
//
// Floating-point addition is not associative, so the order of the adds is
// part of the result. Here it is fixed: segment j is summed in the order
// rank j, j+1, …, j−1, regardless of timing, chunking or transport, and the
// all-gather copies the finished bits. Every rank therefore ends with
// bitwise the same buffer, and two runs with the same inputs and the same
// world size give the same bits. With bfloat16 on the wire every partial sum
// is rounded (to nearest even) as it is sent, and the rank that finishes a
// segment rounds its own copy too, so the ranks still agree bit for bit.
//
// # Failures
//
// Every frame carries the job, the generation, the collective's sequence
// number, the ring step and the chunk's offset; a frame whose tags are not
// exactly the expected ones is dropped, never summed (a stale frame from an
// earlier collective, a foreign job's, a forged one that does not continue the
// sequence). The TCP transport authenticates peers with an HMAC handshake over
// the job token, then every frame with a tag under a key derived from it, or
// encrypts them (TCPConfig.Security, tcp_security.go): a frame altered on the
// way is a lost peer, never a wrong sum. Over NATS, authentication is the
// server's business (per-job credentials, TLS), and the tags protect against
// mistakes, not forgery.
//
// Every collective has a deadline (its context's, else Config.Timeout). A
// rank that dies is noticed by its ring neighbours — at once when a TCP
// connection breaks, within ShmConfig.CheckInterval when the lock on its
// shared-memory inbox drops, after Config.PeerTimeout of silence otherwise (ranks
// heartbeat their neighbours in and between collectives) — and they tell the
// others, hop by hop, so every survivor returns a *PeerError (ErrPeerLost)
// well within the deadline: never a hang, never a partial sum. A Ring is
// finished by its first error; the caller abandons the step (no parameter was
// updated), and the coordinator's next Generation, without the lost member,
// gets a new Ring. A rank that leaves on purpose (Close) says so, and the
// collectives it had finished stand.
//
// # Transports
//
// A Transport moves frames for one rank of one generation: NATSTransport
// (core NATS; every byte crosses a server, which caps the ring at the
// server's relay rate), TCPTransport (direct connections between ring
// neighbours, from a TCPNode that listens once for all generations),
// InmemNetwork (tests, simulation), ShmTransport (ranks on one host, through
// files in /dev/shm: a byte ring per link, and with every rank on the host a
// shared arena that sums without passing frames — the ring's order, the
// ring's bits), and AutoTransport, which uses shared memory to a neighbour
// on this host, TCP to one that a probe connects, and NATS otherwise.
// docs/allreduce.md has the wire format, the flow control, the shared-memory
// layout and the auto rule.
//
// # Several hosts
//
// HierRing is the hierarchical all-reduce for rings that span several hosts
// with several ranks each: a shared-memory Ring per host, a Ring of the host
// leaders between hosts, a broadcast back — only the leaders' ring crosses
// hosts. It keeps the Ring's guarantees with its own summation order (host
// sums, then their sum), so every rank of a job uses it or none.
package allreduce
