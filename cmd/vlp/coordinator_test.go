package main

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func coordFreePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

// startCoordinator runs `vlp coordinator start` (with extra flags) and waits for /readyz. Its
// output goes to the file cmd.Stdout names.
func startCoordinator(t *testing.T, bin, dataDir, raftPort, natsPort, httpPort string, extra ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"coordinator", "start", "--data-dir", dataDir,
		"--raft-addr", "127.0.0.1:" + raftPort, "--nats-listen", "127.0.0.1:" + natsPort, "--http-addr", "127.0.0.1:" + httpPort,
		"--raft-heartbeat-timeout", "300ms", "--raft-election-timeout", "300ms", "--raft-leader-lease-timeout", "200ms"}, extra...)...)
	cmd.Env = append(os.Environ(), "VLP_JOB=cli", "VLP_JOB_TOKEN=tok", "VLP_LOG_LEVEL=warn")
	log, _ := os.Create(filepath.Join(t.TempDir(), "coordinator.log"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://127.0.0.1:" + httpPort + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return cmd
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("coordinator not ready after 20s:\n%s", b)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCoordinatorAndJobCommands runs the built binary as an operator would: start a single-node
// coordinator, submit a job, read its status and the members, stop it, restart the coordinator on
// the same data dir and find the job as it was.
func TestCoordinatorAndJobCommands(t *testing.T) {
	bin := testBinary(t)
	dir := t.TempDir()
	raftPort, natsPort, httpPort := coordFreePort(t), coordFreePort(t), coordFreePort(t)
	spec := filepath.Join(dir, "job.yaml")
	os.WriteFile(spec, []byte("name: cli\nmodel: tiny\nglobal_batch: 16\nepochs: 2\nunits:\n  pairs: 1000\n  per_unit: 50\n"), 0o644)

	run := func(args ...string) (string, bool) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "VLP_JOB=cli", "VLP_JOB_TOKEN=tok", "VLP_NATS_URL=nats://127.0.0.1:"+natsPort, "VLP_TIMEOUT=10s")
		out, err := cmd.CombinedOutput()
		return string(out), err == nil
	}
	coord := startCoordinator(t, bin, filepath.Join(dir, "data"), raftPort, natsPort, httpPort)

	if out, ok := run("job", "submit", spec); !ok || !strings.Contains(out, "job cli submitted: running") {
		t.Fatalf("job submit: %s", out)
	}
	out, ok := run("job", "status")
	if !ok || !strings.Contains(out, "job         cli: running") || !strings.Contains(out, "units       20 pending") {
		t.Fatalf("job status:\n%s", out)
	}
	if out, ok := run("coordinator", "members"); !ok || !strings.Contains(out, "127.0.0.1:"+raftPort) || !strings.Contains(out, "*") {
		t.Fatalf("coordinator members:\n%s", out)
	}
	if out, ok := run("job", "status", "--token", "wrong"); ok || !strings.Contains(out, "unauthorized") {
		t.Fatalf("status with a wrong token: ok=%v\n%s", ok, out)
	}
	if out, ok := run("job", "submit", filepath.Join(dir, "missing.yaml")); ok || !strings.Contains(out, "missing.yaml") {
		t.Fatalf("submit of a missing file: ok=%v\n%s", ok, out)
	}
	if out, ok := run("job", "stop"); !ok || !strings.Contains(out, "job cli: stopped") {
		t.Fatalf("job stop: %s", out)
	}
	resp, err := http.Get("http://127.0.0.1:" + httpPort + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var metrics strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := resp.Body.Read(buf)
		metrics.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	for _, want := range []string{"vlp_coordinator_leader 1", `vlp_coordinator_units{state="pending"} 20`, "vlp_coordinator_raft_apply_seconds_count"} {
		if !strings.Contains(metrics.String(), want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}

	// SIGTERM: a clean exit; then a restart on the same data dir resumes the job.
	coord.Process.Signal(syscall.SIGTERM)
	if err := coord.Wait(); err != nil {
		t.Fatalf("coordinator exit after SIGTERM: %v", err)
	}
	startCoordinator(t, bin, filepath.Join(dir, "data"), raftPort, natsPort, httpPort)
	if out, ok := run("job", "status"); !ok || !strings.Contains(out, "cli: stopped (stopped by the operator)") {
		t.Fatalf("status after restart:\n%s", out)
	}
}
