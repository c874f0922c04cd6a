package allreduce

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(m.Run())
}

// runNATSServer starts an in-process nats-server on a free loopback port with
// an 8 MiB max_payload and shuts it down at cleanup.
func runNATSServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{
		Host:       "127.0.0.1",
		Port:       -1,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
		MaxPending: 256 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(s.Shutdown)
	return s
}

func natsConnect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func natsTransports(t testing.TB, s *server.Server, gen Generation) []Transport {
	t.Helper()
	ts := make([]Transport, gen.Size())
	for i := range ts {
		var opts []NATSOption
		if i%2 == 1 { // half the ranks put control frames on a connection of their own
			opts = append(opts, WithControlConn(natsConnect(t, s.ClientURL())))
		}
		tr, err := NewNATSTransport(natsConnect(t, s.ClientURL()), gen, i, opts...)
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
	}
	return ts
}

const testToken = "s3cret-job-token"

// tcpNodes listens on loopback for each rank and fills in the addresses.
func tcpNodes(t testing.TB, gen Generation, token string) (Generation, []*TCPNode) {
	t.Helper()
	return listenNodes(t, gen, TCPConfig{Token: []byte(token)})
}

// listenNodes is tcpNodes with a configuration (its Job and Logger are set here).
func listenNodes(t testing.TB, gen Generation, cfg TCPConfig) (Generation, []*TCPNode) {
	t.Helper()
	cfg.Job, cfg.Logger = gen.Job, testLogger(t)
	nodes := make([]*TCPNode, gen.Size())
	gen.Members = append([]Member(nil), gen.Members...)
	for i := range nodes {
		n, err := ListenTCP("127.0.0.1:0", cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		nodes[i] = n
		gen.Members[i].Addr = n.Addr()
	}
	return gen, nodes
}

// tcpTransports joins a fresh node per rank to gen; nodes, when given, are
// reused (a later generation on the same workers).
func tcpTransports(t testing.TB, gen Generation, nodes []*TCPNode) (Generation, []Transport) {
	t.Helper()
	if nodes == nil {
		gen, nodes = tcpNodes(t, gen, testToken)
	}
	ts := make([]Transport, gen.Size())
	for i := range ts {
		tr, err := nodes[i].Join(gen, i)
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
	}
	return gen, ts
}

// autoTransports builds auto transports; the rank `unreachable` (if >= 0)
// advertises a dead TCP address, so the links to it fall back to NATS.
func autoTransports(t testing.TB, s *server.Server, gen Generation, unreachable int) (Generation, []Transport) {
	t.Helper()
	gen, nodes := tcpNodes(t, gen, testToken)
	if unreachable >= 0 {
		gen.Members[unreachable].Addr = "127.0.0.1:1"
	}
	ts := make([]Transport, gen.Size())
	for i := range ts {
		tr, err := NewTransport(context.Background(), KindAuto, gen, i, Endpoints{
			NATS: natsConnect(t, s.ClientURL()), TCP: nodes[i], ProbeTimeout: 300 * time.Millisecond, Logger: testLogger(t),
		})
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
		if a := tr.(*AutoTransport); gen.Size() > 1 {
			right := (i + 1) % gen.Size()
			if want := right != unreachable; a.ViaTCP(right) != want {
				t.Fatalf("auto rank %d → %d: via TCP %v, want %v", i, right, a.ViaTCP(right), want)
			}
		}
	}
	return gen, ts
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
