package helm

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// The probes of the tests' kubelet, run as the kubelet runs them: from outside the pod, on its IP.

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

// get fetches path from the pod's named port, as a scraper would.
func (k *kubelet) get(p *pod, portName, path string) (string, error) {
	port, err := p.port(intstr.FromString(portName))
	if err != nil {
		return "", err
	}
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://%s:%d%s", p.host.IP, port, path))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return string(b), err
}
