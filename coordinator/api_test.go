package coordinator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestAPIBadInput: malformed, oversized, wrong-version, wrong-token and unknown requests each get
// an error reply with the right code, and none changes the state.
func TestAPIBadInput(t *testing.T) {
	// The worker joined below never heartbeats: a lease that outlives the test keeps the leader
	// from declaring it dead in the middle of a case on a loaded machine.
	c := MakeCluster(t, 1, WithNATS(), WithConfig(func(i int, cfg *Config) { cfg.MaxRequestBytes, cfg.LeaseTTL = 4096, time.Minute }))
	cl := c.Client(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := cl.Submit(ctx, testSpec("test")); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.Join(ctx, JoinRequest{Instance: "w"}); err != nil {
		t.Fatal(err)
	}
	leader := c.Leader(t)
	// The leader opens the job's first epoch on its own after the submit (its lease loop): wait
	// for it, so that each case's before and after see only what the case itself did.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		var need bool
		leader.FSM().Read(func(st *State) { _, need = st.needsEpoch() })
		if !need {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leader did not open the job's first epoch within 10 s")
		}
	}
	nc := cl.Conn()
	sub := Subjects{Job: "test"}
	env := func(v int, token string, body any) []byte {
		b, _ := json.Marshal(body)
		data, _ := json.Marshal(Request{V: v, Token: token, Body: b})
		return data
	}
	cases := []struct {
		name    string
		subject string
		data    []byte
		want    error
	}{
		{"garbage", sub.Op(OpJoin), []byte("\x00\xffnot json"), ErrBadRequest},
		{"empty", sub.Op(OpHeartbeat), nil, ErrBadRequest},
		{"json but not an envelope", sub.Op(OpJoin), []byte(`[1,2,3]`), ErrBadRequest},
		{"body of the wrong type", sub.Op(OpLease), env(APIVersion, "secret", "lease me"), ErrBadRequest},
		{"oversized", sub.Op(OpJoin), env(APIVersion, "secret", JoinRequest{Instance: strings.Repeat("x", 8000)}), ErrTooLarge},
		{"wrong version", sub.Op(OpJoin), env(APIVersion+1, "secret", JoinRequest{Instance: "v2"}), ErrUnsupportedVersion},
		{"wrong token", sub.Op(OpJoin), env(APIVersion, "guess", JoinRequest{Instance: "intruder"}), ErrUnauthorized},
		{"no token", sub.Op(OpSubmit), env(APIVersion, "", SubmitRequest{}), ErrUnauthorized},
		{"unknown op", sub.Op("explode"), env(APIVersion, "secret", Empty{}), ErrBadRequest},
		{"field out of range", sub.Op(OpLease), env(APIVersion, "secret", LeaseRequest{Generation: 1, Asks: []LeaseAsk{{WorkerID: 1, Count: -4}}}), ErrBadRequest},
		{"spec for another job", sub.Op(OpSubmit), env(APIVersion, "secret", SubmitRequest{Spec: testSpec("other")}), ErrBadRequest},
		{"long join name", sub.Op(OpJoin), env(APIVersion, "secret", JoinRequest{Instance: "n", Name: strings.Repeat("n", 1000)}), ErrBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before, _ := leader.FSM().MarshalState()
			msg, err := nc.Request(tc.subject, tc.data, 5*time.Second)
			if err != nil {
				t.Fatalf("no reply: %v", err)
			}
			err = decodeReply(msg.Data, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("reply error %v, want %v", err, tc.want)
			}
			after, _ := leader.FSM().MarshalState()
			if !bytes.Equal(before, after) {
				t.Fatal("a rejected request changed the state")
			}
		})
	}
	// The server is still fine.
	if _, err := cl.Status(ctx); err != nil {
		t.Fatalf("status after the bad requests: %v", err)
	}
	// And the client surfaces codes as sentinels.
	bad := NewClient(nc, "test", "wrong")
	if _, err := bad.Status(ctx); !errors.Is(err, ErrUnauthorized) {
		t.Fatalf("client with a wrong token: %v", err)
	}
}

// TestNATSPermissionsAndLimits: with authentication on, a worker may call the worker operations
// but not the operator ones, nor publish elsewhere; the embedded server carries the data-plane
// limits; an unknown user cannot connect.
func TestNATSPermissionsAndLimits(t *testing.T) {
	c := MakeCluster(t, 1, WithConfig(func(i int, cfg *Config) {
		cfg.NATS.User, cfg.NATS.Password = "operator", "op-pass"
		cfg.NATS.Embedded.WorkerUser, cfg.NATS.Embedded.WorkerPassword = "worker", "wk-pass"
	}))
	s := c.Leader(t)
	url := s.NATSURL()
	if _, err := nats.Connect(url); err == nil {
		t.Fatal("connected without credentials")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	op, err := Dial(url, "test", "secret", []nats.Option{nats.UserInfo("operator", "op-pass")})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	if _, err := op.Submit(ctx, testSpec("test")); err != nil {
		t.Fatalf("operator submit: %v", err)
	}
	errs := make(chan error, 8)
	wnc, err := nats.Connect(url, nats.UserInfo("worker", "wk-pass"), nats.CustomInboxPrefix(WorkerInboxPrefix("test")),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatal(err)
	}
	defer wnc.Close()
	w := NewClient(wnc, "test", "secret", WithRequestTimeout(300*time.Millisecond))
	if _, err := w.Join(ctx, JoinRequest{Instance: "w"}); err != nil {
		t.Fatalf("worker join: %v", err)
	}
	sctx, scancel := context.WithTimeout(ctx, time.Second)
	_, err = w.Stop(sctx, "worker tries to stop the job")
	scancel()
	if !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("a worker's stop: %v, want ErrPermissionDenied", err)
	}
	if err := wnc.Publish("vlp.other.coord.join", []byte("x")); err == nil {
		wnc.Flush()
	}
	select {
	case err := <-errs:
		if !strings.Contains(strings.ToLower(err.Error()), "permissions violation") {
			t.Fatalf("unexpected async error: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("publishing outside the worker subjects raised no permissions violation")
	}
	st, _ := op.Status(ctx)
	if st.State != JobRunning {
		t.Fatalf("job state %s after a worker's stop attempt", st.State)
	}
	vz, err := s.NATSServer().Varz(nil)
	if err != nil {
		t.Fatal(err)
	}
	if vz.MaxPayload != 8<<20 || vz.MaxPending != 256<<20 {
		t.Fatalf("embedded server max_payload %d, max_pending %d; want 8 MiB and 256 MiB", vz.MaxPayload, vz.MaxPending)
	}
}
