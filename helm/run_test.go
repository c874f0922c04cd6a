package helm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/e2evlp/vlp/coordinator"
	"github.com/e2evlp/vlp/integration"
	"github.com/e2evlp/vlp/worker"
	"github.com/nats-io/nats.go"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The run's job: the linear model (pure Go) over runPairs pairs in units of 12, a step of 12
// pairs, a checkpoint every 10 steps; the test stops it once it has seen what it must.
const (
	runPairs   = 24000
	runPerUnit = 12
)

func runSpec() map[string]any {
	return map[string]any{
		"model": "linear", "hyper": map[string]any{"lr": 0.01}, "global_batch": 12,
		"min_workers": 1, "max_workers": 16, "checkpoint_every": 10, "checkpoint_retain": 3,
		"progress_every": 1, "seed": 7, "epochs": 1,
		"units":   map[string]any{"pairs": runPairs, "per_unit": runPerUnit},
		"options": map[string]any{"dim": "64", "compute": "5ms"},
	}
}

// runValues are the values of the run: the chart's defaults (TLS with a client CA, NATS users,
// the TCP ring with authenticated frames) with existing Secrets for the credentials and the
// certificates (cert-manager and lookup need an API server), CPU workers, and short timings.
func runValues(tag string, workers int) map[string]any {
	return values(
		"image.tag", tag, "workerImage.tag", tag,
		"job.name", "itest", "job.spec", runSpec(),
		"auth.existingSecret", "ops-auth",
		"tls.certManager.enabled", false,
		"tls.existingSecrets.server", "coordinator-tls", "tls.existingSecrets.client", "client-tls",
		"coordinators.leaseTTL", "1s", "coordinators.heartbeatInterval", "250ms",
		"coordinators.minReadySeconds", 1, "coordinators.preStopSleepSeconds", 1,
		"coordinators.terminationGracePeriodSeconds", 10,
		"workers.replicas", workers, "workers.gpus", 0, "workers.rejoinAfter", "4s",
		"workers.terminationGracePeriodSeconds", 20,
		"workers.extraArgs", []any{"--commit-log=/data/commits-$(POD_NAME).log"},
	)
}

