package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A small run of the benchmark: two rank processes, every transport and wire
// type, the table and the JSON.
func TestBenchAllreduce(t *testing.T) {
	bin := testBinary(t)
	out := filepath.Join(t.TempDir(), "rows.json")
	cmd := exec.Command(bin, "bench", "allreduce", "--ranks", "2", "--sizes-mib", "1", "--iters", "2",
		"--transports", "nats,tcp,auto,tcp-plain,tcp-encrypt,shm", "--gloo-script", "", "--json", out)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vlp bench allreduce: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	table := stdout.String()
	for _, want := range []string{"| 2 | 1 MiB | nats | float32 |", "| 2 | 1 MiB | tcp | bf16 |", "| 2 | 1 MiB | auto | float32 |", "of the NATS relay cap", "× float32 algbw", "| 2 | 1 MiB | tcp-encrypt | float32 |", "of tcp-plain throughput", "| 2 | 1 MiB | shm | bf16 |", "× tcp busbw"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var rows []benchRow
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 12 {
		t.Fatalf("%d rows, want 12", len(rows))
	}
	for _, r := range rows {
		if r.Seconds <= 0 || r.AlgBW <= 0 || r.BusBW != r.AlgBW { // N=2: busbw = algbw
			t.Errorf("row %+v", r)
		}
		if r.Transport == "nats" && (r.RawNATS <= 0 || r.CapShare <= 0) {
			t.Errorf("NATS row without the raw comparison: %+v", r)
		}
		if (r.Transport == "tcp" || r.Transport == "tcp-encrypt") && r.VsPlain <= 0 {
			t.Errorf("protected TCP row without the plain comparison: %+v", r)
		}
		if r.Transport == "shm" && (r.VsTCP <= 0 || r.VsTCPOf != "tcp") {
			t.Errorf("shm row without the TCP comparison: %+v", r)
		}
	}
}

// Two simulated hosts of two ranks (network namespaces, as root): the flat
// ring and the hierarchical all-reduce side by side, hier set against tcp.
func TestBenchAllreduceHosts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("--hosts needs root (network namespaces)")
	}
	bin := testBinary(t)
	cmd := exec.Command(bin, "bench", "allreduce", "--hosts", "2", "--per-host", "2", "--sizes-mib", "1", "--iters", "1",
		"--wire", "float32", "--link-rate", "200mbit", "--gloo-script", "")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("vlp bench allreduce --hosts: %v\n%s\n%s", err, stdout.String(), stderr.String())
	}
	for _, want := range []string{"2 simulated hosts × 2 ranks", "| 4 | 1 MiB | tcp | float32 |", "| 4 | 1 MiB | hier | float32 |", "× tcp busbw"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, stdout.String())
		}
	}
}

// --transports with --hosts takes only rings that cross the simulated links.
func TestBenchAllreduceHostsRefusesNATS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("--hosts needs root (network namespaces)")
	}
	out, err := exec.Command(testBinary(t), "bench", "allreduce", "--hosts", "2", "--transports", "nats,hier").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "want tcp, tcp-plain, tcp-encrypt or hier") {
		t.Fatalf("got %v: %s", err, out)
	}
}
