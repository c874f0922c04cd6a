package allreduce

import (
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
		tr, err := NewNATSTransport(natsConnect(t, s.ClientURL()), gen, i)
		if err != nil {
			t.Fatal(err)
		}
		ts[i] = tr
	}
	return ts
}