// TestChartRunsAsRendered installs the rendered chart onto simulated hosts and runs it: the
// group forms and serves, the submit Job submits, the workers join and commit steps; a
// coordinator pod killed and recreated rejoins; an upgrade to a new image tag with a third
// worker rolls every pod while the job trains on; an uninstall and an install on the same
// claims resume the job from its checkpoint. Every pair trained over all of it, once.
func TestChartRunsAsRendered(t *testing.T) {
	integration.RequireNet(t)
	const ns = testNamespace
	coords := []string{"vlp-coordinator-0", "vlp-coordinator-1", "vlp-coordinator-2"}
	workers := []string{"vlp-worker-0", "vlp-worker-1", "vlp-worker-2"}
	k := newKubelet(t, ns, append(append(append([]string{}, coords...), workers...), "submit", "tester"))
	for _, h := range coords {
		k.net.AddNames(h, fmt.Sprintf("%s.vlp-coordinator-headless.%s.svc.%s", h, ns, testDomain), h+".vlp-coordinator-headless")
	}
	for _, h := range workers {
		k.net.AddNames(h, fmt.Sprintf("%s.vlp-worker-headless.%s.svc.%s", h, ns, testDomain))
	}

	// What the operator creates before installing: the credentials and the certificates.
	token, opPassword := "itest-token-"+strings.Repeat("x", 20), "itest-operator-password"
	k.secrets["ops-auth"] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ops-auth"}, Data: map[string][]byte{
		"job-token": []byte(token), "operator-password": []byte(opPassword), "worker-password": []byte("itest-worker-password"),
	}}
	ca := newPKI(t)
	wildcard := fmt.Sprintf("*.vlp-coordinator-headless.%s.svc.%s", ns, testDomain)
	k.secrets["coordinator-tls"] = ca.secret("coordinator-tls", []string{wildcard}, x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth)
	k.secrets["client-tls"] = ca.secret("client-tls", nil, x509.ExtKeyUsageClientAuth)

	// helm install.
	r := render(t, install(), runValues("1", 2))
	k.apply(r)
	coordSet, workerSet := r.statefulSet("vlp-coordinator"), r.statefulSet("vlp-worker")
	tmpl := templates{}
	t0 := time.Now()
	k.rollout(coordSet, tmpl, time.Minute)
	submit := k.runJob(r.jobs()[0], "submit")
	k.rollout(workerSet, tmpl, time.Minute)

	cl := dialOperator(t, k, coords, token, opPassword)
	status := func() *coordinator.JobStatus {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := cl.Status(ctx)
		if err != nil {
			return nil
		}
		return st
	}
	var st *coordinator.JobStatus
	took := k.waitFor(60*time.Second, "every coordinator ready, the spec submitted and two workers training", func() bool {
		st = status()
		return k.allReady(coords...) && submit.succeeded && st != nil && st.Generation.Ready &&
			len(st.Generation.Members) == 2 && st.Step > 5
	})
	t.Logf("install: the group formed, the spec was submitted (%d tries) and two workers train at step %d, %v after the pods started (%v)",
		submit.restarts+1, st.Step, took.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
	if got := integration.Members(st); !slices.Equal(sortedCopy(got), workers[:2]) {
		t.Errorf("members %v, want %v (the pods' names)", got, workers[:2])
	}

	// What the ServiceMonitor scrapes: the ports it names serve the metrics.
	for name, metric := range map[string]string{coords[0]: "vlp_coordinator_leader", workers[0]: "vlp_worker_global_step"} {
		port := "http"
		if strings.HasPrefix(name, "vlp-worker") {
			port = "metrics"
		}
		if body, err := k.get(k.pods[name], port, "/metrics"); err != nil || !strings.Contains(body, metric) {
			t.Errorf("%s: /metrics on port %s: %v; want %s in it", name, port, err, metric)
		}
	}

	// kubectl exec into a coordinator, and helm test.
	if out, err := k.exec(k.pods[coords[1]], 30*time.Second, "job", "status"); err != nil || !strings.Contains(out, "running") {
		t.Errorf("kubectl exec %s -- vlp job status: %v\n%s", coords[1], err, out)
	}
	test := k.start("vlp-test-status", "tester", r.testPods()[0].Spec, nil, 1)
	if exited, err := test.proc.Wait(60 * time.Second); !exited || err != nil {
		t.Errorf("helm test pod: exited %v, err %v\n%s", exited, err, test.proc.Tail(2000))
	}

	// A coordinator pod killed (the leader's, the worst case) and recreated with its claim.
	st = status()
	victim := k.pods[st.Leader]
	if victim == nil {
		t.Fatalf("the leader %q is no pod", st.Leader)
	}
	k.kill(victim)
	from := st.Step
	took = k.waitFor(30*time.Second, "a step committed without the killed leader", func() bool {
		s := status()
		return s != nil && s.Leader != victim.name && s.Step > from+2
	})
	t.Logf("killed the leader %s at step %d; a new leader served and steps committed %v later", victim.name, from, took.Round(time.Millisecond))
	re := k.start(victim.name, victim.name, coordSet.Spec.Template.Spec, claimsOf(coordSet, victim.name), 0)
	k.waitReady(re, 30*time.Second, 0)
	took = k.waitFor(30*time.Second, victim.name+" back in the group: its /readyz (a leader known, routes up)", func() bool {
		return k.probe(re, readyz(re)) == nil
	})
	if out, err := k.exec(re, 30*time.Second, "coordinator", "members"); err != nil || strings.Count(out, "Voter") != 3 {
		t.Errorf("coordinator members after the recreation: %v\n%s", err, out)
	}
	t.Logf("recreated %s on its claim: it rejoined %v after it was ready", victim.name, took.Round(time.Millisecond))

	// helm upgrade: a new image tag (every pod template changes) and a third worker.
	jobBefore := status().Job
	r2 := render(t, upgrade(2), runValues("2", 3))
	k.apply(r2)
	from = status().Step
	t1 := time.Now()
	k.rollout(r2.statefulSet("vlp-coordinator"), tmpl, time.Minute)
	submit2 := k.runJob(r2.jobs()[0], "submit")
	k.rollout(r2.statefulSet("vlp-worker"), tmpl, time.Minute)
	took = k.waitFor(60*time.Second, "three workers training after the upgrade", func() bool {
		st = status()
		return submit2.succeeded && st != nil && st.Generation.Ready && len(st.Generation.Members) == 3 && st.Step > from+5
	})
	t.Logf("upgrade: every pod replaced, the spec resubmitted (a no-op), three workers train at step %d, %v after it began (from step %d)",
		st.Step, time.Since(t1).Round(time.Millisecond), from)
	if r2.jobs()[0].Name == r.jobs()[0].Name {
		t.Errorf("the submit Job kept its name %s across an image change: its pod template could not change", r.jobs()[0].Name)
	}
	if st.Job == nil || !sameSpec(st.Job, jobBefore) || st.State != coordinator.JobRunning {
		t.Errorf("after the upgrade: state %s, job %+v; want the same job running", st.State, st.Job)
	}

	// helm uninstall, then helm install with the same claims.
	k.uninstall(tmpl)
	cl.Close()
	r3 := render(t, install(), runValues("2", 3))
	k.apply(r3)
	t2 := time.Now()
	k.rollout(r3.statefulSet("vlp-coordinator"), tmpl, time.Minute)
	submit3 := k.runJob(r3.jobs()[0], "submit")
	k.rollout(r3.statefulSet("vlp-worker"), tmpl, time.Minute)
	cl = dialOperator(t, k, coords, token, opPassword)
	took = k.waitFor(60*time.Second, "the job resumed after a reinstall", func() bool {
		st = status()
		return submit3.succeeded && st != nil && st.Generation.Ready && len(st.Generation.Members) == 3 && st.Step > 5 &&
			stepsSince(commitLogs(k, workers), t2) > 5
	})
	logs := commitLogs(k, workers)
	last, first, err := stepsAround(logs, t2)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reinstall: the last step before the uninstall was %d, the first after the install %d; step %d %v after the install",
		last, first, st.Step, took.Round(time.Millisecond))
	restored := false
	for _, ck := range st.Checkpoints {
		restored = restored || ck.Step == first-1
	}
	if first <= 1 || first > last+1 || !restored {
		t.Errorf("the first step after the reinstall is %d (the last before %d; checkpoints %+v): want a resume from a recorded checkpoint",
			first, last, st.Checkpoints)
	}

	// Stop the job and count every pair of the whole run.
	if out, err := k.exec(k.pods[coords[0]], 30*time.Second, "job", "stop"); err != nil {
		t.Fatalf("vlp job stop: %v\n%s", err, out)
	}
	for _, w := range workers {
		if exited, err := k.pods[w].proc.Wait(30 * time.Second); !exited || err != nil {
			t.Errorf("%s after vlp job stop: exited %v, err %v\n%s", w, exited, err, k.pods[w].proc.Tail(2000))
		}
	}
	tally, err := integration.TallyCommits(logs, runPairs, runPerUnit, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tally over install, kill, upgrade and reinstall: %v", tally)
	if tally.Duplicated != 0 || tally.Steps < 50 {
		t.Errorf("tally %v: want no pair trained twice over at least 50 steps; the logs by generation:\n%s", tally, generations(logs))
	}
}

