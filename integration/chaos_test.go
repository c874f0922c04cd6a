package integration

import (
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
)

// chaosRecoveryBound is the longest a recovery may take after a fault is undone: the default
// step timeout (30 s), a rejoin, and slack for two loaded cores.
const chaosRecoveryBound = 60 * time.Second

// chaosFault is one kind of fault: inject it, wait, undo it.
type chaosFault struct {
	name string
	do   func(c *Cluster, rng *rand.Rand) (target string, undo func())
}

// recovery is one injected fault and how the cluster came back.
type recovery struct {
	fault, target string
	held          time.Duration // how long the fault was in place
	took          time.Duration // from the undo to all workers training again
	ok            bool
}

func chaosFaults(workers int) []chaosFault {
	worker := func(rng *rand.Rand) string { return fmt.Sprintf("w%d", 1+rng.IntN(workers)) }
	hold := func(rng *rand.Rand, lo, hi time.Duration) { time.Sleep(lo + time.Duration(rng.Int64N(int64(hi-lo)))) }
	return []chaosFault{
		{"kill -9 worker", func(c *Cluster, rng *rand.Rand) (string, func()) {
			w := worker(rng)
			c.Workers[w].Kill()
			hold(rng, time.Second, 3*time.Second)
			return w, func() { c.StartWorker(w) }
		}},
		{"SIGSTOP worker", func(c *Cluster, rng *rand.Rand) (string, func()) {
			w := worker(rng)
			_ = c.Workers[w].Pause()
			hold(rng, 300*time.Millisecond, 4*time.Second)
			return w, func() { _ = c.Workers[w].Resume() }
		}},
		{"partition worker", func(c *Cluster, rng *rand.Rand) (string, func()) {
			w := worker(rng)
			_ = c.Net.Host(w).LinkDown()
			hold(rng, time.Second, 6*time.Second)
			return w, func() { _ = c.Net.Host(w).LinkUp() }
		}},
		{"2mbit straggler", func(c *Cluster, rng *rand.Rand) (string, func()) {
			w := worker(rng)
			_ = c.Net.Host(w).Throttle("2mbit")
			hold(rng, 3*time.Second, 8*time.Second)
			return w, func() { _ = c.Net.Host(w).Unthrottle() }
		}},
		{"SIGTERM worker", func(c *Cluster, rng *rand.Rand) (string, func()) {
			w := worker(rng)
			_ = c.Workers[w].Signal(syscall.SIGTERM)
			c.Workers[w].Wait(40 * time.Second)
			return w, func() {
				if !c.Workers[w].Exited() {
					c.Workers[w].Kill()
				}
				c.StartWorker(w)
			}
		}},
		{"kill -9 leader coordinator", func(c *Cluster, rng *rand.Rand) (string, func()) {
			st, err := c.Status()
			i := 0
			if err == nil {
				i, _ = strconv.Atoi(strings.TrimPrefix(st.Leader, "c"))
				i--
			}
			i = max(0, min(i, len(c.Coords)-1))
			c.Coords[i].Kill()
			hold(rng, time.Second, 5*time.Second)
			return c.Coords[i].Name, func() { c.Coords[i].Restart(c.t) }
		}},
		{"restart all coordinators", func(c *Cluster, rng *rand.Rand) (string, func()) {
			for _, p := range c.Coords {
				p.Kill()
			}
			hold(rng, time.Second, 5*time.Second)
			return "all", func() {
				for _, p := range c.Coords {
					p.Restart(c.t)
				}
			}
		}},
		{"partition coordinator", func(c *Cluster, rng *rand.Rand) (string, func()) {
			h := c.Net.Host(c.Coords[rng.IntN(len(c.Coords))].Name)
			_ = h.LinkDown()
			hold(rng, time.Second, 6*time.Second)
			return h.Name, func() { _ = h.LinkUp() }
		}},
	}
}

