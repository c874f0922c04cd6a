package main

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// trainRun is a `vlp train` child process.
type trainRun struct {
	cmd            *exec.Cmd
	stdout, stderr bytes.Buffer
	done           chan struct{} // closed when the process has exited
	err            error
}

func startTrain(t *testing.T, bin string, args ...string) *trainRun {
	t.Helper()
	r := &trainRun{done: make(chan struct{})}
	r.cmd = exec.Command(bin, append([]string{"--log-level", "info", "train"}, args...)...)
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			r.cmd.Process.Kill()
			select {
			case <-r.done:
			case <-time.After(10 * time.Second):
				t.Log("vlp train did not exit after SIGKILL")
			}
		}
	})
	return r
}

func (r *trainRun) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	select {
	case <-r.done:
		return r.err
	case <-time.After(d):
		t.Fatalf("vlp train did not finish within %v\nstdout:\n%s\nstderr:\n%s", d, r.stdout.String(), tail(r.stderr.String(), 3000))
		return nil
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// The embedded default: a single-node coordinator with embedded NATS and two
// worker processes train the linear model, checkpoint, write event files;
// a second `vlp train` on the same directory resumes and trains further.
func TestTrainEmbeddedAndResume(t *testing.T) {
	bin := testBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	r := startTrain(t, bin, "--model", "linear", "--workers", "2", "--steps", "40", "--batch", "8", "--checkpoint-every", "10", "--dir", dir)
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatalf("vlp train: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout.String(), tail(r.stderr.String(), 3000))
	}
	out := r.stdout.String()
	for _, want := range []string{"2 workers started", "done in", "step 40,", "checkpoint step 40: verified", "final losses: mse"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for i := range 2 {
		b, err := os.ReadFile(filepath.Join(dir, "worker-"+strconv.Itoa(i)+".log"))
		if err != nil || !strings.Contains(string(b), "max-steps at step 40") {
			t.Errorf("worker %d log: %v\n%s", i, err, tail(string(b), 2000))
		}
	}
	events, _ := filepath.Glob(filepath.Join(dir, "events", "events.out.tfevents.*"))
	if len(events) != 1 {
		t.Fatalf("event files: %v, want one (rank 0's)", events)
	}
	steps := readEventSteps(t, events[0])
	if len(steps) != 40 || steps[0] != 1 || steps[39] != 40 {
		t.Fatalf("event file holds steps %v, want 1..40", steps)
	}

	r = startTrain(t, bin, "--model", "linear", "--workers", "2", "--steps", "60", "--dir", dir)
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatalf("resumed vlp train: %v\nstdout:\n%s\nstderr:\n%s", err, r.stdout.String(), tail(r.stderr.String(), 3000))
	}
	out = r.stdout.String()
	for _, want := range []string{"resuming job", "at step 40", "step 60,", "checkpoint step 60: verified"} {
		if !strings.Contains(out, want) {
			t.Errorf("resumed output lacks %q:\n%s", want, out)
		}
	}
}

// readEventSteps parses a TensorBoard event file independently of the
// writer: TFRecord frames with masked CRC-32C, Event protos; it returns the
// step of every event that has one.
func readEventSteps(t *testing.T, path string) []int64 {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rd := bufio.NewReader(f)
	tab := crc32.MakeTable(crc32.Castagnoli)
	mask := func(b []byte) uint32 {
		c := crc32.Checksum(b, tab)
		return ((c >> 15) | (c << 17)) + 0xa282ead8
	}
	var steps []int64
	first := true
	for {
		var hdr [12]byte
		if _, err := ioReadFull(rd, hdr[:]); err != nil {
			break
		}
		if binary.LittleEndian.Uint32(hdr[8:]) != mask(hdr[:8]) {
			t.Fatal("bad length CRC")
		}
		rec := make([]byte, binary.LittleEndian.Uint64(hdr[:8])+4)
		if _, err := ioReadFull(rd, rec); err != nil {
			t.Fatalf("truncated record: %v", err)
		}
		data := rec[:len(rec)-4]
		if binary.LittleEndian.Uint32(rec[len(rec)-4:]) != mask(data) {
			t.Fatal("bad data CRC")
		}
		if first {
			if !bytes.Contains(data, []byte("brain.Event:2")) {
				t.Fatal("the first event is not the file version")
			}
			first = false
			continue
		}
		// Field 2 (step, varint) follows field 1 (wall_time, fixed64): tag 0x09 + 8 bytes, tag 0x10.
		if len(data) < 10 || data[0] != 0x09 || data[9] != 0x10 {
			t.Fatalf("unexpected event layout % x", data[:min(len(data), 12)])
		}
		v, n := binary.Uvarint(data[10:])
		if n <= 0 {
			t.Fatal("bad step varint")
		}
		if !bytes.Contains(data, []byte("loss/total")) {
			t.Fatal("event lacks loss/total")
		}
		steps = append(steps, int64(v))
	}
	return steps
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := r.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

var stepLog = regexp.MustCompile(`msg=step .*?step=(\d+)`)

// A worker process killed with SIGKILL mid-run: the survivors continue in a
// new generation with no restart and finish the job; the run reports the
// dead worker.
func TestTrainSurvivesSIGKILL(t *testing.T) {
	bin := testBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	r := startTrain(t, bin, "--model", "linear", "--workers", "3", "--min-workers", "2", "--steps", "150", "--batch", "12",
		"--linear-compute", "2ms", "--progress-every", "5", "--checkpoint-every", "50", "--dir", dir)
	// Wait until training is under way with all three, then kill w2.
	deadline := time.Now().Add(60 * time.Second)
	var victim int
	for victim == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("training did not get going\n%s", tail(r.stderr.String(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
		b, _ := os.ReadFile(filepath.Join(dir, "worker-2.log"))
		if !strings.Contains(string(b), "size=3") {
			continue
		}
		if maxLoggedStep(dir) < 20 {
			continue
		}
		victim = childWithArg(t, r.cmd.Process.Pid, "w2")
	}
	killedAt := maxLoggedStep(dir)
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	for maxLoggedStep(dir) < killedAt+10 {
		if time.Since(killed) > 30*time.Second {
			t.Fatalf("no progress after the kill at step %d", killedAt)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("SIGKILL at step ~%d; the survivors logged step %d %v later", killedAt, killedAt+10, time.Since(killed).Round(time.Millisecond))
	err := r.wait(t, 90*time.Second)
	if err == nil || !strings.Contains(r.stderr.String()+err.Error(), "worker 2: signal: killed") {
		t.Errorf("vlp train should report the killed worker; err %v\n%s", err, tail(r.stderr.String(), 1000))
	}
	if !strings.Contains(r.stdout.String(), "step 150,") {
		t.Fatalf("the survivors did not finish:\n%s\n%s", r.stdout.String(), tail(r.stderr.String(), 3000))
	}
	for _, w := range []string{"0", "1"} {
		b, _ := os.ReadFile(filepath.Join(dir, "worker-"+w+".log"))
		m := finishedRe.FindSubmatch(b)
		if m == nil {
			t.Errorf("worker %s did not finish at step 150:\n%s", w, tail(string(b), 1500))
			continue
		}
		if n, _ := strconv.Atoi(string(m[1])); n < 2 {
			t.Errorf("worker %s trained in %d generation(s); the kill should have made another", w, n)
		}
	}
}

var finishedRe = regexp.MustCompile(`max-steps at step 150 after (\d+) generation`)

// maxLoggedStep is the highest step rank 0 logged in any worker log.
func maxLoggedStep(dir string) int {
	best := 0
	logs, _ := filepath.Glob(filepath.Join(dir, "worker-*.log"))
	for _, l := range logs {
		b, _ := os.ReadFile(l)
		for _, m := range stepLog.FindAllSubmatch(b, -1) {
			if n, _ := strconv.Atoi(string(m[1])); n > best {
				best = n
			}
		}
	}
	return best
}

// childWithArg finds the child process of pid whose command line has
// "--name name".
func childWithArg(t *testing.T, pid int, name string) int {
	t.Helper()
	// Any thread of the parent may have started the child.
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	var kids []string
	for _, task := range tasks {
		b, _ := os.ReadFile(task)
		kids = append(kids, strings.Fields(string(b))...)
	}
	for _, f := range kids {
		cmdline, _ := os.ReadFile("/proc/" + f + "/cmdline")
		args := strings.Split(string(cmdline), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--name" && args[i+1] == name {
				n, _ := strconv.Atoi(f)
				return n
			}
		}
	}
	t.Fatalf("no child of %d named %s", pid, name)
	return 0
}

var stoppedRe = regexp.MustCompile(`worker w(\d): stopped at step (\d+)`)

// SIGTERM to `vlp train`: every worker finishes its step and leaves, rank 0
// writes a final checkpoint first, and a second `vlp train` resumes exactly
// there.
func TestTrainSIGTERMFinishesAndResumes(t *testing.T) {
	bin := testBinary(t)
	dir := filepath.Join(t.TempDir(), "run")
	r := startTrain(t, bin, "--model", "linear", "--workers", "2", "--steps", "5000", "--batch", "8",
		"--linear-compute", "2ms", "--progress-every", "5", "--checkpoint-every", "1000", "--dir", dir)
	deadline := time.Now().Add(60 * time.Second)
	for maxLoggedStep(dir) < 20 {
		if time.Now().After(deadline) {
			t.Fatalf("training did not get going\n%s", tail(r.stderr.String(), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatalf("vlp train after SIGTERM: %v\n%s\n%s", err, r.stdout.String(), tail(r.stderr.String(), 3000))
	}
	var last int
	for _, w := range []string{"0", "1"} {
		b, _ := os.ReadFile(filepath.Join(dir, "worker-"+w+".log"))
		m := stoppedRe.FindSubmatch(b)
		if m == nil {
			t.Fatalf("worker %s did not stop cleanly:\n%s", w, tail(string(b), 1500))
		}
		if n, _ := strconv.Atoi(string(m[2])); n > last {
			last = n
		}
	}
	if !strings.Contains(r.stdout.String(), "checkpoint step "+strconv.Itoa(last)+": verified") {
		w0, _ := os.ReadFile(filepath.Join(dir, "worker-0.log"))
		w1, _ := os.ReadFile(filepath.Join(dir, "worker-1.log"))
		t.Fatalf("no final checkpoint at step %d:\n%s\n%s\nworker 0:\n%s\nworker 1:\n%s", last, r.stdout.String(),
			tail(r.stderr.String(), 2000), tail(string(w0), 4000), tail(string(w1), 4000))
	}
	r = startTrain(t, bin, "--model", "linear", "--workers", "2", "--steps", strconv.Itoa(last+10), "--dir", dir)
	if err := r.wait(t, 60*time.Second); err != nil {
		t.Fatalf("resumed vlp train: %v\n%s", err, tail(r.stderr.String(), 3000))
	}
	if out := r.stdout.String(); !strings.Contains(out, "at step "+strconv.Itoa(last)) || !strings.Contains(out, "step "+strconv.Itoa(last+10)+",") {
		t.Fatalf("the resumed run did not continue from step %d:\n%s", last, out)
	}
}

// A failed worker's last error line ends the run's error: not just "exit status 1".
func TestLastErrorLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "worker-0.log")
	log := "time=… level=INFO msg=joined\nvlp: worker: an earlier failure\ntime=… level=INFO msg=retry\n" +
		"vlp: worker: --device: torch: device not available: cuda:0\ntime=… level=INFO msg=bye\n"
	if err := os.WriteFile(path, []byte(log), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, want := lastErrorLine(path), "worker: --device: torch: device not available: cuda:0"; got != want {
		t.Errorf("lastErrorLine = %q, want %q", got, want)
	}
	if got := lastErrorLine(filepath.Join(t.TempDir(), "none.log")); got != "" {
		t.Errorf("no log: %q", got)
	}
}
