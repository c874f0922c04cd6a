package coordinator

import (
	"bytes"
	"fmt"
	"os"
	"time"
)

// Revocation. Every replica rereads NATS.WorkerNkeysFile every WorkerKeysPoll; when its content
// changes (and parses), the replica swaps its registry, which the API checks (identity.go), and
// reloads its embedded server's nkey users: the server disconnects a client whose key is gone and
// refuses it from then on. The leader then declares the members that joined with a revoked key
// dead, so their units go to the survivors at once rather than after the lease TTL. A file that
// does not parse is logged and the previous registry kept: a typo must not lock every worker out.
// With several coordinators every replica needs the new file: a worker whose key one replica
// still accepts may connect there, but the leader refuses its requests.

// loadWorkerKeys reads the registry at startup; a server without NATS.WorkerNkeysFile has none.
func (s *Server) loadWorkerKeys() error {
	path := s.cfg.NATS.WorkerNkeysFile
	if path == "" {
		return nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return securityErr("--nats-worker-nkeys (NATS.WorkerNkeysFile): %v", err)
	}
	keys, err := ParseWorkerKeys(raw, path)
	if err != nil {
		return securityErr("--nats-worker-nkeys (NATS.WorkerNkeysFile): %v", err)
	}
	s.keysRaw = raw
	s.keys.Store(keys)
	return nil
}

// workerKeys is the current registry, or nil when NATS.WorkerNkeysFile is not given.
func (s *Server) workerKeys() *WorkerKeys { return s.keys.Load() }

// watchWorkerKeys rereads the registry until the server closes.
func (s *Server) watchWorkerKeys() {
	defer s.wg.Done()
	tick := time.NewTicker(s.cfg.WorkerKeysPoll)
	defer tick.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
		if err := s.reloadWorkerKeys(); err != nil {
			s.log.Error("worker nkeys not reloaded; the previous ones stay in force", "file", s.cfg.NATS.WorkerNkeysFile, "err", err)
		}
	}
}

// reloadWorkerKeys rereads the registry and applies it if it changed.
func (s *Server) reloadWorkerKeys() error {
	path := s.cfg.NATS.WorkerNkeysFile
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if bytes.Equal(raw, s.keysRaw) {
		return nil
	}
	keys, err := ParseWorkerKeys(raw, path)
	if err != nil {
		return err
	}
	old := s.workerKeys()
	if s.ns != nil {
		o := *s.natsBase
		if o.Nkeys, err = s.cfg.nkeyUsers(keys); err != nil {
			return err
		}
		if err := s.ns.ReloadOptions(&o); err != nil {
			return fmt.Errorf("embedded NATS: %w", err)
		}
	}
	s.keysRaw = raw
	s.keys.Store(keys)
	var added, revoked []string
	for _, k := range keys.Keys() {
		if !old.Has(k) {
			added = append(added, keys.Name(k))
		}
	}
	for _, k := range old.Keys() {
		if !keys.Has(k) {
			revoked = append(revoked, old.Name(k))
		}
	}
	s.log.Info("worker nkeys reloaded", "file", path, "keys", keys.Len(), "added", added, "revoked", revoked)
	s.kickLeader()
	return nil
}

// expireRevoked declares dead, on the leader, every member that joined with a worker nkey no
// longer registered.
func (s *Server) expireRevoked(l *leadership) {
	keys := s.workerKeys()
	if keys == nil {
		return
	}
	shared := s.cfg.NATS.Embedded.WorkerNkey
	var revoked []*Worker
	s.fsm.Read(func(st *State) {
		for _, w := range st.Workers {
			if w.Identity != "" && w.Identity != shared && !keys.Has(w.Identity) {
				c := *w
				revoked = append(revoked, &c)
			}
		}
	})
	for _, w := range revoked {
		if l.ctx.Err() != nil {
			return
		}
		reason := fmt.Sprintf("its nkey %s was revoked", shortKey(w.Identity))
		if _, err := s.apply(CmdDead, Departure{WorkerID: w.ID, Reason: reason}); err != nil {
			s.log.Warn("could not remove a revoked worker", "worker", w.ID, "err", err)
			continue
		}
		s.metrics.deadWorkers.Inc()
		s.log.Info("worker removed: its nkey was revoked", "worker", w.ID, "name", w.Name, "nkey", shortKey(w.Identity))
		l.mu.Lock()
		delete(l.seen, w.ID)
		l.mu.Unlock()
	}
}

// knownIdentity reports whether a request may carry identity: any identity when no registry is
// given (an external NATS server decides who may publish where), else a registered key or the
// shared worker nkey.
func (s *Server) knownIdentity(identity string) bool {
	keys := s.workerKeys()
	if keys == nil {
		return true
	}
	return keys.Has(identity) || identity == s.cfg.NATS.Embedded.WorkerNkey
}
