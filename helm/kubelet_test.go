package helm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2evlp/vlp/integration"
	corev1 "k8s.io/api/core/v1"
)

// kubelet runs pods as processes on simulated hosts: one network namespace per pod name, the
// pod's container started with its command, arguments and environment as a kubelet would
// resolve them, its volumes as directories. It holds the objects pods refer to (Secrets,
// ConfigMaps) and the claims, which outlive the pods.
type kubelet struct {
	t       *testing.T
	net     *integration.Net
	bin     string // the vlp binary, where the images have image.BinaryPath
	dir     string // claims/, pods/, logs/; readable by the pods' user
	ns      string
	secrets map[string]*corev1.Secret
	configs map[string]*corev1.ConfigMap
	pods    map[string]*pod
}

// pod is one pod: its spec, its process, and how it restarts.
type pod struct {
	name    string
	host    *integration.Host
	spec    corev1.PodSpec
	claims  map[string]string // volume name → claim name (volumeClaimTemplates)
	mounts  []mount
	proc    *integration.Proc
	started time.Time
	// restarts and the back-off before the next (restartPolicy Always, or a Job's retries).
	restarts  int
	nextStart time.Time
	deleted   bool
	// job pods: the tries left; succeeded once one exited 0.
	triesLeft int
	succeeded bool
	argv, env []string
}

// mount is a volume mount: the path the container sees and the directory that holds it.
type mount struct {
	path, dir string
}

// restartBackoff compresses the kubelet's CrashLoopBackOff (10 s doubling to 5 min) so that a
// test waits seconds, not minutes; the order of events is the same.
const (
	restartBackoff    = 500 * time.Millisecond
	restartBackoffMax = 4 * time.Second
)