// generations describes the commit logs by generation: each one's steps, time span and writers.
func generations(logs []string) string {
	type span struct {
		first, last uint64
		from, to    int64
		lines       int
		writers     map[string]bool
	}
	byGen := map[uint64]*span{}
	for _, p := range logs {
		lines, err := worker.ReadCommitLog(p)
		if err != nil {
			return err.Error()
		}
		for _, l := range lines {
			g := byGen[l.Generation]
			if g == nil {
				g = &span{first: l.Step, last: l.Step, from: l.AtMS, to: l.AtMS, writers: map[string]bool{}}
				byGen[l.Generation] = g
			}
			g.first, g.last = min(g.first, l.Step), max(g.last, l.Step)
			g.from, g.to = min(g.from, l.AtMS), max(g.to, l.AtMS)
			g.lines++
			g.writers[filepath.Base(p)] = true
		}
	}
	var b strings.Builder
	for _, g := range slices.Sorted(maps.Keys(byGen)) {
		sp := byGen[g]
		fmt.Fprintf(&b, "  generation %d: steps %d–%d, %d lines, %d ms from %d, by %v\n", g, sp.first, sp.last, sp.lines, sp.to-sp.from, sp.from, slices.Sorted(maps.Keys(sp.writers)))
	}
	return b.String()
}

