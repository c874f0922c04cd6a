package allreduce

import (
	"fmt"
	"hash/fnv"
	"strings"
)

// Member is one participant of a generation, in ring order.
type Member struct {
	// ID names the worker (stable across generations); it appears in errors.
	ID string
	// Addr is the host:port of the member's TCP listener (TCPNode.Addr), or ""
	// when it has none; only the TCP and auto transports use it.
	Addr string
	// Server names the NATS server the member is connected to
	// (nats.Conn.ConnectedServerName); TopologyOrder groups members by it.
	Server string
	// Subject, when set, is the NATS subject prefix under which the member
	// receives ring frames: <Subject>.<generation>.<rank> (and .ctl). A
	// member whose NATS credential may subscribe to its own subjects only
	// (the coordinator's per-worker nkeys) gets one; "" is the job's shared
	// vlp.<job>.ring. Only the nats and auto transports use it.
	Subject string
}

// Generation identifies one ring: a job, a generation number that the
// coordinator increments on every join, leave or death, and the ordered
// members (rank = index). Every rank must be given the same Generation.
type Generation struct {
	Job     string
	Number  uint64
	Members []Member
}

// Size is the number of ranks.
func (g Generation) Size() int { return len(g.Members) }

// Validate checks the job name (a single NATS subject token), the member list
// and the rank.
func (g Generation) Validate(rank int) error {
	if err := validateJob(g.Job); err != nil {
		return err
	}
	if len(g.Members) == 0 {
		return configErr("Generation.Members is empty")
	}
	if len(g.Members) > maxRanks {
		return configErr("Generation.Members has %d members, at most %d", len(g.Members), maxRanks)
	}
	seen := make(map[string]bool, len(g.Members))
	for i, m := range g.Members {
		if m.Subject != "" && !validSubject(m.Subject) {
			return configErr("Generation.Members[%d].Subject %q is not a NATS subject without wildcards", i, m.Subject)
		}
		if m.ID == "" {
			continue
		}
		if seen[m.ID] {
			return configErr("Generation.Members[%d].ID %q appears twice", i, m.ID)
		}
		seen[m.ID] = true
	}
	if rank < 0 || rank >= len(g.Members) {
		return configErr("rank %d outside [0, %d)", rank, len(g.Members))
	}
	return nil
}

// maxRanks bounds the ring so that ranks fit the wire header comfortably.
const maxRanks = 1 << 16

func validateJob(job string) error {
	if job == "" {
		return configErr("Generation.Job is empty")
	}
	if strings.ContainsAny(job, ". *>\t\r\n") {
		return configErr("Generation.Job %q must be one NATS subject token (no '.', ' ', '*', '>')", job)
	}
	return nil
}

// member returns a printable name for rank r.
func (g Generation) member(r int) string {
	if r >= 0 && r < len(g.Members) {
		return g.Members[r].ID
	}
	return ""
}

// jobID is the 64-bit tag that every message carries for the job: a hash, so
// the header has a fixed size. It is not a secret and not an authenticator.
func jobID(job string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(job))
	return h.Sum64()
}

// ringSubject is the NATS subject on which rank `rank` of a generation
// receives every message addressed to it.
func ringSubject(job string, gen uint64, rank int) string {
	return fmt.Sprintf("vlp.%s.ring.%d.%d", job, gen, rank)
}

// subject is where rank receives: its member's Subject, or the job's shared
// ring subject.
func (g Generation) subject(rank int) string {
	if s := g.Members[rank].Subject; s != "" {
		return fmt.Sprintf("%s.%d.%d", s, g.Number, rank)
	}
	return ringSubject(g.Job, g.Number, rank)
}

// validSubject: dot-separated non-empty tokens, no wildcards, no white space.
func validSubject(s string) bool {
	if strings.ContainsAny(s, " *>\t\r\n") {
		return false
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" {
			return false
		}
	}
	return true
}

// TopologyOrder returns the members reordered so that members on the same
// NATS server are adjacent in the ring: groups in order of first appearance,
// members in their original order within a group. A ring relayed by a NATS
// cluster then crosses between servers once per group instead of up to once
// per hop. The coordinator keeps its member list in this order as workers
// join (each enters after the last member on its server); the Ring itself
// uses the order it is given.
func TopologyOrder(members []Member) []Member {
	var groups []string
	byServer := make(map[string][]Member)
	for _, m := range members {
		if _, ok := byServer[m.Server]; !ok {
			groups = append(groups, m.Server)
		}
		byServer[m.Server] = append(byServer[m.Server], m)
	}
	out := make([]Member, 0, len(members))
	for _, s := range groups {
		out = append(out, byServer[s]...)
	}
	return out
}
