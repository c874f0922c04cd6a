//go:build !linux

package allreduce

import "context"

// ShmTransport needs Linux (futexes, fallocate on tmpfs); elsewhere
// NewShmTransport refuses.
type ShmTransport struct {
	hook func()
}

var _ Transport = (*ShmTransport)(nil)

// NewShmTransport refuses: the shm transport needs Linux.
func NewShmTransport(gen Generation, rank int, cfg ShmConfig) (*ShmTransport, error) {
	return newShmTransport(gen, rank, cfg, true)
}

func newShmTransport(Generation, int, ShmConfig, bool) (*ShmTransport, error) {
	return nil, configErr("the shm transport needs Linux")
}

func (t *ShmTransport) Path() string                               { return "" }
func (t *ShmTransport) MaxFrame() int                              { return 0 }
func (t *ShmTransport) Connect(context.Context, int) error         { return ErrClosed }
func (t *ShmTransport) Send(context.Context, int, ...[]byte) error { return ErrClosed }
func (t *ShmTransport) Recv(context.Context) (Frame, error)        { return Frame{}, ErrClosed }
func (t *ShmTransport) Close() error                               { return nil }