// dialOperator connects the test to the group as the operator would from a pod: mutual TLS
// with the client certificate, the operator's NATS user, the job token. The test runs outside
// the pods' namespaces, so it dials their IPs and verifies the coordinators' certificate
// against their stable name.
func dialOperator(t *testing.T, k *kubelet, coords []string, token, password string) *coordinator.Client {
	t.Helper()
	client := k.secrets["client-tls"]
	cert, err := tls.X509KeyPair(client.Data["tls.crt"], client.Data["tls.key"])
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(client.Data["ca.crt"])
	var urls []string
	for _, c := range coords {
		urls = append(urls, "tls://"+k.net.Host(c).IP+":4222")
	}
	conf := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
		ServerName: fmt.Sprintf("%s.vlp-coordinator-headless.%s.svc.%s", coords[0], testNamespace, testDomain)}
	opts := []nats.Option{nats.Secure(conf), nats.UserInfo("operator", password), nats.PingInterval(time.Second), nats.MaxPingsOutstanding(2)}
	var cl *coordinator.Client
	k.waitFor(30*time.Second, "a connection to the coordinators", func() bool {
		cl, err = coordinator.Dial(strings.Join(urls, ","), "itest", token, opts)
		return err == nil
	})
	t.Cleanup(cl.Close)
	return cl
}

// readyz is the coordinator's /readyz on its HTTP port: a leader known and the routes up.
func readyz(p *pod) *corev1.Probe {
	pr := p.spec.Containers[0].LivenessProbe.DeepCopy()
	pr.HTTPGet.Path = "/readyz"
	return pr
}

// commitLogs are the workers' commit logs on the shared claim (workers.extraArgs).
func commitLogs(k *kubelet, workers []string) []string {
	var out []string
	for _, w := range workers {
		out = append(out, filepath.Join(k.dir, "claims", "vlp-shared", "commits-"+w+".log"))
	}
	return out
}

// stepsAround reads the commit logs: the last step committed before t, and the first at or
// after it.
func stepsAround(logs []string, t time.Time) (last, first uint64, err error) {
	first = ^uint64(0)
	for _, p := range logs {
		lines, err := worker.ReadCommitLog(p)
		if err != nil {
			return 0, 0, err
		}
		for _, l := range lines {
			if l.AtMS >= t.UnixMilli() {
				first = min(first, l.Step)
			} else {
				last = max(last, l.Step)
			}
		}
	}
	if first == ^uint64(0) {
		return 0, 0, fmt.Errorf("no step committed since %v", t)
	}
	return last, first, nil
}

func sortedCopy(s []string) []string {
	out := append([]string{}, s...)
	slices.Sort(out)
	return out
}

func sameSpec(a, b *coordinator.JobSpec) bool {
	return a != nil && b != nil && fmt.Sprintf("%+v", *a) == fmt.Sprintf("%+v", *b)
}

// stepsSince counts the steps committed at or after t.
func stepsSince(logs []string, t time.Time) int {
	steps := map[uint64]bool{}
	for _, p := range logs {
		lines, _ := worker.ReadCommitLog(p)
		for _, l := range lines {
			if l.AtMS >= t.UnixMilli() {
				steps[l.Step] = true
			}
		}
	}
	return len(steps)
}

