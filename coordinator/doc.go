// Package coordinator is the control plane of a vlp job: a Raft group (hashicorp/raft, log and
// stable store in bbolt, file snapshots, TCP transport) whose replicated state machine owns the job
// spec, the workers and their ring generations, every work unit of the open epochs, the committed
// step with every rank's data cursor, and the checkpoint records. The leader serves it to workers
// and operators as a request/reply API over NATS. It needs no LibTorch and never imports the model
// or the worker.
//
// # Basics
//
// A Server is one replica. NewServer opens (or resumes) its Raft state under Config.DataDir,
// bootstraps a single node or a static group (Config.Peers) on a fresh directory, or asks an
// existing group to add it (Config.Join). With Config.Discover, Peers mean "bootstrap or join":
// a fresh replica joins the group one of its peers already holds, and bootstraps only when every
// peer answers that it holds none; a replica that left is added again; Leave hands leadership
// over and takes the replica out of the configuration before a shutdown (membership.go). By default it runs an embedded NATS server (three
// replicas' servers form one NATS cluster through their routes); NATSConfig.URL points it at an
// external cluster instead.
//
// Only the leader subscribes to "vlp.<job>.coord.>": it subscribes when it gains leadership (after
// a Raft barrier, so its FSM holds everything committed) and unsubscribes when it loses it. A client
// therefore never needs to know which replica leads; after a failover its retried request simply
// reaches the new leader. Client is that client: Join, Heartbeat, Leave, LeaseUnits,
// ReportProgress, RecordCheckpoint, Status and Watch for workers; Submit, Stop, Rollback and Members
// for operators. Every message is versioned JSON (messages.go); the envelope carries the job token.
//
// # The state machine
//
// Every change is a Command in the Raft log: a type, a version, a JSON body and the leader's clock
// (AtMS), so FSM.Apply reads no clock and no map order and every replica computes byte-identical
// state (tests compare snapshots byte for byte). Apply validates a command completely before it
// changes anything: a refused command leaves the state as it was.
//
// Heartbeats are not in the log. The leader keeps them in memory; a worker silent for LeaseTTL is
// declared dead by a logged command. A new leader gives every worker two lease TTLs to reach it, so
// a failover does not kill workers.
//
// Work units are ids 0..U-1 per epoch. The FSM never computes them: when an epoch opens, the leader
// asks its UnitSource (the job spec by default, the sharding package's epoch plan in production)
// and logs the pair counts, run-length encoded.
//
// # Exactly once
//
// A unit is pending, leased (to a worker, in a generation), orphaned (its worker departed) or done
// (at a committed step); each carries the offset its pairs were consumed to. Rank 0 reports
// progress: the committed step, every rank's cursor (unit, offset) and the units finished since
// the last report. When a member dies or leaves, a new generation begins and its units are
// orphaned: only the survivors know how far the last committed step got, so they report it
// (ProgressRequest.Handover) before their new ring steps, and only then do the orphaned units go
// back to pending, each from its offset. If no member is left, nobody holds the parameters: the job
// rolls back to the latest usable checkpoint, and every unit consumed after it (the FSM recorded
// the partly consumed ones when the checkpoint was announced) returns to pending.
//
// # Caveats
//
//   - Apply refuses a log entry of an unknown version. Upgrade every replica before a newer one can
//     lead: a mixed group would diverge.
//   - Workers on the shared worker credential are one principal: subject permissions keep them off
//     operator operations and other jobs' subjects, but not off each other's reply inboxes and
//     ring frames. Workers on their own nkeys (NATSConfig.WorkerNkeysFile) are kept apart: each
//     may read only its own inbox and ring links, and the key in a request's subject is checked
//     against the worker the request names (identity.go).
//   - The job token authenticates requests, it does not encrypt them: use NATS TLS off a trusted
//     network. security.go checks TLS and authentication at startup and refuses TLS that lets
//     anyone in; docs/security.md has the threat model.
package coordinator
