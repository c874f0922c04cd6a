package helm

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/image"
	corev1 "k8s.io/api/core/v1"
)

// How the kubelet of the tests turns a pod's container into a process: its volumes, its
// environment, its command line, its user.

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

// TestExpand: $(VAR) references as Kubernetes expands them in env values, commands and args.
func TestExpand(t *testing.T) {
	vars := map[string]string{"POD_IP": "10.0.0.7", "POD_NAME": "w-0"}
	for in, want := range map[string]string{
		"--ring-advertise=$(POD_IP):7100": "--ring-advertise=10.0.0.7:7100",
		"/data/commits-$(POD_NAME).log":   "/data/commits-w-0.log",
		"$(UNDEFINED)-x":                  "$(UNDEFINED)-x",
		"$$(POD_IP)":                      "$(POD_IP)",
		"a$b $(":                          "a$b $(",
	} {
		if got := expand(in, vars); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestOnVolumes: paths in arguments move onto their volumes' directories; one on no volume is
// refused.
func TestOnVolumes(t *testing.T) {
	p := &pod{mounts: []mount{{"/etc/vlp/tls", "/v/tls"}, {"/data", "/v/shared"}}}
	for in, want := range map[string]string{
		"--checkpoint-dir=/data/checkpoints": "--checkpoint-dir=/v/shared/checkpoints",
		"/etc/vlp/tls/ca.crt":                "/v/tls/ca.crt",
		"--peers=a=h:7000,b=h2:7000":         "--peers=a=h:7000,b=h2:7000",
		"nats://h:4222":                      "nats://h:4222",
		"--x=/data":                          "--x=/v/shared",
	} {
		got, err := p.onVolumes(in)
		if err != nil || got != want {
			t.Errorf("onVolumes(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"/var/lib/vlp/x", "--data-dir=/database"} {
		if _, err := p.onVolumes(bad); err == nil {
			t.Errorf("onVolumes(%q): no error for a path on no volume", bad)
		}
	}
}