// TestChartRunsSingleCoordinator runs the other shape of the chart: one coordinator (no peers
// to route to, no budget), no TLS, the ring over NATS, one worker. The group of one forms, the
// spec is submitted, the worker trains, and the operator's commands work through kubectl exec.
// Then an upgrade to three coordinators: the two new pods find the group and are added to it,
// the first pod, rolled onto the three-replica flags, leaves and rejoins, and the job trains on.
func TestChartRunsSingleCoordinator(t *testing.T) {
	integration.RequireNet(t)
	coords := []string{"vlp-coordinator-0", "vlp-coordinator-1", "vlp-coordinator-2"}
	k := newKubelet(t, testNamespace, append(slices.Clone(coords), "vlp-worker-0", "submit"))
	for _, h := range coords {
		k.net.AddNames(h, fmt.Sprintf("%s.vlp-coordinator-headless.%s.svc.%s", h, testNamespace, testDomain))
	}
	k.secrets["ops-auth"] = &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "ops-auth"}, Data: map[string][]byte{
		"job-token": []byte("single-token"), "operator-password": []byte("single-operator"), "worker-password": []byte("single-worker"),
	}}
	vals := merge(runValues("1", 1), values("coordinators.replicas", 1, "tls.enabled", false, "workers.ringTransport", "nats"))
	r := render(t, install(), vals)
	if r.pdb("vlp-coordinator") != nil {
		t.Errorf("one coordinator: a PodDisruptionBudget was rendered")
	}
	k.apply(r)
	tmpl := templates{}
	k.rollout(r.statefulSet("vlp-coordinator"), tmpl, time.Minute)
	submit := k.runJob(r.jobs()[0], "submit")
	k.rollout(r.statefulSet("vlp-worker"), tmpl, time.Minute)
	coord := k.pods["vlp-coordinator-0"]
	var st coordinator.JobStatus
	status := func(p *pod) bool {
		out, err := k.exec(p, 10*time.Second, "job", "status", "--json")
		st = coordinator.JobStatus{}
		return err == nil && json.Unmarshal([]byte(out), &st) == nil
	}
	took := k.waitFor(60*time.Second, "the spec submitted and the worker training", func() bool {
		if !submit.succeeded || !k.ready(coord) {
			return false
		}
		return status(coord) && st.Generation.Ready && len(st.Generation.Members) == 1 && st.Step > 5
	})
	t.Logf("one coordinator, no TLS: training %v after the pods started", took.Round(time.Millisecond))
	if err := k.probe(coord, readyz(coord)); err != nil {
		t.Errorf("/readyz of a group of one: %v", err)
	}
	if out, err := k.exec(k.pods["vlp-worker-0"], 10*time.Second, "job", "stop"); err == nil || !strings.Contains(out, "permission") {
		t.Errorf("vlp job stop with the worker's credentials: %v\n%s; want a permission error", err, out)
	}

	// helm upgrade --set coordinators.replicas=3.
	jobBefore, from := st.Job, st.Step
	r2 := render(t, upgrade(2), merge(vals, values("coordinators.replicas", 3)))
	k.apply(r2)
	t0 := time.Now()
	k.rollout(r2.statefulSet("vlp-coordinator"), tmpl, time.Minute)
	grown := time.Since(t0)
	k.rollout(r2.statefulSet("vlp-worker"), tmpl, time.Minute)
	took = k.waitFor(60*time.Second, "three coordinators, the job training on", func() bool {
		return k.allReady(coords...) && status(k.pods[coords[2]]) && st.Generation.Ready && len(st.Generation.Members) == 1 && st.Step > from+5
	})
	t.Logf("upgrade to three coordinators: every pod ready and rolled %v after it began; the worker trains at step %d (from %d) %v later",
		grown.Round(time.Millisecond), st.Step, from, took.Round(time.Millisecond))
	if st.Job == nil || !sameSpec(st.Job, jobBefore) || st.State != coordinator.JobRunning {
		t.Errorf("after growing to three coordinators: state %s, job %+v; want the same job running", st.State, st.Job)
	}
	for _, c := range coords {
		if out, err := k.exec(k.pods[c], 30*time.Second, "coordinator", "members"); err != nil || strings.Count(out, "Voter") != 3 {
			t.Errorf("%s: coordinator members after growing to three: %v\n%s", c, err, out)
		}
	}
}
