// Package integration runs the whole system as an operator would, on simulated hosts, and
// injects the faults real clusters have.
//
// # Basics
//
// A Net is a Linux bridge and one network namespace per host, each joined to the bridge by a
// veth pair, with a hosts file (/etc/netns/<ns>/hosts, which `ip netns exec` mounts over
// /etc/hosts) naming every host. A Cluster starts `vlp coordinator start` and `vlp worker join`
// as real processes inside those namespaces (`ip netns exec`), with real NATS, real Raft over
// TCP and the real checkpoint store on a shared directory; the test process observes them
// through the coordinator's API from the root namespace, which has an address on the bridge.
//
// Faults: Kill (SIGKILL), Pause/Resume (SIGSTOP/SIGCONT), LinkDown/LinkUp (the host's veth on
// the bridge side: a partition of that host), Throttle (a `tc tbf` bandwidth limit on both
// directions of the host's link), and a size-limited tmpfs for a checkpoint directory (a full
// disk). Every fault is undone and every namespace, link, hosts file and mount removed in
// t.Cleanup, also when a test fails.
//
// Invariants are checked from the workers' commit logs (`vlp worker join --commit-log`: every
// worker writes every rank's share of every committed step), from the coordinator's status,
// and from the checkpoint store: Tally counts every pair of the surviving timeline once,
// twice or never.
//
// # Caveats
//
// It needs root and `ip netns` (iproute2); without them the tests skip, saying which is
// missing. `tc netem` does not exist on these kernels: latency and loss are not simulated. The
// workers train the linear model (pure Go, no LibTorch), so a scenario takes seconds.
package integration
