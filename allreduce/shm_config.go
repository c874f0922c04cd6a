package allreduce

import "time"

// shmPage is the page size the shared-memory layout is cut in.
const shmPage = 4096

// ShmConfig configures a ShmTransport. Every rank of a generation must use the
// same LinkBytes.
type ShmConfig struct {
	// Dir is the shared-memory directory, a tmpfs that every worker of the
	// host sees (in a container: the host's /dev/shm mounted, or one pod).
	// Default /dev/shm.
	Dir string
	// LinkBytes is the ring of each directed link, in bytes, a multiple of
	// 4096. The largest frame is half of it. Default 8 MiB: a frame of the
	// Ring's default 1 MiB chunk and a few more wait in it while the receiver
	// catches up. An inbox takes a page plus LinkBytes per ring neighbour.
	LinkBytes int
	// ArenaBytes is the part of an all-reduce that the shm kind (every rank
	// of the generation on this host) sums per round through the shared
	// arena, in bytes, a multiple of 4096: each rank's inbox holds that
	// much of its values for the others, a share of the sums and 1 MiB for
	// metadata. Larger buffers take several rounds. Default 32 MiB.
	ArenaBytes int
	// CheckInterval is how often a rank checks that the peers it talks to
	// are still alive, and the longest a reader or a waiting sender sleeps.
	// Default 20 ms: a killed neighbour is noticed within about that.
	CheckInterval time.Duration
}

func (c ShmConfig) withDefaults() ShmConfig {
	if c.Dir == "" {
		c.Dir = "/dev/shm"
	}
	if c.LinkBytes == 0 {
		c.LinkBytes = 8 << 20
	}
	if c.ArenaBytes == 0 {
		c.ArenaBytes = 32 << 20
	}
	if c.CheckInterval == 0 {
		c.CheckInterval = 20 * time.Millisecond
	}
	return c
}

// Validate checks the fields after defaults are applied.
func (c ShmConfig) Validate() error {
	c = c.withDefaults()
	switch {
	case c.LinkBytes < 16*shmPage || c.LinkBytes%shmPage != 0 || c.LinkBytes > 1<<30:
		return configErr("ShmConfig.LinkBytes is %d, want a multiple of %d in [64 KiB, 1 GiB]", c.LinkBytes, shmPage)
	case c.ArenaBytes < 16*shmPage || c.ArenaBytes%shmPage != 0 || c.ArenaBytes > 1<<30:
		return configErr("ShmConfig.ArenaBytes is %d, want a multiple of %d in [64 KiB, 1 GiB]", c.ArenaBytes, shmPage)
	case c.CheckInterval <= 0 || c.CheckInterval > 10*time.Second:
		return configErr("ShmConfig.CheckInterval is %v, want (0, 10s]", c.CheckInterval)
	}
	return nil
}