func newKubelet(t *testing.T, namespace string, hosts []string) *kubelet {
	t.Helper()
	integration.RequireNet(t)
	bin := integration.Binary(t)
	dir, err := os.MkdirTemp("", "vlp-helm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && os.Getenv("VLP_HELM_KEEP") != "" {
			t.Logf("pods' files kept in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	// The pods run as the chart's non-root user: everything they read must be reachable.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	k := &kubelet{t: t, dir: dir, ns: namespace, secrets: map[string]*corev1.Secret{}, configs: map[string]*corev1.ConfigMap{}, pods: map[string]*pod{}}
	k.bin = filepath.Join(dir, "vlp")
	if err := copyFile(bin, k.bin, 0o755); err != nil {
		t.Fatal(err)
	}
	k.net = integration.NewNet(t, hosts...)
	return k
}

// apply records the Secrets and ConfigMaps of a render (as the API server would store them).
func (k *kubelet) apply(r *Rendered) {
	for _, o := range r.Objects {
		switch v := o.Value.(type) {
		case *corev1.Secret:
			k.secrets[v.Name] = v
		case *corev1.ConfigMap:
			k.configs[v.Name] = v
		}
	}
}

// start creates pod name from spec and starts its container. claims names the claims of its
// volumeClaimTemplates; job pods (restartPolicy Never) are tried tries times. host is the
// simulated host it runs on (its pod IP): pods of one name get the same one.
func (k *kubelet) start(name, host string, spec corev1.PodSpec, claims map[string]string, tries int) *pod {
	k.t.Helper()
	if old, ok := k.pods[name]; ok && !old.deleted {
		k.t.Fatalf("kubelet: pod %s exists", name)
	}
	if len(spec.Containers) != 1 || len(spec.InitContainers) != 0 {
		k.t.Fatalf("kubelet: pod %s: %d containers and %d init containers; the chart's pods have one container", name, len(spec.Containers), len(spec.InitContainers))
	}
	p := &pod{name: name, host: k.net.Host(host), spec: spec, claims: claims, triesLeft: tries}
	if err := k.prepare(p); err != nil {
		k.t.Fatalf("kubelet: pod %s: %v", name, err)
	}
	k.pods[name] = p
	k.run(p)
	return p
}

// run starts (or restarts) the pod's process.
func (k *kubelet) run(p *pod) {
	k.t.Helper()
	log := filepath.Join(k.dir, "logs", p.name+".log")
	if p.proc == nil || p.deleted {
		p.proc = p.host.StartEnv(k.t, p.name, log, p.env, p.argv...)
	} else {
		p.proc.Restart(k.t)
	}
	p.started = time.Now()
}

// tick does what the kubelet and the Job controller do between the test's looks: a container
// of a pod with restartPolicy Always that exited is started again after its back-off; a Job's
// pod that failed is tried again while tries are left.
func (k *kubelet) tick() {
	k.t.Helper()
	for _, p := range k.pods {
		if p.deleted || p.succeeded || !p.proc.Exited() {
			continue
		}
		always := p.spec.RestartPolicy == "" || p.spec.RestartPolicy == corev1.RestartPolicyAlways
		if !always {
			if _, err := p.proc.Wait(time.Second); err == nil {
				p.succeeded = true
				continue
			}
			if p.triesLeft <= 1 {
				continue
			}
		}
		if p.nextStart.IsZero() {
			p.nextStart = time.Now().Add(min(restartBackoff<<p.restarts, restartBackoffMax))
			continue
		}
		if time.Now().Before(p.nextStart) {
			continue
		}
		p.restarts++
		p.triesLeft--
		p.nextStart = time.Time{}
		k.run(p)
	}
}

// waitFor polls cond every 100 ms, ticking the kubelet, for at most d; it fails the test with
// what it waited for and the pods' logs.
func (k *kubelet) waitFor(d time.Duration, what string, cond func() bool) time.Duration {
	k.t.Helper()
	t0 := time.Now()
	for {
		k.tick()
		if cond() {
			return time.Since(t0)
		}
		if time.Since(t0) > d {
			k.t.Fatalf("waited %v for %s\n%s", d, what, k.logs(2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// delete deletes the pod as the API server and kubelet do: the preStop hook, then SIGTERM,
// then SIGKILL after the grace period.
func (k *kubelet) delete(p *pod) {
	k.t.Helper()
	c := p.spec.Containers[0]
	p.deleted = true
	if p.proc.Exited() {
		return
	}
	t0 := time.Now()
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		switch h := c.Lifecycle.PreStop; {
		case h.Sleep != nil:
			time.Sleep(time.Duration(h.Sleep.Seconds) * time.Second)
		default:
			k.t.Fatalf("kubelet: %s: a preStop handler the tests do not run", p.name)
		}
	}
	grace := 30 * time.Second
	if g := p.spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	_ = p.proc.Signal(syscall.SIGTERM)
	if exited, _ := p.proc.Wait(grace - time.Since(t0)); !exited {
		k.t.Logf("kubelet: %s did not exit within its grace period %v: SIGKILL", p.name, grace)
		p.proc.Kill()
	}
}

// kill ends the pod's process at once (SIGKILL: a crash, a lost node) and deletes the pod.
func (k *kubelet) kill(p *pod) {
	p.deleted = true
	if !p.proc.Exited() {
		p.proc.Kill()
	}
}

// exec runs argv in the pod's container as `kubectl exec` does: its environment, its user, its
// network namespace; the vlp of the image is the test's binary.
func (k *kubelet) exec(p *pod, timeout time.Duration, args ...string) (string, error) {
	argv := append([]string{}, p.argv...)
	i := indexOf(argv, k.bin)
	argv = append(argv[:i+1], args...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", p.host.NS}, argv...)...)
	cmd.Env = p.env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// logs is the end of every pod's log, for failure messages.
func (k *kubelet) logs(n int) string {
	var names []string
	for name := range k.pods {
		names = append(names, name)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, name := range names {
		fmt.Fprintf(&b, "--- %s\n%s\n", name, k.pods[name].proc.Tail(n))
	}
	return b.String()
}
