package allreduce

import (
	"log/slog"
	"time"
)

// Config tunes a Ring. Every rank of a generation should use the same Wire;
// the other fields may differ between ranks.
type Config struct {
	// Wire is the element type AllReduce puts on the wire. Float32 (default)
	// is exact; BFloat16 halves the bytes, rounds every transmitted partial sum
	// to bfloat16 (nearest even) and still adds in float32.
	Wire DType
	// ChunkBytes is the largest payload of one frame, in bytes, and so the
	// granularity of the pipeline: a rank forwards a chunk as soon as it has
	// reduced it. Default 1 MiB: per-frame costs vanish, the pipeline fills
	// within a few chunks. It is clamped to the transport's MaxFrame minus the
	// header and MaxMeta (so never above a NATS server's max_payload) and
	// rounded down to a multiple of 8.
	ChunkBytes int
	// WindowBytes bounds the bytes a sender has in flight to its receiver
	// before the receiver acknowledges them. Default 16 MiB: a few chunks of
	// pipeline, and well below nats-server's max_pending (64 MiB by default),
	// past which the server cuts a receiver off as a slow consumer. At least
	// twice the largest frame.
	WindowBytes int
	// MaxMeta is the largest per-rank metadata, in bytes. Default 16 KiB.
	MaxMeta int
	// Timeout is the deadline of a collective whose context has none.
	// Default 5 minutes: a broadcast of hundreds of MB over a NATS relay fits.
	Timeout time.Duration
	// HeartbeatInterval is how often a rank tells its ring neighbours it is
	// alive, in and between collectives. Default 1 s.
	HeartbeatInterval time.Duration
	// PeerTimeout is the silence after which a ring neighbour is declared
	// lost. Default 10 s. It must cover the skew between ranks creating their
	// Rings for a generation, and exceed 2×HeartbeatInterval.
	PeerTimeout time.Duration
	// Logger receives failures (warn) and transport choices (info).
	// Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns the defaults documented on each field.
func DefaultConfig() Config {
	return Config{
		Wire:              Float32,
		ChunkBytes:        1 << 20,
		WindowBytes:       16 << 20,
		MaxMeta:           16 << 10,
		Timeout:           5 * time.Minute,
		HeartbeatInterval: time.Second,
		PeerTimeout:       10 * time.Second,
	}
}

// withDefaults fills zero fields from DefaultConfig.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.Wire == 0 {
		c.Wire = d.Wire
	}
	if c.ChunkBytes == 0 {
		c.ChunkBytes = d.ChunkBytes
	}
	if c.WindowBytes == 0 {
		c.WindowBytes = d.WindowBytes
	}
	if c.MaxMeta == 0 {
		c.MaxMeta = d.MaxMeta
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.PeerTimeout == 0 {
		c.PeerTimeout = d.PeerTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate checks the fields after defaults are applied, naming the field and
// its bound.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Wire != Float32 && c.Wire != BFloat16:
		return configErr("Config.Wire is %v, want Float32 or BFloat16", c.Wire)
	case c.ChunkBytes < 8:
		return configErr("Config.ChunkBytes is %d, want >= 8", c.ChunkBytes)
	case c.MaxMeta < 0 || c.MaxMeta > 1<<20:
		return configErr("Config.MaxMeta is %d, want 0..1 MiB", c.MaxMeta)
	case c.WindowBytes < 2*(headerSize+pad8(c.MaxMeta)+c.ChunkBytes):
		return configErr("Config.WindowBytes is %d, want >= 2 frames = %d", c.WindowBytes, 2*(headerSize+pad8(c.MaxMeta)+c.ChunkBytes))
	case c.Timeout <= 0:
		return configErr("Config.Timeout is %v, want > 0", c.Timeout)
	case c.HeartbeatInterval <= 0:
		return configErr("Config.HeartbeatInterval is %v, want > 0", c.HeartbeatInterval)
	case c.PeerTimeout < 2*c.HeartbeatInterval:
		return configErr("Config.PeerTimeout is %v, want >= 2×HeartbeatInterval = %v", c.PeerTimeout, 2*c.HeartbeatInterval)
	}
	return nil
}
