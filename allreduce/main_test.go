package allreduce

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
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
// advertises a dead TCP address, so the links to it fall back to NATS. Every
// rank is on loopback, so the auto rule would pick shared memory: the ranks'
// shm directory is missing here, which leaves TCP.
func autoTransports(t testing.TB, s *server.Server, gen Generation, unreachable int) (Generation, []Transport) {
	t.Helper()
	return autoShmTransports(t, s, gen, unreachable, "", -1)
}

// autoShmTransports is autoTransports with the ranks' shared memory in
// shmDir (none when ""); rank `apart` (if >= 0) has a directory of its own,
// as if on another host with the same address, so its links fall back to TCP.
func autoShmTransports(t testing.TB, s *server.Server, gen Generation, unreachable int, shmDir string, apart int) (Generation, []Transport) {
	t.Helper()
	gen, nodes := tcpNodes(t, gen, testToken)
	if unreachable >= 0 {
		// Named otherwise than the others' 127.0.0.1: another host, as
		// far as the addresses tell.
		gen.Members[unreachable].Addr = "localhost:1"
	}
	ts := make([]Transport, gen.Size())
	eps := make([]Endpoints, gen.Size())
	for i := range eps {
		dir := shmDir
		switch {
		case dir == "":
			dir = filepath.Join(t.TempDir(), "no-shm")
		case i == apart:
			dir = shmTestDir(t)
		}
		eps[i] = Endpoints{
			NATS: natsConnect(t, s.ClientURL()), TCP: nodes[i], ProbeTimeout: 2 * time.Second, Logger: testLogger(t),
			Shm: ShmConfig{Dir: dir},
		}
		if shmDir == "" || i == apart {
			eps[i].ProbeTimeout = 300 * time.Millisecond
		}
	}
	// The ranks start together, as workers do: a rank's inbox appears when
	// its transport is made, and its neighbours' probes wait for it.
	errs := make([]error, gen.Size())
	var wg sync.WaitGroup
	for i := range ts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ts[i], errs[i] = NewTransport(context.Background(), KindAuto, gen, i, eps[i])
		}()
	}
	wg.Wait()
	for i, tr := range ts {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if a := tr.(*AutoTransport); gen.Size() > 1 {
			right := (i + 1) % gen.Size()
			wantShm := shmDir != "" && right != unreachable && i != unreachable && i != apart && right != apart
			wantTCP := !wantShm && right != unreachable
			if a.ViaShm(right) != wantShm || a.ViaTCP(right) != wantTCP {
				t.Fatalf("auto rank %d → %d: via shm %v, TCP %v; want %v, %v", i, right, a.ViaShm(right), a.ViaTCP(right), wantShm, wantTCP)
			}
		}
	}
	return gen, ts
}

func slogTo(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
