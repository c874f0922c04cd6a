package allreduce

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkAllReduce runs every rank in this process: a quick look at the
// code's own costs (tcp protects frames with RingAuth, the default;
// tcp-plain and tcp-encrypt with the others). `vlp bench allreduce`
// measures ranks as processes.
func BenchmarkAllReduce(b *testing.B) {
	s := runNATSServer(b)
	tcpSecurity := map[string]RingSecurity{"tcp-plain": RingPlain, "tcp": RingAuth, "tcp-encrypt": RingEncrypt}
	for _, kind := range []string{"inmem", "tcp-plain", "tcp", "tcp-encrypt", "nats"} {
		for _, n := range []int{2, 4} {
			for _, wire := range []DType{Float32, BFloat16} {
				const L = 16 << 20 / 4 // 16 MiB
				b.Run(fmt.Sprintf("%s/n=%d/%v/16MiB", kind, n, wire), func(b *testing.B) {
					gen := testGeneration("bench", 1, n)
					var ts []Transport
					switch kind {
					case "inmem":
						ts = inmemTransports(n, 0)
					case "tcp-plain", "tcp", "tcp-encrypt":
						var nodes []*TCPNode
						gen, nodes = securedNodes(b, gen, tcpSecurity[kind])
						gen, ts = tcpTransports(b, gen, nodes)
					case "nats":
						ts = natsTransports(b, s, gen)
					}
					cfg := DefaultConfig()
					cfg.Wire = wire
					cfg.Logger = testLogger(b)
					rings := newRings(b, gen, ts, cfg)
					bufs := make([][]float32, n)
					for i := range bufs {
						bufs[i] = make([]float32, L)
					}
					ctx := ctxTimeout(b, 10*time.Minute)
					b.SetBytes(4 * L)
					b.ResetTimer()
					for b.Loop() {
						for rank, err := range onAll(rings, func(rank int, r *Ring) error { _, err := r.AllReduce(ctx, bufs[rank], nil); return err }) {
							if err != nil {
								b.Fatalf("rank %d: %v", rank, err)
							}
						}
					}
				})
			}
		}
	}
}
