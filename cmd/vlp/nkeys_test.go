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
