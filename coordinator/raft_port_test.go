package coordinator

import (
	"net"
	"testing"
	"time"
)

// A replica given port 0 listens on a free port and advertises the one it got (no window between
// picking a port and taking it); restarted on its data dir with port 0 again, it leads again from
// another port.
func TestRaftAddrPortZero(t *testing.T) {
	dir := t.TempDir()
	start := func() (*Server, string) {
		t.Helper()
		cfg := DefaultConfig()
		cfg.Job, cfg.Logger, cfg.Raft = "test", TestLogger(), TestRaftTimeouts(false)
		cfg.NodeID, cfg.DataDir = "solo", dir
		cfg.RaftAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
		cfg.NATS.Embedded.Host, cfg.NATS.Embedded.Port = "127.0.0.1", -1
		s, err := NewServer(cfg)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(10 * time.Second)
		for !s.IsLeader() && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if !s.IsLeader() {
			s.Close()
			t.Fatal("the replica did not become leader")
		}
		addr := string(s.parts.trans.LocalAddr())
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "0" || s.cfg.RaftAddr != addr {
			s.Close()
			t.Fatalf("the transport listens on %q, the config says %q: want the same real port", addr, s.cfg.RaftAddr)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			s.Close()
			t.Fatalf("dialling the advertised %s: %v", addr, err)
		}
		c.Close()
		return s, addr
	}
	s, first := start()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, second := start()
	defer s.Close()
	t.Logf("first run on %s, the restart on %s", first, second)
}
