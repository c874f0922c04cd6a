package allreduce

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// NATSTransport carries frames over core NATS (no JetStream): rank r of
// generation g of job j receives every frame addressed to it on the subject
// vlp.<j>.ring.<g>.<r>. Every frame crosses a server (client → server →
// client), which caps a NATS ring's bandwidth at the server's relay rate;
// see docs/allreduce.md. Frames are never larger than the connection's
// MaxPayload. The connection stays the caller's: Close unsubscribes only.
type NATSTransport struct {
	nc       *nats.Conn
	sub      *nats.Subscription
	subjects []string // by rank
	maxFrame int

	mu  sync.Mutex // guards buf
	buf []byte     // assembles multi-part frames; nats copies it on Publish
}

var _ Transport = (*NATSTransport)(nil)

// natsPendingBytes bounds what nats.go queues for the subscription. The Ring's
// window keeps a well-behaved sender far below it; past it nats.go drops
// frames and the generation fails by deadline rather than sum garbage.
const natsPendingBytes = 256 << 20

// NewNATSTransport subscribes rank's subject of gen on nc and waits until the
// server has the subscription, so that frames sent to it from then on arrive.
func NewNATSTransport(nc *nats.Conn, gen Generation, rank int) (*NATSTransport, error) {
	if err := gen.Validate(rank); err != nil {
		return nil, err
	}
	maxFrame := int(nc.MaxPayload())
	if maxFrame < headerSize+8 {
		return nil, configErr("NATS max_payload %d is too small for a frame", maxFrame)
	}
	t := &NATSTransport{nc: nc, maxFrame: maxFrame, subjects: make([]string, gen.Size())}
	for r := range t.subjects {
		t.subjects[r] = ringSubject(gen.Job, gen.Number, r)
	}
	sub, err := nc.SubscribeSync(t.subjects[rank])
	if err != nil {
		return nil, fmt.Errorf("allreduce: subscribe %s: %w", t.subjects[rank], err)
	}
	if err := sub.SetPendingLimits(-1, natsPendingBytes); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("allreduce: pending limits: %w", err)
	}
	if err := nc.FlushTimeout(10 * time.Second); err != nil {
		sub.Unsubscribe()
		return nil, fmt.Errorf("allreduce: flush subscription %s: %w", t.subjects[rank], err)
	}
	t.sub = sub
	return t, nil
}

// Send publishes the frame on the receiver's subject. Publishing is buffered
// by nats.go; a frame sent to a rank that is gone is silently lost (the Ring's
// heartbeats find the loss).
func (t *NATSTransport) Send(ctx context.Context, to int, parts ...[]byte) error {
	if to < 0 || to >= len(t.subjects) {
		return fmt.Errorf("allreduce: nats send to rank %d of %d", to, len(t.subjects))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	size := totalLen(parts)
	if size > t.maxFrame {
		return fmt.Errorf("allreduce: frame of %d bytes exceeds the NATS max_payload %d", size, t.maxFrame)
	}
	var err error
	if len(parts) == 1 {
		err = t.nc.Publish(t.subjects[to], parts[0])
	} else {
		t.mu.Lock()
		b := t.buf[:0]
		for _, p := range parts {
			b = append(b, p...)
		}
		t.buf = b
		err = t.nc.Publish(t.subjects[to], b)
		t.mu.Unlock()
	}
	if errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("%w: nats connection", ErrClosed)
	}
	return err
}

// Recv returns the next frame on this rank's subject.
func (t *NATSTransport) Recv(ctx context.Context) (Frame, error) {
	m, err := t.sub.NextMsgWithContext(ctx)
	switch {
	case err == nil:
		return Frame{Data: m.Data}, nil
	case ctx.Err() != nil:
		return Frame{}, ctx.Err()
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrBadSubscription):
		return Frame{}, fmt.Errorf("%w: nats subscription: %v", ErrClosed, err)
	case errors.Is(err, nats.ErrSlowConsumer):
		return Frame{}, fmt.Errorf("allreduce: nats dropped frames for this rank (slow consumer): %w", err)
	}
	return Frame{}, err
}

// MaxFrame is the connection's max_payload.
func (t *NATSTransport) MaxFrame() int { return t.maxFrame }

// Close unsubscribes and flushes what was published (a bye, say).
func (t *NATSTransport) Close() error {
	err := t.sub.Unsubscribe()
	if !t.nc.IsClosed() {
		t.nc.FlushTimeout(time.Second)
	}
	if errors.Is(err, nats.ErrConnectionClosed) || errors.Is(err, nats.ErrBadSubscription) {
		return nil
	}
	return err
}
