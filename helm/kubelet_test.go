package helm

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/e2evlp/vlp/image"
	"github.com/e2evlp/vlp/integration"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
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

// prepare resolves the container: volumes into directories, the environment, the command line
// with $(VAR) references expanded and paths moved onto the volumes, and the user it runs as.
func (k *kubelet) prepare(p *pod) error {
	c := p.spec.Containers[0]
	podDir := filepath.Join(k.dir, "pods", p.name)
	if err := os.RemoveAll(podDir); err != nil { // emptyDirs die with their pod
		return err
	}
	for _, d := range []string{podDir, filepath.Join(k.dir, "logs"), filepath.Join(k.dir, "claims")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	fsGroup := -1
	if sc := p.spec.SecurityContext; sc != nil && sc.FSGroup != nil {
		fsGroup = int(*sc.FSGroup)
	}
	volumes := map[string]string{}
	for _, v := range p.spec.Volumes {
		dir, err := k.volume(p, podDir, v, fsGroup)
		if err != nil {
			return fmt.Errorf("volume %s: %w", v.Name, err)
		}
		volumes[v.Name] = dir
	}
	for tmpl, claim := range p.claims {
		dir := filepath.Join(k.dir, "claims", claim)
		if err := ownedDir(dir, fsGroup); err != nil {
			return err
		}
		volumes[tmpl] = dir
	}
	p.mounts = nil
	for _, m := range c.VolumeMounts {
		dir, ok := volumes[m.Name]
		if !ok {
			return fmt.Errorf("volumeMount %s: no volume of that name", m.Name)
		}
		if m.SubPath != "" {
			dir = filepath.Join(dir, m.SubPath)
		}
		p.mounts = append(p.mounts, mount{path: m.MountPath, dir: dir})
	}
	sort.Slice(p.mounts, func(i, j int) bool { return len(p.mounts[i].path) > len(p.mounts[j].path) })

	env, err := k.environment(p, c)
	if err != nil {
		return err
	}
	vars := map[string]string{}
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		vars[name] = value
	}
	if len(c.Command) != 1 || c.Command[0] != image.BinaryPath {
		return fmt.Errorf("command %q: the images run %s", c.Command, image.BinaryPath)
	}
	argv := []string{k.bin}
	for _, a := range c.Args {
		a, err := p.onVolumes(expand(a, vars))
		if err != nil {
			return fmt.Errorf("argument %q: %w", a, err)
		}
		argv = append(argv, a)
	}
	if sc := p.spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
		uid := strconv.FormatInt(*sc.RunAsUser, 10)
		gid := uid
		if sc.RunAsGroup != nil {
			gid = strconv.FormatInt(*sc.RunAsGroup, 10)
		}
		groups := gid
		if fsGroup >= 0 {
			groups = strconv.Itoa(fsGroup)
		}
		argv = append([]string{"setpriv", "--reuid=" + uid, "--regid=" + gid, "--groups=" + groups, "--"}, argv...)
	}
	p.argv, p.env = argv, env
	return nil
}

// volume makes the directory of one volume of pod p.
func (k *kubelet) volume(p *pod, podDir string, v corev1.Volume, fsGroup int) (string, error) {
	switch {
	case v.EmptyDir != nil:
		dir := filepath.Join(podDir, "volumes", v.Name)
		return dir, ownedDir(dir, fsGroup)
	case v.PersistentVolumeClaim != nil:
		dir := filepath.Join(k.dir, "claims", v.PersistentVolumeClaim.ClaimName)
		return dir, ownedDir(dir, fsGroup)
	case v.Secret != nil:
		s, ok := k.secrets[v.Secret.SecretName]
		if !ok {
			return "", fmt.Errorf("secret %q does not exist", v.Secret.SecretName)
		}
		return writeFiles(filepath.Join(podDir, "volumes", v.Name), s.Data, v.Secret.DefaultMode, fsGroup)
	case v.ConfigMap != nil:
		cm, ok := k.configs[v.ConfigMap.Name]
		if !ok {
			return "", fmt.Errorf("configMap %q does not exist", v.ConfigMap.Name)
		}
		data := map[string][]byte{}
		for key, val := range cm.Data {
			data[key] = []byte(val)
		}
		return writeFiles(filepath.Join(podDir, "volumes", v.Name), data, v.ConfigMap.DefaultMode, fsGroup)
	}
	return "", fmt.Errorf("a volume type the kubelet of the tests does not make")
}

// environment is the container's environment: the image's, HOSTNAME, then the container's env
// in order, each value's $(VAR) references expanded over the ones before it.
func (k *kubelet) environment(p *pod, c corev1.Container) ([]string, error) {
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "HOSTNAME=" + p.name}
	vars := map[string]string{}
	for _, e := range c.Env {
		var val string
		switch {
		case e.ValueFrom == nil:
			val = expand(e.Value, vars)
		case e.ValueFrom.FieldRef != nil:
			switch e.ValueFrom.FieldRef.FieldPath {
			case "metadata.name":
				val = p.name
			case "metadata.namespace":
				val = k.ns
			case "status.podIP":
				val = p.host.IP
			default:
				return nil, fmt.Errorf("env %s: fieldRef %s is not resolved by the tests", e.Name, e.ValueFrom.FieldRef.FieldPath)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := k.secrets[ref.Name]
			if !ok {
				return nil, fmt.Errorf("env %s: secret %q does not exist", e.Name, ref.Name)
			}
			b, ok := s.Data[ref.Key]
			if !ok {
				return nil, fmt.Errorf("env %s: secret %q has no key %q", e.Name, ref.Name, ref.Key)
			}
			val = string(b)
		default:
			return nil, fmt.Errorf("env %s: a valueFrom the tests do not resolve", e.Name)
		}
		moved, err := p.onVolumes(val)
		if err != nil && e.ValueFrom == nil {
			return nil, fmt.Errorf("env %s=%q: %w", e.Name, val, err)
		}
		if err == nil {
			val = moved
		}
		vars[e.Name] = val
		env = append(env, e.Name+"="+val)
	}
	return env, nil
}

