package coordinator

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// raftParts are what a Raft node is built from; close releases the stores and transport.
type raftParts struct {
	logs   raft.LogStore
	stable raft.StableStore
	snaps  raft.SnapshotStore
	trans  raft.Transport
	bolt   *raftboltdb.BoltStore
}

func (p *raftParts) close() {
	if c, ok := p.trans.(io.Closer); ok {
		c.Close()
	}
	if p.bolt != nil {
		p.bolt.Close()
	}
}

// newRaftParts opens the bbolt log and stable store (raft.db) and the file snapshot store under
// DataDir, or in-memory ones when DataDir is empty, and the TCP transport unless the config
// carries one.
func newRaftParts(c *Config, logger hclog.Logger) (*raftParts, error) {
	p := &raftParts{}
	if c.DataDir == "" {
		store := raft.NewInmemStore()
		p.logs, p.stable, p.snaps = store, store, raft.NewInmemSnapshotStore()
	} else {
		if err := os.MkdirAll(c.DataDir, 0o750); err != nil {
			return nil, fmt.Errorf("coordinator: data dir: %w", err)
		}
		bolt, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(c.DataDir, "raft.db")})
		if err != nil {
			return nil, fmt.Errorf("coordinator: raft store %s: %w", filepath.Join(c.DataDir, "raft.db"), err)
		}
		p.bolt, p.logs, p.stable = bolt, bolt, bolt
		snaps, err := raft.NewFileSnapshotStoreWithLogger(c.DataDir, c.Raft.SnapshotRetain, logger)
		if err != nil {
			bolt.Close()
			return nil, fmt.Errorf("coordinator: snapshot store: %w", err)
		}
		p.snaps = snaps
	}
	p.trans = c.Transport
	if p.trans == nil {
		// adv stays nil for port 0 with no RaftAdvertise: the transport advertises what it binds.
		var adv net.Addr
		if _, port, _ := net.SplitHostPort(c.RaftAddr); port != "0" || c.RaftAdvertise != "" {
			a, err := net.ResolveTCPAddr("tcp", c.raftAdvertise())
			if err != nil {
				p.close()
				return nil, fmt.Errorf("%w: RaftAdvertise %q: %v", ErrInvalidConfig, c.raftAdvertise(), err)
			}
			adv = a
		}
		t, err := raft.NewTCPTransportWithLogger(c.RaftAddr, adv, 3, 10*time.Second, logger)
		if err != nil {
			p.close()
			return nil, fmt.Errorf("coordinator: raft transport on %s: %w", c.RaftAddr, err)
		}
		if adv == nil {
			c.RaftAddr = string(t.LocalAddr())
		}
		p.trans = t
	}
	return p, nil
}

// bootstrap writes the first configuration on a store with no Raft state: the static Peers, or
// this replica alone. A joiner (Config.Join) does not bootstrap: the group adds it; nor, yet, does
// a replica that must first ask its peers (Config.Discover): formGroup decides once NATS is up.
func bootstrap(r *raft.Raft, c *Config, p *raftParts) (bool, error) {
	has, err := raft.HasExistingState(p.logs, p.stable, p.snaps)
	if err != nil {
		return false, fmt.Errorf("coordinator: raft state: %w", err)
	}
	if has || c.Join != "" || c.discovers() {
		return false, nil
	}
	var servers []raft.Server
	for _, peer := range c.Peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(peer.ID), Address: raft.ServerAddress(peer.Address)})
	}
	if len(servers) == 0 {
		servers = []raft.Server{{ID: raft.ServerID(c.nodeID()), Address: p.trans.LocalAddr()}}
	}
	if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && err != raft.ErrCantBootstrap {
		return false, fmt.Errorf("coordinator: bootstrap: %w", err)
	}
	return true, nil
}

// hclogAdapter sends hashicorp/raft's log lines to slog.
func hclogAdapter(l *slog.Logger, name string) hclog.Logger {
	return hclog.New(&hclog.LoggerOptions{
		Name:        name,
		Level:       hclog.Warn,
		Output:      slogWriter{l.With("component", name)},
		DisableTime: true,
	})
}

type slogWriter struct{ l *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.l.Warn(string(bytes.TrimSpace(p)))
	return len(p), nil
}
