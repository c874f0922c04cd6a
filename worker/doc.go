// Package worker is one training process of a vlp job: it joins the job's
// coordinator, takes a rank in a ring generation, and trains.
//
// # The loop
//
// A Worker runs generations. At the start of each it builds the
// generation's ring (allreduce), agrees with the other members on who holds
// the newest training state, and receives it by broadcast (a newcomer, or
// survivors that missed the last committed step); when nobody holds any
// state (a fresh job, a resume after everything died) rank 0 loads the
// checkpoint the coordinator names, or initialises from the seed, and
// broadcasts that. Then it steps:
//
//	lease (rank 0 for every rank, broadcast) → take this rank's pairs →
//	forward/backward (gradient sums) → all-reduce in buckets, every rank's
//	data cursor all-gathered with the first bucket → average → clip →
//	AdamW step → commit → log, report progress, checkpoint.
//
// A step is committed on a rank when its all-reduce completes there; only
// then does the rank touch its parameters, its data queue or its records.
// A failed all-reduce abandons the step with nothing changed.
//
// # Generations
//
// Every join, leave or death makes a new generation. A worker notices it
// between steps (the coordinator's announcements and heartbeat replies), or
// mid-step as a failed collective; either way it closes the ring, waits
// (with a deadline) for the next generation and syncs again. Survivors keep
// their parameters: there is no restart and no reload.
//
// # Exactly once
//
// Every rank consumes its leased units in order, so a rank's position is one
// cursor (epoch, unit, offset). The cursors ride on the all-reduce, so every
// rank of a generation holds the same record of the last committed step: who
// consumed which pairs, where everyone stands, which units finished. After a
// death the survivors hand that record to the coordinator before stepping
// again, and the departed rank's units go back to pending exactly where its
// cursor left them. See docs/worker.md.
//
// # Caveats
//
// Leases are lazy (a rank leases a unit only when its queue cannot fill the
// next step) so that a checkpoint's cursors fully describe every rank's
// queue, which is what makes a resumed run bitwise equal to an
// uninterrupted one. The checkpoint store is read by the rank that restores
// (rank 0 of the first generation), so on a cluster it must be on storage
// that rank can reach.
package worker
