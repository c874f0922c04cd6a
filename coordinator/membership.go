package coordinator

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/hashicorp/raft"
	"github.com/nats-io/nats.go"
)

// Membership: how a replica becomes a voter of its group, stays one, and leaves it.
//
// Bootstrap or join (Config.Discover). The same Peers can mean a new group or an existing one
// that grew: a StatefulSet scaled from 3 to 5 gives its two new pods the five names, and if they
// bootstrapped those five, two empty logs could elect a leader of a second group and overwrite
// the first. So a replica with no Raft state asks every replica of the job (Subjects.Peers)
// what it knows. If any answers that it holds Raft state, a group exists: the replica never
// bootstraps; the group's leader adds it (keepMembership). Only when every other listed peer has
// answered that it holds none does it bootstrap Peers; replicas that decide so together write
// the same first configuration, as static peers always did. A peer that does not answer is waited
// for: a group forms once every listed replica has started.
//
// Staying a voter (keepMembership). A replica outside its own latest configuration (it left the
// group when it was stopped, or it is new), or one that knows no leader, asks its peers; if the
// leader's configuration lacks it, or names it at another address, it asks the leader to add it
// (admin.add-peer: raft AddVoter). A replica restarted on its data is still in the configuration
// unless it left, and then rejoins within about a second; it never bootstraps again.
//
// Leaving (Leave, on SIGTERM). A leader hands leadership over first (raft LeadershipTransfer),
// so the group does not wait an election timeout; then the replica asks the leader to remove it
// (admin.remove-peer: raft RemoveServer). A replica cannot tell a deletion for good (a scale-down)
// from one for a restart, and both are served by leaving: the quorum then counts only replicas
// that run, at every step of a rolling update or a scale-down, and a restarted replica rejoins.
// The last voter never leaves: there would be no group to come back to.

// membershipPoll is how often keepMembership looks.
const membershipPoll = time.Second

// servePeerInfo answers PeerInfoRequests for as long as the replica runs, leader or not.
func (s *Server) servePeerInfo() error {
	sub, err := s.nc.Subscribe(s.subjects.Peers(), func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		var req Request
		switch err := json.Unmarshal(m.Data, &req); {
		case err != nil || len(m.Data) > s.cfg.MaxRequestBytes:
			s.respond(m, "peers", nil, errorf(CodeBadRequest, "not a request envelope"))
		case req.V != APIVersion:
			s.respond(m, "peers", nil, errorf(CodeUnsupportedVersion, "version %d, this coordinator speaks %d", req.V, APIVersion))
		case s.cfg.Token != "" && subtle.ConstantTimeCompare([]byte(req.Token), []byte(s.cfg.Token)) != 1:
			s.respond(m, "peers", nil, errorf(CodeUnauthorized, "wrong or missing job token"))
		default:
			s.respond(m, "peers", s.peerInfo(), nil)
		}
	})
	if err != nil {
		return fmt.Errorf("coordinator: subscribe %s: %w", s.subjects.Peers(), err)
	}
	s.peerSub = sub
	return nil
}

// peerInfo is what this replica knows of its group.
func (s *Server) peerInfo() PeerInfoReply {
	rep := PeerInfoReply{ID: s.cfg.nodeID(), HasState: s.raft.LastIndex() > 0}
	_, leader := s.raft.LeaderWithID()
	rep.Leader = string(leader)
	if f := s.raft.GetConfiguration(); f.Error() == nil {
		for _, srv := range f.Configuration().Servers {
			rep.Servers = append(rep.Servers, RaftMember{ID: string(srv.ID), Address: string(srv.Address), Suffrage: srv.Suffrage.String(), Leader: srv.ID == leader})
		}
	}
	rep.HasState = rep.HasState || len(rep.Servers) > 0
	return rep
}

