package coordinator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// Client calls a job's coordinator over NATS. It needs no coordinator address: whichever replica
// leads answers on vlp.<job>.coord.*, so a failover changes nothing for the client. A request
// that finds no leader (no responders, a timeout, a "not leader" reply) is retried with backoff
// until the context's deadline; every other error reply is returned at once. So is a NATS
// permission violation of the request's subject or of the reply inbox (ErrPermissionDenied): no
// reply can come, waiting would only end in a misleading "no leader". A Client is safe for
// concurrent use.
type Client struct {
	nc       *nats.Conn
	own      bool
	subjects Subjects
	token    string
	timeout  time.Duration
	deadline time.Duration
	poll     time.Duration

	inbox          string // the connection's reply-inbox prefix, without the trailing dot
	mu             sync.Mutex
	identity       string           // the worker nkey the worker operations' subjects carry ("": shared)
	deniedSubjects map[string]error // request subject → the server's permission violation
	deniedInbox    error            // the reply inbox's subscription was refused
	deniedSignal   chan struct{}    // closed (and replaced) when a violation is recorded
}

// ErrPermissionDenied: for this connection's credentials, the NATS server refused the request
// subject or the reply inbox of an operation, e.g. a worker's credentials used for an operator
// command. The server's violation (nats.ErrPermissionViolation) is wrapped too.
var ErrPermissionDenied = errors.New("coordinator: NATS permission denied")

// WorkerInboxPrefix is the reply-inbox prefix of the workers of job: the embedded server lets the
// worker credentials subscribe to replies under it only, never to other clients' _INBOX.>.
// A worker's connection needs nats.CustomInboxPrefix(WorkerInboxPrefix(job)).
func WorkerInboxPrefix(job string) string { return "_INBOX_W." + job }

// WorkerInbox is the reply-inbox prefix of the worker that authenticated with the public nkey
// identity, "_INBOX_W.<job>.<identity>": its own credential may subscribe to replies under it
// only (WorkerNkeyPermissions), and the shared worker credential's "_INBOX_W.<job>.>" covers it.
// With no identity it is WorkerInboxPrefix(job).
func WorkerInbox(job, identity string) string {
	if identity == "" {
		return WorkerInboxPrefix(job)
	}
	return WorkerInboxPrefix(job) + "." + identity
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithRequestTimeout bounds one attempt of a request (default 2s).
func WithRequestTimeout(d time.Duration) ClientOption { return func(c *Client) { c.timeout = d } }

// WithDefaultDeadline bounds a whole call, retries included, when its context has no deadline of
// its own (default 30s): no call waits forever.
func WithDefaultDeadline(d time.Duration) ClientOption { return func(c *Client) { c.deadline = d } }

// WithWatchPoll sets how often Watch also polls the status, in case an announcement was missed
// during a failover (default 2s).
func WithWatchPoll(d time.Duration) ClientOption { return func(c *Client) { c.poll = d } }

// WithIdentity makes the worker operations go to the subjects of the worker that authenticated
// with the public nkey identity (Subjects.WorkerOp), as WorkerNkeyPermissions require; the
// connection should use WorkerInbox(job, identity) as its inbox prefix. If the server refuses
// those subjects (an external NATS server set up with the shared worker permissions only), the
// Client falls back to the shared subjects for good. Default: the shared subjects.
func WithIdentity(identity string) ClientOption { return func(c *Client) { c.identity = identity } }

// NewClient wraps an existing connection; Close leaves it open. It installs an error handler on
// the connection that records the permission violations of its requests (returned from the
// calls as ErrPermissionDenied) and passes every other asynchronous error to the handler that was
// there before.
func NewClient(nc *nats.Conn, job, token string, opts ...ClientOption) *Client {
	c := &Client{nc: nc, subjects: Subjects{Job: job}, token: token, timeout: 2 * time.Second, deadline: 30 * time.Second, poll: 2 * time.Second,
		inbox: strings.TrimSuffix(nats.InboxPrefix, "."), deniedSubjects: map[string]error{}, deniedSignal: make(chan struct{})}
	if p := nc.Opts.InboxPrefix; p != "" {
		c.inbox = p
	}
	for _, o := range opts {
		o(c)
	}
	prev := nc.ErrorHandler()
	nc.SetErrorHandler(func(nc *nats.Conn, sub *nats.Subscription, err error) {
		if c.recordDenial(err) || prev == nil {
			return
		}
		prev(nc, sub, err)
	})
	return c
}

// violationSubject finds the subject in the server's permission violation message, e.g.
// `Permissions Violation for Publish to "vlp.j.coord.stop"`.
var violationSubject = regexp.MustCompile(`(?i)(?:publish|subscription) to "([^"]+)"`)

// recordDenial records a permission violation of one of the client's request subjects or of its
// reply inbox, and reports whether it did.
func (c *Client) recordDenial(err error) bool {
	if !errors.Is(err, nats.ErrPermissionViolation) {
		return false
	}
	m := violationSubject.FindStringSubmatch(err.Error())
	if m == nil {
		return false
	}
	subject := m[1]
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case strings.HasPrefix(subject, c.inbox+"."):
		c.deniedInbox = err
	case strings.HasPrefix(subject, c.subjects.Prefix()+".coord."):
		c.deniedSubjects[subject] = err
	default:
		return false
	}
	close(c.deniedSignal)
	c.deniedSignal = make(chan struct{})
	return true
}

