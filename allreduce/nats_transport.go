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
// generation g of job j receives data frames on vlp.<j>.ring.<g>.<r> and
// control frames (acknowledgements, heartbeats, aborts) on
// vlp.<j>.ring.<g>.<r>.ctl, or under its Member.Subject instead of
// vlp.<j>.ring when it has one. Every frame crosses a server (client → server →
// client), which caps a NATS ring's bandwidth at the server's relay rate;
// see docs/allreduce.md. Frames are never larger than the connection's
// MaxPayload. The connections stay the caller's: Close unsubscribes only.
type NATSTransport struct {
	nc, ctl  *nats.Conn
	data     []string // data subject by rank
	control  []string // control subject by rank
	subs     []*nats.Subscription
	inbox    *queue[recvItem]
	maxFrame int

	mu  sync.Mutex // guards buf
	buf []byte     // assembles multi-part frames; nats copies it on Publish
}

var _ Transport = (*NATSTransport)(nil)

// NATSOption configures a NATSTransport.
type NATSOption func(*NATSTransport)

// WithControlConn puts the control frames on a second connection. On the
// data connection they queue, in the server's outbound buffer, behind up to
// a window of data, and a late acknowledgement stalls the sender it would
// have let go on. Default: the data connection.
func WithControlConn(ctl *nats.Conn) NATSOption {
	return func(t *NATSTransport) {
		if ctl != nil {
			t.ctl = ctl
		}
	}
}

// natsPendingBytes bounds what nats.go queues for a subscription. The Ring's
// window keeps a well-behaved sender far below it; past it nats.go drops
// frames and the generation fails by deadline rather than sum garbage.
const natsPendingBytes = 256 << 20

// NewNATSTransport subscribes rank's subjects of gen and waits until the
// server has the subscriptions, so that frames sent to them from then on
// arrive.
func NewNATSTransport(nc *nats.Conn, gen Generation, rank int, opts ...NATSOption) (*NATSTransport, error) {
	if err := gen.Validate(rank); err != nil {
		return nil, err
	}
	t := &NATSTransport{nc: nc, ctl: nc, maxFrame: int(nc.MaxPayload()), inbox: newQueue(releaseItem)}
	for _, o := range opts {
		o(t)
	}
	if t.maxFrame < headerSize+8 {
		return nil, configErr("NATS max_payload %d is too small for a frame", t.maxFrame)
	}
	for r := range gen.Size() {
		t.data = append(t.data, gen.subject(r))
		t.control = append(t.control, gen.subject(r)+".ctl")
	}
	deliver := func(m *nats.Msg) { t.inbox.push(recvItem{f: Frame{Data: m.Data}}) }
	for _, s := range []struct {
		nc   *nats.Conn
		subj string
	}{{nc, t.data[rank]}, {t.ctl, t.control[rank]}} {
		sub, err := s.nc.Subscribe(s.subj, deliver)
		if err == nil {
			t.subs = append(t.subs, sub)
			err = sub.SetPendingLimits(-1, natsPendingBytes)
		}
		if err == nil {
			err = s.nc.FlushTimeout(10 * time.Second)
		}
		if err != nil {
			t.Close()
			return nil, fmt.Errorf("allreduce: subscribe %s: %w", s.subj, err)
		}
	}
	return t, nil
}

// Send publishes the frame on the receiver's data or control subject (by
// the frame's kind). Publishing is buffered by nats.go; a frame sent to a
// rank that is gone is silently lost (the Ring's heartbeats find the loss).
func (t *NATSTransport) Send(ctx context.Context, to int, parts ...[]byte) error {
	if to < 0 || to >= len(t.data) {
		return fmt.Errorf("allreduce: nats send to rank %d of %d", to, len(t.data))
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	size := totalLen(parts)
	if size > t.maxFrame {
		return fmt.Errorf("allreduce: frame of %d bytes exceeds the NATS max_payload %d", size, t.maxFrame)
	}
	nc, subj := t.nc, t.data[to]
	if len(parts) > 0 && len(parts[0]) > 5 && !kind(parts[0][5]).isData() {
		nc, subj = t.ctl, t.control[to]
	}
	var err error
	if len(parts) == 1 {
		err = nc.Publish(subj, parts[0])
	} else {
		t.mu.Lock()
		b := t.buf[:0]
		for _, p := range parts {
			b = append(b, p...)
		}
		t.buf = b
		err = nc.Publish(subj, b)
		t.mu.Unlock()
	}
	if errors.Is(err, nats.ErrConnectionClosed) {
		return fmt.Errorf("%w: nats connection", ErrClosed)
	}
	return err
}

// Recv returns the next frame from either subject.
func (t *NATSTransport) Recv(ctx context.Context) (Frame, error) {
	it, err := t.inbox.pop(ctx)
	if err != nil {
		return Frame{}, err
	}
	return it.f, it.err
}

// MaxFrame is the data connection's max_payload.
func (t *NATSTransport) MaxFrame() int { return t.maxFrame }

// Close unsubscribes and flushes what was published (a bye, say).
func (t *NATSTransport) Close() error {
	var errs []error
	for _, s := range t.subs {
		if err := s.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, err)
		}
	}
	for _, nc := range []*nats.Conn{t.nc, t.ctl} {
		if !nc.IsClosed() {
			nc.FlushTimeout(time.Second)
		}
	}
	t.inbox.close(ErrClosed)
	return errors.Join(errs...)
}

// relayedTo: every NATS frame crosses a server.
func (t *NATSTransport) relayedTo(int) bool { return true }