// askPeers asks every replica of the job what it knows and collects the answers for at most
// window, or until every id in want has answered. This replica's own answer is left out.
func (s *Server) askPeers(want []string, window time.Duration) (map[string]PeerInfoReply, error) {
	body, err := json.Marshal(PeerInfoRequest{From: s.cfg.nodeID()})
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(Request{V: APIVersion, Token: s.cfg.Token, Body: body})
	if err != nil {
		return nil, err
	}
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("coordinator: ask peers: %w", err)
	}
	defer sub.Unsubscribe()
	if err := s.nc.PublishRequest(s.subjects.Peers(), inbox, data); err != nil {
		return nil, fmt.Errorf("coordinator: ask peers: %w", err)
	}
	out := map[string]PeerInfoReply{}
	deadline := time.Now().Add(window)
	for len(missing(want, out)) > 0 || len(want) == 0 {
		m, err := sub.NextMsg(time.Until(deadline))
		if err != nil {
			break // the window closed (or the connection did)
		}
		var rep PeerInfoReply
		if err := decodeReply(m.Data, &rep); err != nil {
			s.log.Warn("a peer's answer refused", "err", err)
			continue
		}
		if rep.ID != "" && rep.ID != s.cfg.nodeID() {
			out[rep.ID] = rep
		}
	}
	return out, nil
}

// missing lists the ids of want that did not answer.
func missing(want []string, got map[string]PeerInfoReply) []string {
	var out []string
	for _, id := range want {
		if _, ok := got[id]; !ok {
			out = append(out, id)
		}
	}
	return out
}