// denied returns a channel closed at the next violation recorded, and an ErrPermissionDenied
// error if a recorded violation keeps a request to subject from being answered.
func (c *Client) denied(subject string) (<-chan struct{}, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	violation := c.deniedSubjects[subject]
	if violation == nil {
		violation = c.deniedInbox
	}
	if violation == nil {
		return c.deniedSignal, nil
	}
	return c.deniedSignal, fmt.Errorf("%w: request to %s: %w", ErrPermissionDenied, subject, violation)
}

// Dial connects to NATS at url (comma-separated URLs of a cluster work) and returns a Client that
// owns the connection.
func Dial(url, job, token string, natsOpts []nats.Option, opts ...ClientOption) (*Client, error) {
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("coordinator: connect %s: %w", url, err)
	}
	c := NewClient(nc, job, token, opts...)
	c.own = true
	return c, nil
}

// Close closes the connection if the Client owns it.
func (c *Client) Close() {
	if c.own {
		c.nc.Close()
	}
}

// Conn is the underlying NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Subjects are the job's subjects.
func (c *Client) Subjects() Subjects { return c.subjects }

// Join makes the caller a member; see JoinRequest. A retry with the same Instance is idempotent.
func (c *Client) Join(ctx context.Context, req JoinRequest) (*JoinReply, error) {
	var rep JoinReply
	return &rep, c.call(ctx, OpJoin, req, &rep)
}

// Heartbeat keeps the worker's lease. ErrUnknownWorker means it was declared dead: rejoin.
func (c *Client) Heartbeat(ctx context.Context, workerID, generation uint64) (*HeartbeatReply, error) {
	var rep HeartbeatReply
	return &rep, c.call(ctx, OpHeartbeat, HeartbeatRequest{WorkerID: workerID, Generation: generation}, &rep)
}

// Leave ends the membership.
func (c *Client) Leave(ctx context.Context, workerID uint64) (*LeaveReply, error) {
	var rep LeaveReply
	err := c.call(ctx, OpLeave, LeaveRequest{WorkerID: workerID}, &rep)
	return &rep, err
}

// LeaseUnits leases work units; give the request a RequestID so that a retry is idempotent.
func (c *Client) LeaseUnits(ctx context.Context, req LeaseRequest) (*LeaseReply, error) {
	var rep LeaseReply
	return &rep, c.call(ctx, OpLease, req, &rep)
}

// ReportProgress reports committed steps (or, with Handover, the last step of a departed ring).
func (c *Client) ReportProgress(ctx context.Context, req ProgressRequest) (*ProgressReply, error) {
	var rep ProgressReply
	return &rep, c.call(ctx, OpProgress, req, &rep)
}

