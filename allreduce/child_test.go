package allreduce

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// A rank in a child process: the test binary itself, started with childEnv
// set, runs runChild instead of the tests. It joins the generation the parent
// writes to its stdin, starts an all-reduce, prints "mid" after its first
// data frame and then hangs inside the collective until the parent kills it.

const childEnv = "VLP_ALLREDUCE_CHILD"

type childSpec struct {
	Kind    string // nats, tcp, shm, or shm-links (shared memory without the arena: the ring over its links)
	NATSURL string
	ShmDir  string
	Rank    int
	Length  int
	Token   string
	Job     string
	Listen  string // hier kinds: the TCP address to listen on (its host part is the rank's host)
}

func runChild() int {
	var spec childSpec
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &spec); err != nil {
		fmt.Fprintln(os.Stderr, "child spec:", err)
		return 2
	}
	if strings.HasPrefix(spec.Kind, "hier") {
		return runHierChild(spec)
	}
	var node *TCPNode
	addr := "-"
	if spec.Kind == KindTCP {
		var err error
		node, err = ListenTCP("127.0.0.1:0", TCPConfig{Job: spec.Job, Token: []byte(spec.Token)})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		addr = node.Addr()
	}
	fmt.Println("addr", addr)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil {
		fmt.Fprintln(os.Stderr, "child: read generation:", err)
		return 2
	}
	var gen Generation
	if err := json.Unmarshal([]byte(line), &gen); err != nil {
		fmt.Fprintln(os.Stderr, "child: generation:", err)
		return 2
	}
	ep := Endpoints{TCP: node}
	if spec.Kind == KindNATS {
		if ep.NATS, err = nats.Connect(spec.NATSURL); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
	}
	var tr Transport
	if spec.Kind == "shm-links" {
		tr, err = newShmTransport(gen, spec.Rank, ShmConfig{Dir: spec.ShmDir}, false)
	} else {
		ep.Shm.Dir = spec.ShmDir
		tr, err = NewTransport(context.Background(), spec.Kind, gen, spec.Rank, ep)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	cfg := Config{ChunkBytes: 256, WindowBytes: 4096, HeartbeatInterval: 50 * time.Millisecond, PeerTimeout: 1500 * time.Millisecond, MaxMeta: 256}
	ring, err := NewRing(gen, spec.Rank, tr, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	hang := func() {
		fmt.Println("mid")
		select {} // hang inside the collective; the parent kills us
	}
	ring.hook = func(kind, uint32) { hang() }
	if st, ok := tr.(*ShmTransport); ok {
		st.hook = hang // the arena passes no data frames
	}
	buf := make([]float32, spec.Length)
	_, err = ring.AllReduce(context.Background(), buf, nil)
	fmt.Fprintln(os.Stderr, "child: all-reduce returned:", err)
	return 1
}

// child is a running child rank.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	Addr  string
}

func startChild(t *testing.T, spec childSpec) *child {
	t.Helper()
	js, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(js))
	cmd.Stderr = tWriter{t}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	c := &child{cmd: cmd, stdin: stdin, out: bufio.NewReader(stdout)}
	c.Addr = strings.TrimPrefix(c.expect(t, "addr "), "addr ")
	return c
}

// expect reads the child's next line, which must start with prefix.
func (c *child) expect(t *testing.T, prefix string) string {
	t.Helper()
	type res struct {
		s   string
		err error
	}
	ch := make(chan res, 1)
	go func() {
		s, err := c.out.ReadString('\n')
		ch <- res{strings.TrimSpace(s), err}
	}()
	select {
	case r := <-ch:
		if r.err != nil || !strings.HasPrefix(r.s, prefix) {
			t.Fatalf("child said %q (%v), want %q…", r.s, r.err, prefix)
		}
		return r.s
	case <-time.After(60 * time.Second):
		t.Fatalf("child silent, want %q…", prefix)
	}
	return ""
}

func (c *child) sendGeneration(t *testing.T, gen Generation) {
	t.Helper()
	js, _ := json.Marshal(gen)
	if _, err := c.stdin.Write(append(js, '\n')); err != nil {
		t.Fatal(err)
	}
}
