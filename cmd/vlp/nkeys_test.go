package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// `vlp nkeys` makes the operator's and the workers' seeds; a coordinator started with them
// prints its security posture in one line, the operator commands reach it with the operator
// seed, and no credentials are refused.
func TestNkeysAndSecurePosture(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	out, errOut, ok := runVLP(t, bin, "nkeys", "--out", dir)
	if !ok {
		t.Fatalf("vlp nkeys: %s %s", out, errOut)
	}
	for _, f := range []string{"operator.nk", "worker.nk"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, err, st)
		}
	}
	m := regexp.MustCompile(`worker: \S+ \(public key (U[A-Z0-9]{55})\)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no worker public key in:\n%s", out)
	}
	if _, _, ok := runVLP(t, bin, "nkeys", "--out", dir); ok {
		t.Fatal("nkeys overwrote existing seeds without --force")
	}

	natsPort := coordFreePort(t)
	cmd := startCoordinator(t, bin, filepath.Join(dir, "data"), coordFreePort(t), natsPort, coordFreePort(t),
		"--nats-nkey-seed", filepath.Join(dir, "operator.nk"), "--nats-worker-nkey", m[1])
	b, _ := os.ReadFile(cmd.Stdout.(*os.File).Name())
	if !strings.Contains(string(b), "security: clients=plain TCP nats-auth=operator nkey+worker nkey job-token=required") {
		t.Fatalf("no security posture line:\n%s", b)
	}
	env := []string{"VLP_JOB=cli", "VLP_JOB_TOKEN=tok", "VLP_NATS_URL=nats://127.0.0.1:" + natsPort, "VLP_TIMEOUT=3s"}
	members := func(args ...string) (string, bool) {
		c := exec.Command(bin, append([]string{"coordinator", "members"}, args...)...)
		c.Env = append(os.Environ(), env...)
		out, err := c.CombinedOutput()
		return string(out), err == nil
	}
	if out, ok := members("--nats-nkey-seed", filepath.Join(dir, "operator.nk")); !ok || !strings.Contains(out, "LEADER") {
		t.Fatalf("members with the operator seed: %s", out)
	}
	if out, ok := members(); ok {
		t.Fatalf("members without credentials: %s", out)
	}
	// The worker seed on an operator command: one clear error at once, not the violation three
	// times and "no coordinator" after the whole --timeout.
	stop := exec.Command(bin, "job", "stop", "--nats-nkey-seed", filepath.Join(dir, "worker.nk"))
	stop.Env = append(os.Environ(), append(env, "VLP_TIMEOUT=30s")...)
	start := time.Now()
	b, err := stop.CombinedOutput()
	took, out := time.Since(start), string(b)
	if err == nil || took > 10*time.Second || strings.Count(out, "Permissions Violation") != 1 ||
		!strings.Contains(out, "lack permission") || !strings.Contains(out, "--nats-nkey-seed") || strings.Contains(out, "no leader") {
		t.Fatalf("job stop with the worker seed (%v, err %v): want one clear permission error well before --timeout 30s:\n%s", took, err, out)
	}
	t.Logf("job stop with the worker seed, failed after %v:\n%s", took.Round(time.Millisecond), out)
}

// Flag mistakes are reported with the flags' names, before anything starts.
func TestSecurityFlagErrorsNameFlags(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	os.WriteFile(cert, []byte("x"), 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "status", "--nats-cert", cert}, "--nats-cert needs --nats-key"},
		{[]string{"coordinator", "start", "--data-dir", filepath.Join(dir, "d1"), "--nats-tls-cert", cert}, "--nats-tls-cert (NATS.Embedded.TLSCert) needs --nats-tls-key"},
		{[]string{"coordinator", "start", "--data-dir", filepath.Join(dir, "d2"), "--nats-worker-user", "w", "--nats-worker-password", "p"}, "--nats-user or --nats-nkey-seed"},
	} {
		_, errOut, ok := runVLP(t, bin, tc.args...)
		if ok || !strings.Contains(errOut, tc.want) {
			t.Errorf("vlp %s: ok %v, stderr %q, want %q", strings.Join(tc.args, " "), ok, errOut, tc.want)
		}
	}
}

// `vlp nkeys --workers` makes one key per worker and the registry a coordinator reads with
// --nats-worker-nkeys; adding workers later keeps the operator's key and the others' lines. A
// worker on its own key reaches the coordinator (here: a job without a spec yet, which it says);
// a key not in the registry, or removed from it, is refused at once with an error that names the
// key and the flag to check.
func TestPerWorkerNkeysCLI(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	if out, errOut, ok := runVLP(t, bin, "nkeys", "--out", dir, "--workers", "w1,w2"); !ok || !strings.Contains(out, "--nats-worker-nkeys") {
		t.Fatalf("vlp nkeys --workers: %s %s", out, errOut)
	}
	opBefore, _ := os.ReadFile(filepath.Join(dir, "operator.nk"))
	if out, errOut, ok := runVLP(t, bin, "nkeys", "--out", dir, "--workers", "w3"); !ok || !strings.Contains(out, "(kept)") {
		t.Fatalf("vlp nkeys --workers w3: %s %s", out, errOut)
	}
	if _, errOut, ok := runVLP(t, bin, "nkeys", "--out", dir, "--workers", "w1"); ok || !strings.Contains(errOut, "already in") {
		t.Fatalf("vlp nkeys --workers w1 again: ok %v, %s; want a refusal", ok, errOut)
	}
	if _, errOut, ok := runVLP(t, bin, "nkeys", "--out", dir, "--workers", "a/b"); ok || !strings.Contains(errOut, "--workers") {
		t.Fatalf("a worker name with a slash: ok %v, %s", ok, errOut)
	}
	opAfter, _ := os.ReadFile(filepath.Join(dir, "operator.nk"))
	if string(opBefore) != string(opAfter) {
		t.Fatal("adding workers replaced the operator's key")
	}
	registry := filepath.Join(dir, "workers.pub")
	reg, err := os.ReadFile(registry)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(reg), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 3 || !strings.HasSuffix(lines[0], " w1") || !strings.HasSuffix(lines[2], " w3") {
		t.Fatalf("registry:\n%s", reg)
	}
	for _, n := range []string{"w1", "w2", "w3"} {
		st, err := os.Stat(filepath.Join(dir, "workers", n+".nk"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s's seed: %v %v", n, err, st)
		}
	}

	natsPort := coordFreePort(t)
	cmd := startCoordinator(t, bin, filepath.Join(dir, "data"), coordFreePort(t), natsPort, coordFreePort(t),
		"--nats-nkey-seed", filepath.Join(dir, "operator.nk"), "--nats-worker-nkeys", registry)
	b, _ := os.ReadFile(cmd.Stdout.(*os.File).Name())
	if !strings.Contains(string(b), "nats-auth=operator nkey+per-worker nkeys") {
		t.Fatalf("posture line:\n%s", b)
	}
	join := func(seed string) (string, time.Duration, bool) {
		c := exec.Command(bin, "worker", "join", "--nats-nkey-seed", seed)
		c.Env = append(os.Environ(), "VLP_JOB=cli", "VLP_JOB_TOKEN=tok", "VLP_NATS_URL=nats://127.0.0.1:"+natsPort, "VLP_TIMEOUT=20s")
		start := time.Now()
		out, err := c.CombinedOutput()
		return string(out), time.Since(start), err == nil
	}
	if out, _, _ := join(filepath.Join(dir, "workers", "w2.nk")); !strings.Contains(out, `job "cli" has no spec yet`) {
		t.Fatalf("w2 on its own key: want it to reach the coordinator and hear of no spec:\n%s", out)
	}
	other := t.TempDir()
	if out, errOut, ok := runVLP(t, bin, "nkeys", "--out", other, "--workers", "stranger"); !ok {
		t.Fatalf("%s %s", out, errOut)
	}
	out, took, ok := join(filepath.Join(other, "workers", "stranger.nk"))
	if ok || took > 10*time.Second || !strings.Contains(out, "not registered with the coordinators") || !strings.Contains(out, "--nats-worker-nkeys") {
		t.Fatalf("a key not in the registry (%v): want one clear refusal well before --timeout:\n%s", took, out)
	}
	// Revoke w2: delete its line; the coordinator rereads the registry within seconds.
	var kept []string
	for _, l := range strings.Split(string(reg), "\n") {
		if !strings.HasSuffix(l, " w2") {
			kept = append(kept, l)
		}
	}
	if err := os.WriteFile(registry, []byte(strings.Join(kept, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, _, _ = join(filepath.Join(dir, "workers", "w2.nk"))
		if strings.Contains(out, "or it was revoked") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("w2 after its line was deleted: want a refusal:\n%s", out)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("a revoked worker key: %s", strings.TrimSpace(out))
}