// formGroup runs on a replica that started with no Raft state and Discover: it bootstraps Peers
// once every other listed peer has said it holds no state, or hands over to keepMembership as
// soon as one says it does.
func (s *Server) formGroup() {
	defer s.wg.Done()
	var others []string
	for _, p := range s.cfg.Peers {
		if p.ID != s.cfg.nodeID() {
			others = append(others, p.ID)
		}
	}
	for attempt := 0; ; attempt++ {
		if s.raft.LastIndex() > 0 {
			s.log.Info("the group replicated its state to this replica before it bootstrapped")
			break
		}
		replies, err := s.askPeers(others, time.Second)
		if err != nil {
			s.log.Warn("asking the peers for a group", "err", err)
		}
		holders := holdersOf(replies)
		if len(holders) > 0 {
			s.log.Info("a group exists: joining it instead of bootstrapping", "peers_with_state", holders)
			break
		}
		if lacking := missing(others, replies); len(lacking) == 0 {
			if _, err := bootstrapPeers(s.raft, s.cfg.Peers); err != nil {
				s.log.Error("bootstrap", "err", err)
				return
			}
			s.log.Info("no listed peer holds Raft state: bootstrapped the group", "peers", len(s.cfg.Peers))
			break
		} else if attempt%10 == 0 {
			s.log.Info("waiting for every listed peer to answer before bootstrapping (none holds Raft state yet)", "not_answered", lacking)
		}
		select {
		case <-s.done:
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
	s.keepMembership()
}

// holdersOf lists the peers that answered that they hold Raft state, sorted.
func holdersOf(replies map[string]PeerInfoReply) []string {
	var out []string
	for id, r := range replies {
		if r.HasState {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// bootstrapPeers writes Peers as the first configuration. ErrCantBootstrap (state arrived in the
// meantime) is not an error.
func bootstrapPeers(r *raft.Raft, peers []Peer) (bool, error) {
	var servers []raft.Server
	for _, p := range peers {
		servers = append(servers, raft.Server{ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Address)})
	}
	err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if errors.Is(err, raft.ErrCantBootstrap) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("coordinator: bootstrap: %w", err)
	}
	return true, nil
}

// keepMembership keeps this replica a voter of its group, at its own address, until it closes.
func (s *Server) keepMembership() {
	tick := time.NewTicker(membershipPoll)
	defer tick.Stop()
	warned := time.Time{}
	for {
		if err := s.ensureMember(); err != nil && time.Since(warned) > 10*time.Second {
			s.log.Warn("asking the group to add this replica", "err", err)
			warned = time.Now()
		}
		select {
		case <-s.done:
			return
		case <-tick.C:
		}
	}
}

// ensureMember asks the leader to add this replica when the leader's configuration lacks it.
// It asks nothing while this replica is a voter at its address and knows a leader.
func (s *Server) ensureMember() error {
	want := s.cfg.ownPeerAddress(string(s.parts.trans.LocalAddr()))
	leaderAddr, _ := s.raft.LeaderWithID()
	if isVoterAt(s.configuration(), s.cfg.nodeID(), want) && leaderAddr != "" {
		return nil
	}
	replies, err := s.askPeers(nil, 500*time.Millisecond)
	if err != nil {
		return err
	}
	var leader *PeerInfoReply
	for _, r := range replies {
		if r.Leader == r.ID {
			leader = &r
			break
		}
	}
	if leader == nil {
		return nil // no leader answered: nothing can add this replica now
	}
	for _, m := range leader.Servers {
		if m.ID == s.cfg.nodeID() && m.Address == want && m.Suffrage == raft.Voter.String() {
			return nil // in the group's configuration: the leader replicates to it
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.peerClient.AddPeer(ctx, AddPeerRequest{ID: s.cfg.nodeID(), Address: want}); err != nil {
		return fmt.Errorf("add-peer through %s: %w", leader.ID, err)
	}
	s.log.Info("added to the coordinator group", "leader", leader.ID, "address", want)
	return nil
}

// configuration is this replica's latest Raft configuration (empty before it has one).
func (s *Server) configuration() raft.Configuration {
	f := s.raft.GetConfiguration()
	if f.Error() != nil {
		return raft.Configuration{}
	}
	return f.Configuration()
}

// isVoterAt reports whether id is a voter of c, at address addr unless addr is "".
func isVoterAt(c raft.Configuration, id, addr string) bool {
	for _, srv := range c.Servers {
		if string(srv.ID) == id {
			return srv.Suffrage == raft.Voter && (addr == "" || string(srv.Address) == addr)
		}
	}
	return false
}

// voters counts the voters of c.
func voters(c raft.Configuration) int {
	n := 0
	for _, srv := range c.Servers {
		if srv.Suffrage == raft.Voter {
			n++
		}
	}
	return n
}

// TransferLeadership hands leadership to the most up-to-date follower when this replica leads
// and has a follower to hand it to; it returns when another replica leads (or the transfer
// failed). A replica that does not lead has nothing to do.
func (s *Server) TransferLeadership() error {
	if s.raft.State() != raft.Leader || voters(s.configuration()) < 2 {
		return nil
	}
	t0 := time.Now()
	if err := s.raft.LeadershipTransfer().Error(); err != nil {
		return fmt.Errorf("coordinator: leadership transfer: %w", err)
	}
	s.log.Info("leadership handed over", "took", time.Since(t0).Round(time.Millisecond))
	return nil
}

// Leave prepares a shutdown: a leader hands leadership over (TransferLeadership), then, with
// remove, the replica asks the leader to take it out of the Raft configuration, and waits, until
// ctx ends, for the removal to commit. The only voter of a group keeps its place. Leave does not
// close the Server; a replica that left and restarts on its data is added again
// (keepMembership).
func (s *Server) Leave(ctx context.Context, remove bool) error {
	id := s.cfg.nodeID()
	if !isVoterAt(s.configuration(), id, "") {
		return nil
	}
	if voters(s.configuration()) < 2 {
		s.log.Info("the only voter of the group: staying in its configuration")
		return nil
	}
	if err := s.TransferLeadership(); err != nil && !remove {
		return err
	}
	if !remove {
		return nil
	}
	if err := s.peerClient.RemovePeer(ctx, id); err != nil {
		return fmt.Errorf("coordinator: leave the group: %w", err)
	}
	s.log.Info("left the coordinator group")
	// The leader stops replicating to a removed replica after a best effort; wait briefly for the
	// entry, so that this replica's own log says it left (a restart then rejoins at once).
	for wait := time.Now().Add(time.Second); isVoterAt(s.configuration(), id, "") && time.Now().Before(wait); {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(20 * time.Millisecond):
		}
	}
	return nil
}
