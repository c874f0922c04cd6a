package coordinator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

// TestScaleSimulation is opt-in (VLP_SCALE=1): three coordinator processes (the real binary,
// default timeouts, embedded NATS cluster), 1,000 simulated workers — goroutines, each with its own
// NATS connection — heartbeating every second and leasing from 6,000 units. It reports Raft apply
// latency, request round trips, the leader's CPU and the time to detect a dead worker; the numbers
// go in docs/BENCHMARKS.md (Coordinator).
//
//	VLP_SCALE=1 go test -run TestScaleSimulation -v -timeout 20m ./coordinator
func TestScaleSimulation(t *testing.T) {
	if os.Getenv("VLP_SCALE") == "" {
		t.Skip("scale simulation: set VLP_SCALE=1 (takes about two minutes)")
	}
	workers := envInt("VLP_SCALE_WORKERS", 1000)
	units := envInt("VLP_SCALE_UNITS", 6000)
	steady := time.Duration(envInt("VLP_SCALE_SECONDS", 40)) * time.Second
	bin := scaleBinary(t)

	// Three coordinators with a NATS cluster.
	dir := t.TempDir()
	var raftPorts, natsPorts, routePorts, httpPorts [3]int
	var peers, routes, urls []string
	for i := 0; i < 3; i++ {
		raftPorts[i], natsPorts[i], routePorts[i], httpPorts[i] = freePort(t), freePort(t), freePort(t), freePort(t)
		peers = append(peers, fmt.Sprintf("c%d=127.0.0.1:%d", i, raftPorts[i]))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", routePorts[i]))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", natsPorts[i]))
	}
	procs := make([]*exec.Cmd, 3)
	for i := range procs {
		cmd := exec.Command(bin, "coordinator", "start", "--data-dir", filepath.Join(dir, fmt.Sprint(i)), "--node-id", fmt.Sprintf("c%d", i),
			"--raft-addr", fmt.Sprintf("127.0.0.1:%d", raftPorts[i]), "--peers", strings.Join(peers, ","),
			"--nats-listen", fmt.Sprintf("127.0.0.1:%d", natsPorts[i]), "--nats-cluster-listen", fmt.Sprintf("127.0.0.1:%d", routePorts[i]),
			"--nats-routes", strings.Join(routes, ","), "--http-addr", fmt.Sprintf("127.0.0.1:%d", httpPorts[i]),
			"--job", "scale", "--token", "tok")
		cmd.Env = append(os.Environ(), "VLP_LOG_LEVEL=warn")
		logf, _ := os.Create(filepath.Join(dir, fmt.Sprintf("c%d.log", i)))
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs[i] = cmd
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
	admin, err := Dial(strings.Join(urls, ","), "scale", "tok", []nats.Option{nats.RetryOnFailedConnect(true), nats.MaxReconnects(-1), nats.ReconnectWait(100 * time.Millisecond)}, WithDefaultDeadline(60*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	spec := JobSpec{Name: "scale", GlobalBatch: 4096, MaxWorkers: workers + 100, Units: UnitsSpec{Pairs: int64(units) * 64, PerUnit: 64}}.WithDefaults()
	if _, err := admin.Submit(ctx, spec); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // epoch 0 opens
	st, _ := admin.Status(ctx)
	leaderIdx := -1
	for i := range procs {
		if st.Leader == fmt.Sprintf("c%d", i) {
			leaderIdx = i
		}
	}
	t.Logf("leader c%d; %d units pending", leaderIdx, st.Units.Pending)

	// The simulated workers.
	type simW struct {
		nc   *nats.Conn
		cl   *Client
		id   uint64
		gen  atomic.Uint64
		stop atomic.Bool
		last atomic.Int64 // unix ns of the last heartbeat answered
	}
	ws := make([]*simW, workers)
	joinStart := time.Now()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range ws {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			nc, err := nats.Connect(urls[i%3], nats.MaxReconnects(-1))
			if err != nil {
				t.Errorf("worker %d connect: %v", i, err)
				return
			}
			w := &simW{nc: nc, cl: NewClient(nc, "scale", "tok", WithDefaultDeadline(60*time.Second))}
			rep, err := w.cl.Join(ctx, JoinRequest{Name: fmt.Sprintf("sim-%d", i), Instance: fmt.Sprintf("sim-%d", i)})
			if err != nil {
				t.Errorf("worker %d join: %v", i, err)
				return
			}
			w.id = rep.WorkerID
			w.gen.Store(rep.Generation.Number)
			ws[i] = w
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	joinTook := time.Since(joinStart)
	t.Logf("%d workers joined in %v (%.0f joins/s)", workers, joinTook.Round(time.Millisecond), float64(workers)/joinTook.Seconds())

	var mu sync.Mutex
	var hbRTT, leaseRTT []time.Duration
	var leased, stale, hbErrs atomic.Int64
	runCtx, stopRun := context.WithCancel(ctx)
	for _, w := range ws {
		wg.Add(2)
		go func(w *simW) { // heartbeat every second
			defer wg.Done()
			time.Sleep(time.Duration(rand.Int63n(int64(time.Second))))
			for runCtx.Err() == nil && !w.stop.Load() {
				t0 := time.Now()
				rep, err := w.cl.Heartbeat(runCtx, w.id, w.gen.Load())
				if err != nil {
					if runCtx.Err() == nil {
						hbErrs.Add(1)
					}
				} else {
					w.gen.Store(rep.Generation)
					w.last.Store(time.Now().UnixNano())
					mu.Lock()
					hbRTT = append(hbRTT, time.Since(t0))
					mu.Unlock()
				}
				time.Sleep(time.Second - time.Since(t0)%time.Second)
			}
		}(w)
		go func(w *simW) { // lease one unit every ~6s until none is left (~36s for 6 units each)
			defer wg.Done()
			time.Sleep(time.Duration(rand.Int63n(int64(6 * time.Second))))
			for runCtx.Err() == nil && !w.stop.Load() {
				t0 := time.Now()
				rep, err := w.cl.LeaseUnits(runCtx, LeaseRequest{Generation: w.gen.Load(), Asks: []LeaseAsk{{WorkerID: w.id, Count: 1}}})
				switch {
				case errors.Is(err, ErrStaleGeneration):
					stale.Add(1)
				case err == nil:
					mu.Lock()
					leaseRTT = append(leaseRTT, time.Since(t0))
					mu.Unlock()
					leased.Add(int64(len(rep.Grants[0].Units)))
					if rep.Exhausted && len(rep.Grants[0].Units) == 0 {
						return
					}
				}
				time.Sleep(time.Duration(5000+rand.Intn(2000)) * time.Millisecond)
			}
		}(w)
	}

	// Steady state: measure the leader's CPU over the window.
	time.Sleep(3 * time.Second)
	cpu0, wall0 := procCPU(t, procs[leaderIdx].Process.Pid), time.Now()
	time.Sleep(steady)
	cpu1, wall1 := procCPU(t, procs[leaderIdx].Process.Pid), time.Now()
	leaderCores := (cpu1 - cpu0).Seconds() / wall1.Sub(wall0).Seconds()

	// Dead-worker detection: one worker goes silent; time until the generation without it.
	victim := ws[len(ws)/2]
	watch, err := admin.Watch(ctx)
	if err != nil {
		t.Fatal(err)
	}
	victim.stop.Store(true)
	var detected time.Duration
	for g := range watch {
		found := false
		for _, m := range g.Members {
			if m.WorkerID == victim.id {
				found = true
			}
		}
		if !found {
			detected = time.Since(time.Unix(0, victim.last.Load()))
			break
		}
	}
	apply := scrapeHistogram(t, httpPorts[leaderIdx], "vlp_coordinator_raft_apply_seconds")
	final, _ := admin.Status(ctx)
	stopRun()
	wg.Wait()
	for _, w := range ws {
		w.nc.Close()
	}

	t.Logf("steady state %v: %d heartbeats (%d errors), %d lease calls granting %d units (%d stale-generation refusals)", steady, len(hbRTT), hbErrs.Load(), len(leaseRTT), leased.Load(), stale.Load())
	t.Logf("heartbeat round trip p50 %v p99 %v", pct(hbRTT, 0.5), pct(hbRTT, 0.99))
	t.Logf("lease round trip (one Raft apply) p50 %v p99 %v", pct(leaseRTT, 0.5), pct(leaseRTT, 0.99))
	t.Logf("leader Raft apply latency (histogram, %d applies) p50 %.2fms p99 %.2fms", int(apply.count), 1000*apply.quantile(0.5), 1000*apply.quantile(0.99))
	t.Logf("leader CPU %.2f cores over the steady window", leaderCores)
	t.Logf("dead worker: generation without it %v after its last heartbeat (LeaseTTL 3s, checked every 250ms)", detected.Round(time.Millisecond))
	t.Logf("final: generation %d, %d workers, units %+v", final.Generation.Number, len(final.Generation.Members), final.Units)
	if hbErrs.Load() > 0 {
		t.Errorf("%d heartbeats failed", hbErrs.Load())
	}
	if final.Units.Leased+final.Units.Orphaned+final.Units.Pending != units {
		t.Errorf("units do not add up: %+v", final.Units)
	}
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func scaleBinary(t *testing.T) string {
	if bin := os.Getenv("VLP_BIN"); bin != "" {
		return bin
	}
	bin := filepath.Join(t.TempDir(), "vlp")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/vlp").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// procCPU is a process's user+system CPU time from /proc.
func procCPU(t *testing.T, pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return time.Duration((ut + st) / 100 * float64(time.Second)) // USER_HZ = 100
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[int(q*float64(len(s)-1))].Round(10 * time.Microsecond)
}

type histogram struct {
	count   float64
	buckets [][2]float64 // upper bound, cumulative count
}

// quantile interpolates linearly inside the bucket that holds q.
func (h histogram) quantile(q float64) float64 {
	want := q * h.count
	prevB, prevC := 0.0, 0.0
	for _, b := range h.buckets {
		if b[1] >= want {
			if b[1] == prevC {
				return b[0]
			}
			return prevB + (b[0]-prevB)*(want-prevC)/(b[1]-prevC)
		}
		prevB, prevC = b[0], b[1]
	}
	return prevB
}

func scrapeHistogram(t *testing.T, port int, name string) histogram {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h histogram
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, name+"_bucket{le=\""):
			rest := strings.TrimPrefix(line, name+"_bucket{le=\"")
			le, _ := strconv.ParseFloat(rest[:strings.IndexByte(rest, '"')], 64)
			c, _ := strconv.ParseFloat(rest[strings.LastIndexByte(rest, ' ')+1:], 64)
			if le > 1e9 || strings.HasPrefix(rest, "+Inf") {
				continue
			}
			h.buckets = append(h.buckets, [2]float64{le, c})
		case strings.HasPrefix(line, name+"_count "):
			h.count, _ = strconv.ParseFloat(strings.TrimPrefix(line, name+"_count "), 64)
		}
	}
	return h
}
