package integration

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Proc is one `vlp` process running on a host, its output appended to a log file.
type Proc struct {
	Name    string
	Host    *Host
	LogPath string
	args    []string
	env     []string // nil: the test process's environment
	cmd     *exec.Cmd
	done    chan struct{}
	err     error
	started time.Time
}

// Start runs bin with args inside h's namespace (`ip netns exec`, which execs, so the process
// is bin itself and signals reach it). Output is appended to logPath. The process is killed in
// t.Cleanup if it still runs.
func (h *Host) Start(t testing.TB, name, bin, logPath string, args ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Host: h, LogPath: logPath, args: append([]string{bin}, args...)}
	p.start(t)
	return p
}

// StartEnv is Start with the process's whole environment given (KEY=VALUE; nil: the test
// process's, as Start does), for processes that must see only what they would be given on a
// real host, such as a container's environment.
func (h *Host) StartEnv(t testing.TB, name, logPath string, env []string, argv ...string) *Proc {
	t.Helper()
	p := &Proc{Name: name, Host: h, LogPath: logPath, args: argv, env: env}
	p.start(t)
	return p
}

func (p *Proc) start(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatalf("integration: %s log: %v", p.Name, err)
	}
	fmt.Fprintf(f, "=== %s start %s: %s\n", time.Now().UTC().Format(time.RFC3339Nano), p.Name, strings.Join(p.args, " "))
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", p.Host.NS}, p.args...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if p.env != nil {
		p.cmd.Env = p.env
	}
	p.done = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("integration: start %s: %v", p.Name, err)
	}
	p.started = time.Now()
	done := p.done
	cmd := p.cmd
	go func() {
		err := cmd.Wait()
		f.Close()
		p.err = err
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Signal(syscall.SIGCONT)
			_ = cmd.Process.Kill()
			<-done
		}
	})
}

// Restart starts the process again with the same arguments; the old one must have exited.
func (p *Proc) Restart(t testing.TB) {
	t.Helper()
	if !p.Exited() {
		t.Fatalf("integration: restart %s: it is still running", p.Name)
	}
	p.start(t)
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Proc) Signal(sig syscall.Signal) error { return syscall.Kill(p.Pid(), sig) }

// Kill sends SIGKILL and waits for the process to be gone.
func (p *Proc) Kill() {
	_ = p.Signal(syscall.SIGKILL)
	<-p.done
}

// Pause freezes the process (SIGSTOP); Resume thaws it (SIGCONT).
func (p *Proc) Pause() error { return p.Signal(syscall.SIGSTOP) }

// Resume thaws a paused process.
func (p *Proc) Resume() error { return p.Signal(syscall.SIGCONT) }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits at most d for the process to exit: exited is false on timeout, err is how it
// exited.
func (p *Proc) Wait(d time.Duration) (exited bool, err error) {
	select {
	case <-p.done:
		return true, p.err
	case <-time.After(d):
		return false, nil
	}
}

// Log is the process's log file so far.
func (p *Proc) Log() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Tail is the end of the log, for failure messages.
func (p *Proc) Tail(n int) string {
	s := p.Log()
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