// expand replaces $(NAME) with vars[NAME] as Kubernetes does: an unknown name stays as it is,
// and $$ is a literal $.
func expand(s string, vars map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+end]
			if v, ok := vars[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+end+1])
			}
			i += end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// onVolumes moves every absolute path in s (whole, after '=' or ',') onto the directory of the
// volume mounted there. A path on no volume is an error: the root filesystem is read-only and
// holds nothing of the pod's.
func (p *pod) onVolumes(s string) (string, error) {
	var out []string
	for _, part := range splitKeep(s) {
		if !strings.HasPrefix(part, "/") {
			out = append(out, part)
			continue
		}
		moved := ""
		for _, m := range p.mounts {
			if part == m.path || strings.HasPrefix(part, m.path+"/") {
				moved = m.dir + strings.TrimPrefix(part, m.path)
				break
			}
		}
		if moved == "" {
			return s, fmt.Errorf("path %s is on no volume of the pod (the root filesystem is read-only)", part)
		}
		out = append(out, moved)
	}
	return strings.Join(out, ""), nil
}

// splitKeep cuts s after every '=' and ',' and keeps the separators, so that joining the parts
// gives s again.
func splitKeep(s string) []string {
	var parts []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '=' || s[i] == ',' {
			parts = append(parts, s[start:i+1])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// ownedDir makes dir writable by the fsGroup, as the kubelet does for a volume of a pod with
// one (group-owned, setgid, group-writable).
func ownedDir(dir string, fsGroup int) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if fsGroup < 0 {
		return nil
	}
	if err := os.Chown(dir, 0, fsGroup); err != nil {
		return err
	}
	return os.Chmod(dir, 0o775|os.ModeSetgid)
}

// writeFiles writes a Secret's or ConfigMap's keys as files of mode (default 0644), group-owned
// by the fsGroup.
func writeFiles(dir string, data map[string][]byte, mode *int32, fsGroup int) (string, error) {
	if err := ownedDir(dir, fsGroup); err != nil {
		return "", err
	}
	perm := os.FileMode(0o644)
	if mode != nil {
		perm = os.FileMode(*mode)
	}
	for key, val := range data {
		f := filepath.Join(dir, key)
		if err := os.WriteFile(f, val, perm); err != nil {
			return "", err
		}
		if err := os.Chmod(f, perm); err != nil {
			return "", err
		}
		if fsGroup >= 0 {
			if err := os.Chown(f, 0, fsGroup); err != nil {
				return "", err
			}
		}
	}
	return dir, nil
}

func copyFile(from, to string, mode os.FileMode) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
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

// probe runs one of the container's probes once.
func (k *kubelet) probe(p *pod, pr *corev1.Probe) error {
	if pr == nil {
		return nil
	}
	timeout := time.Duration(max(pr.TimeoutSeconds, 1)) * time.Second
	switch {
	case pr.HTTPGet != nil:
		port, err := p.port(pr.HTTPGet.Port)
		if err != nil {
			return err
		}
		cl := http.Client{Timeout: timeout}
		resp, err := cl.Get(fmt.Sprintf("http://%s:%d%s", p.host.IP, port, pr.HTTPGet.Path))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("GET %s: %s", pr.HTTPGet.Path, resp.Status)
		}
		return nil
	case pr.TCPSocket != nil:
		port, err := p.port(pr.TCPSocket.Port)
		if err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", net.JoinHostPort(p.host.IP, strconv.Itoa(port)), timeout)
		if err != nil {
			return err
		}
		return c.Close()
	}
	return fmt.Errorf("a probe handler the tests do not run")
}

// port resolves a probe's port, by number or by the name of a container port.
func (p *pod) port(v intstr.IntOrString) (int, error) {
	if v.Type == intstr.Int {
		return v.IntValue(), nil
	}
	for _, cp := range p.spec.Containers[0].Ports {
		if cp.Name == v.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q: no container port of that name", v.StrVal)
}

// ready reports whether the pod's startup probe (if any) and readiness probe pass now.
func (k *kubelet) ready(p *pod) bool {
	c := p.spec.Containers[0]
	if p.deleted || p.proc.Exited() {
		return false
	}
	return k.probe(p, c.StartupProbe) == nil && k.probe(p, c.ReadinessProbe) == nil
}

// waitReady waits until the pod is ready and its liveness probe passes, then minReady more.
func (k *kubelet) waitReady(p *pod, d, minReady time.Duration) {
	k.t.Helper()
	k.waitFor(d, p.name+" ready", func() bool {
		return k.ready(p) && k.probe(p, p.spec.Containers[0].LivenessProbe) == nil
	})
	if minReady > 0 {
		time.Sleep(minReady)
		if !k.ready(p) {
			k.t.Fatalf("kubelet: %s was ready, and not %v later\n%s", p.name, minReady, p.proc.Tail(2000))
		}
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