// RecordCheckpoint records a durable checkpoint, or a verification result.
func (c *Client) RecordCheckpoint(ctx context.Context, req CheckpointRequest) (*CheckpointReply, error) {
	var rep CheckpointReply
	return &rep, c.call(ctx, OpCheckpoint, req, &rep)
}

// LostState tells the coordinator that no member of generation holds the job's state.
func (c *Client) LostState(ctx context.Context, generation uint64) (*LostStateReply, error) {
	var rep LostStateReply
	return &rep, c.call(ctx, OpLostState, LostStateRequest{Generation: generation}, &rep)
}

// Status returns the job's status as the leader has it.
func (c *Client) Status(ctx context.Context) (*JobStatus, error) {
	var rep JobStatus
	return &rep, c.call(ctx, OpStatus, StatusRequest{}, &rep)
}

// Submit submits the job spec (operator).
func (c *Client) Submit(ctx context.Context, spec JobSpec) (*JobStatus, error) {
	var rep JobStatus
	return &rep, c.call(ctx, OpSubmit, SubmitRequest{Spec: spec}, &rep)
}

// Stop stops the job (operator).
func (c *Client) Stop(ctx context.Context, reason string) (*JobStatus, error) {
	var rep JobStatus
	return &rep, c.call(ctx, OpStop, StopRequest{Reason: reason}, &rep)
}

// Rollback restarts the job from the checkpoint at step (operator; 0: from scratch).
func (c *Client) Rollback(ctx context.Context, step uint64) (*RollbackReply, error) {
	var rep RollbackReply
	return &rep, c.call(ctx, OpRollback, RollbackRequest{ToStep: step}, &rep)
}

// Members lists the coordinator replicas (operator).
func (c *Client) Members(ctx context.Context) (*MembersReply, error) {
	var rep MembersReply
	return &rep, c.call(ctx, OpMembers, MembersRequest{}, &rep)
}

// AddPeer adds a coordinator replica as a voter (operator).
func (c *Client) AddPeer(ctx context.Context, req AddPeerRequest) error {
	return c.call(ctx, OpAddPeer, req, nil)
}

// RemovePeer removes a coordinator replica (operator).
func (c *Client) RemovePeer(ctx context.Context, id string) error {
	return c.call(ctx, OpRemovePeer, RemovePeerRequest{ID: id}, nil)
}

// Watch delivers the job's ring generation whenever it changes, from the leader's announcements
// and, as a fallback, from polling the status. The channel holds only the newest generation (a
// slow reader skips intermediate ones, never sees one go backwards) and closes when ctx ends.
func (c *Client) Watch(ctx context.Context) (<-chan GenerationInfo, error) {
	msgs := make(chan *nats.Msg, 64)
	sub, err := c.nc.ChanSubscribe(c.subjects.Generation(), msgs)
	if err != nil {
		return nil, fmt.Errorf("coordinator: watch: %w", err)
	}
	out := make(chan GenerationInfo, 1)
	go func() {
		defer close(out)
		defer sub.Unsubscribe()
		var last uint64
		deliver := func(g GenerationInfo) {
			if g.Number <= last {
				return
			}
			last = g.Number
			select { // keep only the newest
			case <-out:
			default:
			}
			out <- g
		}
		tick := time.NewTicker(c.poll)
		defer tick.Stop()
		poll := func() {
			pctx, cancel := context.WithTimeout(ctx, c.timeout)
			defer cancel()
			var st JobStatus
			if err := c.callOnce(pctx, OpStatus, StatusRequest{}, &st); err == nil {
				deliver(st.Generation)
			}
		}
		poll()
		for {
			select {
			case <-ctx.Done():
				return
			case m := <-msgs:
				var rep Reply
				var g GenerationInfo
				if json.Unmarshal(m.Data, &rep) == nil && rep.V == APIVersion && rep.Error == nil && json.Unmarshal(rep.Body, &g) == nil {
					deliver(g)
				}
			case <-tick.C:
				poll()
			}
		}
	}()
	return out, nil
}

