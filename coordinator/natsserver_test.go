package coordinator

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestSlowConsumerDroppedAtMaxPending measures what max_pending means for the data plane: a
// receiver that stops reading is dropped as a slow consumer once the bytes the server holds for it
// reach max_pending. So max_pending must sit well above the all-reduce's per-receiver window.
func TestSlowConsumerDroppedAtMaxPending(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Job = "test"
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", -1
	cfg.NATS.Embedded.MaxPending = 1 << 20
	cfg.NATS.Embedded.MaxPayload = 256 << 10
	ns, _, err := startEmbeddedNATS(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Shutdown()
	// A raw subscriber that never reads after subscribing.
	raw, err := net.Dial("tcp", ns.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	br := bufio.NewReader(raw)
	if _, err := br.ReadString('\n'); err != nil { // INFO
		t.Fatal(err)
	}
	fmt.Fprintf(raw, "CONNECT {\"verbose\":false}\r\nSUB vlp.test.ring.x 1\r\nPING\r\n")
	if line, _ := br.ReadString('\n'); line != "PONG\r\n" {
		t.Fatalf("subscriber handshake: %q", line)
	}
	pub, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	chunk := make([]byte, 128<<10)
	var sent int
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for i := 0; i < 16; i++ {
			pub.Publish("vlp.test.ring.x", chunk)
			sent += len(chunk)
		}
		pub.Flush()
		vz, _ := ns.Varz(nil)
		if vz.SlowConsumers > 0 {
			t.Logf("receiver dropped as a slow consumer after %d MiB published (max_pending %d MiB; the rest sat in socket buffers)", sent>>20, cfg.NATS.Embedded.MaxPending>>20)
			return
		}
	}
	t.Fatalf("no slow consumer after %d MiB with max_pending 1 MiB", sent>>20)
}

// TestEmbeddedNATSPortInUse: a port something else listens on is an error at once that names the
// address and the cause, not a ten-second wait for a listener that never comes.
func TestEmbeddedNATSPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := DefaultConfig()
	cfg.Job = "test"
	cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	t0 := time.Now()
	ns, _, err := startEmbeddedNATS(&cfg)
	if err == nil {
		ns.Shutdown()
		t.Fatalf("started on %s, which another listener holds", ln.Addr())
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("the error came after %v", took)
	}
	if msg := err.Error(); !strings.Contains(msg, ln.Addr().String()) || !strings.Contains(msg, "in use") {
		t.Errorf("error %q does not name the address and the port in use", msg)
	}
}