// TestChaos runs a seeded random sequence of faults for $VLP_CHAOS_TIME against three
// coordinators and four workers training the linear model, one fault at a time; after each it
// requires every worker to train again within chaosRecoveryBound. Then it stops the job and
// counts every pair of the surviving timeline. `make chaos` runs it (SEED, CHAOS_TIME).
func TestChaos(t *testing.T) {
	long(t)
	dur, err := time.ParseDuration(os.Getenv("VLP_CHAOS_TIME"))
	if err != nil || dur <= 0 {
		t.Skip("set VLP_CHAOS_TIME (make chaos sets 10m)")
	}
	seed, _ := strconv.ParseUint(os.Getenv("VLP_CHAOS_SEED"), 10, 64)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	const workers, pairs = 4, 1200
	spec := strings.Replace(LinearSpec(pairs), "epochs: 1\n", "epochs: 100000\n", 1)
	c := NewCluster(t, Binary(t), Options{Coordinators: 3, Workers: workers, Spec: spec})
	var names []string
	for i := 1; i <= workers; i++ {
		names = append(names, fmt.Sprintf("w%d", i))
	}
	training(c, 90*time.Second, 5, names...)
	faults := chaosFaults(workers)
	var recs []recovery
	var exits []string
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		f := faults[rng.IntN(len(faults))]
		t0 := time.Now()
		target, undo := f.do(c, rng)
		held := time.Since(t0)
		undo()
		st, _ := c.Status()
		from := uint64(0)
		if st != nil {
			from = st.Step
		}
		r := recovery{fault: f.name, target: target, held: held}
		t1 := time.Now()
		for time.Since(t1) < chaosRecoveryBound {
			// A worker that exited on its own (not the fault's doing) is restarted and counted.
			for _, n := range names {
				if p := c.Workers[n]; p.Exited() {
					_, err := p.Wait(0)
					exits = append(exits, fmt.Sprintf("%s after %q on %s: %v", n, f.name, target, err))
					c.StartWorker(n)
				}
			}
			if _, _, err := c.PollStatus(time.Second, func(s *coordinator.JobStatus) bool {
				m := Members(s)
				for _, n := range names {
					if !slices.Contains(m, n) {
						return false
					}
				}
				return s.Generation.Ready && s.Step > from
			}); err == nil {
				r.ok = true
				break
			}
		}
		r.took = time.Since(t1)
		recs = append(recs, r)
		t.Logf("%-28s %-4s held %6v, recovered %v in %v", f.name, target, held.Round(time.Millisecond), r.ok, r.took.Round(time.Millisecond))
		if !r.ok {
			t.Errorf("no recovery within %v after %q on %s\n%s", chaosRecoveryBound, f.name, target, c.Logs(3000))
			break
		}
	}
	if out, err := c.CLI("c1", 60*time.Second, "job", "stop"); err != nil {
		t.Errorf("vlp job stop: %v\n%s", err, out)
	}
	leaveBy := time.Now().Add(60 * time.Second)
	for _, n := range names {
		if exited, _ := c.Workers[n].Wait(time.Until(leaveBy)); !exited {
			t.Errorf("%s did not leave after the stop\n%s", n, c.Workers[n].Tail(2000))
		}
	}
	st, _ := c.WaitStatus(30*time.Second, "a status", func(*coordinator.JobStatus) bool { return true })
	tally, err := TallyCommits(c.CommitLogs(), pairs, 12, st.EpochsDone)
	if err != nil {
		t.Fatal(err)
	}
	report := chaosTable(seed, dur, recs, exits, tally, st)
	fmt.Print(report)
	t.Log("\n" + report)
	if tally.Duplicated != 0 || tally.Missing != 0 {
		t.Errorf("exactly once violated: %v", tally)
	}
	if len(exits) > 0 {
		t.Errorf("workers exited on their own: %v", exits)
	}
}

// chaosTable is the run's report: per fault kind, how often it was injected and the recoveries'
// median and longest; then the pairs counted.
func chaosTable(seed uint64, dur time.Duration, recs []recovery, exits []string, tally Tally, st *coordinator.JobStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "chaos: seed %d, %v, %d faults, %d committed steps (status step %d, %d epochs done)\n\n",
		seed, dur, len(recs), tally.Steps, st.Step, st.EpochsDone)
	b.WriteString("| fault | injected | recovered | median recovery | longest recovery |\n|---|---|---|---|---|\n")
	kinds := map[string][]recovery{}
	var order []string
	for _, r := range recs {
		if _, ok := kinds[r.fault]; !ok {
			order = append(order, r.fault)
		}
		kinds[r.fault] = append(kinds[r.fault], r)
	}
	sort.Strings(order)
	for _, k := range order {
		rs := kinds[k]
		var ts []time.Duration
		ok := 0
		for _, r := range rs {
			ts = append(ts, r.took)
			if r.ok {
				ok++
			}
		}
		slices.Sort(ts)
		fmt.Fprintf(&b, "| %s | %d | %d | %v | %v |\n", k, len(rs), ok, ts[len(ts)/2].Round(100*time.Millisecond), ts[len(ts)-1].Round(100*time.Millisecond))
	}
	fmt.Fprintf(&b, "\n| steps committed | pairs once | duplicated | missing | longest stall | workers exited on their own |\n|---|---|---|---|---|---|\n")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %v (after step %d) | %d |\n", tally.Steps, tally.Once, tally.Duplicated, tally.Missing,
		tally.Stall.Round(100*time.Millisecond), tally.StallAfter, len(exits))
	return b.String()
}