// retryable errors mean "no leader answered": try again.
func retryable(err error) bool {
	return errors.Is(err, ErrNotLeader) || errors.Is(err, ErrUnavailable) ||
		errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) ||
		errors.Is(err, context.DeadlineExceeded)
}

// call sends a request, retrying while no leader answers, until ctx (or the default deadline)
// ends.
func (c *Client) call(ctx context.Context, op string, req, rep any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.deadline)
		defer cancel()
	}
	backoff := 25 * time.Millisecond
	for {
		actx, cancel := context.WithTimeout(ctx, c.timeout)
		err := c.callOnce(actx, op, req, rep)
		cancel()
		if err == nil || !retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %s: no leader answered before the deadline (last: %v)", ErrUnavailable, op, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %s: no leader answered before the deadline (last: %v)", ErrUnavailable, op, err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 500*time.Millisecond)
	}
}

// callOnce sends one request and decodes the reply.
func (c *Client) callOnce(ctx context.Context, op string, req, rep any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("coordinator: encode %s: %w", op, err)
	}
	data, err := json.Marshal(Request{V: APIVersion, Token: c.token, Body: body})
	if err != nil {
		return fmt.Errorf("coordinator: encode %s: %w", op, err)
	}
	subject, identity := c.subject(op)
	msg, err := c.request(ctx, subject, data)
	if identity != "" && errors.Is(err, ErrPermissionDenied) && !c.inboxDenied() {
		// This credential may not use its identity's subjects: use the shared ones.
		c.mu.Lock()
		c.identity = ""
		c.mu.Unlock()
		msg, err = c.request(ctx, c.subjects.Op(op), data)
	}
	if err != nil {
		return err
	}
	return decodeReply(msg.Data, rep)
}

// subject is the request subject of op, and the identity it carries.
func (c *Client) subject(op string) (string, string) {
	c.mu.Lock()
	identity := c.identity
	c.mu.Unlock()
	if identity == "" || !slices.Contains(WorkerOps, op) {
		return c.subjects.Op(op), ""
	}
	return c.subjects.WorkerOp(identity, op), identity
}

// Identity is the worker nkey the worker operations' subjects carry: WithIdentity's, or "" when
// none was given or the server refused its subjects.
func (c *Client) Identity() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.identity
}

// inboxDenied reports whether the server refused the reply inbox's subscription.
func (c *Client) inboxDenied() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deniedInbox != nil
}

// request is nc.RequestWithContext that gives up as soon as the server refuses the request's
// subject or the reply inbox.
func (c *Client) request(ctx context.Context, subject string, data []byte) (*nats.Msg, error) {
	if _, err := c.denied(subject); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		msg *nats.Msg
		err error
	}
	done := make(chan result, 1)
	go func() {
		msg, err := c.nc.RequestWithContext(ctx, subject, data)
		done <- result{msg, err}
	}()
	for {
		next, err := c.denied(subject)
		if err != nil {
			return nil, err
		}
		select {
		case r := <-done:
			return r.msg, r.err
		case <-next:
		}
	}
}

// decodeReply unpacks a reply envelope into rep (which may be nil).
func decodeReply(data []byte, rep any) error {
	var r Reply
	if err := json.Unmarshal(data, &r); err != nil {
		return fmt.Errorf("%w: reply is not an envelope: %v", ErrBadRequest, err)
	}
	if r.V != APIVersion {
		return fmt.Errorf("%w: reply version %d, this client speaks %d", ErrUnsupportedVersion, r.V, APIVersion)
	}
	if r.Error != nil {
		return r.Error
	}
	if rep == nil || len(r.Body) == 0 {
		return nil
	}
	if err := json.Unmarshal(r.Body, rep); err != nil {
		return fmt.Errorf("%w: reply body: %v", ErrBadRequest, err)
	}
	return nil
}
