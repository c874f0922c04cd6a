package coordinator

import (
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// partitionLayer is a raft.StreamLayer over TCP that can refuse to talk to chosen peers: the test
// harness's way to partition a TCP cluster. Blocking a peer fails new dials to it and closes the
// connections already dialled; both sides block each other, so no traffic flows either way.
type partitionLayer struct {
	net.Listener
	mu      sync.Mutex
	blocked map[raft.ServerAddress]bool
	conns   map[raft.ServerAddress][]net.Conn
}

var _ raft.StreamLayer = (*partitionLayer)(nil)

func newNetTransport(l *partitionLayer, log *slog.Logger) raft.Transport {
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream: l, MaxPool: 3, Timeout: 2 * time.Second, Logger: hclogAdapter(log, "raft-net"),
	})
}

// Dial implements raft.StreamLayer.
func (l *partitionLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	l.mu.Lock()
	blocked := l.blocked[addr]
	l.mu.Unlock()
	if blocked {
		return nil, fmt.Errorf("partitioned from %s", addr)
	}
	c, err := net.DialTimeout("tcp", string(addr), timeout)
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.blocked[addr] {
		c.Close()
		return nil, fmt.Errorf("partitioned from %s", addr)
	}
	if l.conns == nil {
		l.conns = map[raft.ServerAddress][]net.Conn{}
	}
	l.conns[addr] = append(l.conns[addr], c)
	return c, nil
}

func (l *partitionLayer) block(addr raft.ServerAddress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocked[addr] = true
	for _, c := range l.conns[addr] {
		c.Close()
	}
	delete(l.conns, addr)
}

func (l *partitionLayer) unblock(addr raft.ServerAddress) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.blocked, addr)
}

func (l *partitionLayer) blockedCopy() map[raft.ServerAddress]bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := map[raft.ServerAddress]bool{}
	for k, v := range l.blocked {
		m[k] = v
	}
	return m
}
