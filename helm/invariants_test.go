package helm

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/e2evlp/vlp/image"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
)

// flags reads a container's --name=value arguments (a bare --name is "true").
func flags(c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, a := range c.Args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		k, v, ok := strings.Cut(a[2:], "=")
		if !ok {
			v = "true"
		}
		out[k] = v
	}
	return out
}

// envOf returns the container's env var of that name, or nil.
func envOf(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

// containerPort is the port of the container's named port, or 0.
func containerPort(c corev1.Container, name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return int(p.ContainerPort)
		}
	}
	return 0
}

// portOf is the port of a host:port.
func portOf(t *testing.T, hostport string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(hostport)
	if err != nil {
		t.Fatalf("%q: %v", hostport, err)
	}
	n, _ := strconv.Atoi(p)
	return n
}

// fieldRef says whether the env var comes from the pod's field path.
func fieldRef(e *corev1.EnvVar, path string) bool {
	return e != nil && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == path
}

func coordinatorSet(t *testing.T, r *Rendered) (*appsv1.StatefulSet, corev1.Container) {
	t.Helper()
	sts := r.statefulSet("vlp-coordinator")
	if sts == nil || len(sts.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("no coordinator StatefulSet with one container")
	}
	return sts, sts.Spec.Template.Spec.Containers[0]
}

func workerSet(t *testing.T, r *Rendered) (*appsv1.StatefulSet, corev1.Container) {
	t.Helper()
	sts := r.statefulSet("vlp-worker")
	if sts == nil || len(sts.Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("no worker StatefulSet with one container")
	}
	return sts, sts.Spec.Template.Spec.Containers[0]
}

// TestCoordinatorGroup: for 1, 3 and 5 replicas, the Raft peers and the NATS routes are exactly
// the replica count's stable names, on the ports the container listens on, behind a headless
// service that publishes pods before they are ready; pods start in parallel.
func TestCoordinatorGroup(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			r := render(t, install(), values("coordinators.replicas", n, "workers.replicas", 1))
			sts, c := coordinatorSet(t, r)
			f := flags(c)
			if int(*sts.Spec.Replicas) != n || sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
				t.Errorf("replicas %d, podManagementPolicy %q; want %d, Parallel", *sts.Spec.Replicas, sts.Spec.PodManagementPolicy, n)
			}
			hl := r.service(sts.Spec.ServiceName)
			if hl == nil || hl.Spec.ClusterIP != corev1.ClusterIPNone || !hl.Spec.PublishNotReadyAddresses {
				t.Fatalf("serviceName %q: want a headless service that publishes not-ready addresses, got %+v", sts.Spec.ServiceName, hl)
			}
			if !labels.SelectorFromSet(hl.Spec.Selector).Matches(labels.Set(sts.Spec.Template.Labels)) {
				t.Errorf("the headless service's selector %v does not select the pods %v", hl.Spec.Selector, sts.Spec.Template.Labels)
			}
			for _, p := range hl.Spec.Ports {
				if containerPort(c, p.TargetPort.StrVal) == 0 {
					t.Errorf("headless service port %s targets %q, which the container does not name", p.Name, p.TargetPort.StrVal)
				}
			}
			raft, httpPort, natsPort, cluster := containerPort(c, "raft"), containerPort(c, "http"), containerPort(c, "nats"), containerPort(c, "cluster")
			if portOf(t, f["raft-addr"]) != raft || f["raft-advertise"] != fmt.Sprintf("$(POD_IP):%d", raft) || !fieldRef(envOf(c, "POD_IP"), "status.podIP") {
				t.Errorf("raft: --raft-addr %s, --raft-advertise %s, container port %d; want the pod IP advertised on that port", f["raft-addr"], f["raft-advertise"], raft)
			}
			if f["node-id"] != "$(POD_NAME)" || !fieldRef(envOf(c, "POD_NAME"), "metadata.name") {
				t.Errorf("--node-id %q: want the pod's name", f["node-id"])
			}
			if portOf(t, f["http-addr"]) != httpPort || portOf(t, f["nats-listen"]) != natsPort {
				t.Errorf("--http-addr %s, --nats-listen %s; container ports http %d, nats %d", f["http-addr"], f["nats-listen"], httpPort, natsPort)
			}
			host := func(i int) string {
				return fmt.Sprintf("vlp-coordinator-%d.%s.%s.svc.%s", i, hl.Name, testNamespace, testDomain)
			}
			peers := strings.Split(f["peers"], ",")
			if len(peers) != n {
				t.Fatalf("--peers has %d entries, want %d: %s", len(peers), n, f["peers"])
			}
			for i, p := range peers {
				if want := fmt.Sprintf("vlp-coordinator-%d=%s:%d", i, host(i), raft); p != want {
					t.Errorf("peer %d: %s, want %s", i, p, want)
				}
			}
			urls := strings.Split(envOf(c, "VLP_NATS_URL").Value, ",")
			if len(urls) != n || urls[n-1] != fmt.Sprintf("tls://%s:%d", host(n-1), natsPort) {
				t.Errorf("VLP_NATS_URL %v: want the %d coordinators' names on port %d", urls, n, natsPort)
			}
			// One coordinator listens for routes too: pods added by a later upgrade route to it.
			routes := strings.Split(f["nats-routes"], ",")
			if len(routes) != n || portOf(t, f["nats-cluster-listen"]) != cluster {
				t.Fatalf("--nats-routes %v, --nats-cluster-listen %s: want %d routes on port %d", routes, f["nats-cluster-listen"], n, cluster)
			}
			for i, rt := range routes {
				if want := fmt.Sprintf("nats-route://%s:%d", host(i), cluster); rt != want {
					t.Errorf("route %d: %s, want %s", i, rt, want)
				}
			}
		})
	}
}

// TestDisruptionBudgetKeepsQuorum: voluntary disruptions leave floor(n/2)+1 coordinators; one
// coordinator gets no budget (it would block every drain).
func TestDisruptionBudgetKeepsQuorum(t *testing.T) {
	for _, n := range []int{1, 3, 5} {
		r := render(t, install(), values("coordinators.replicas", n, "workers.replicas", 1))
		sts, _ := coordinatorSet(t, r)
		pdb := r.pdb("vlp-coordinator")
		if n == 1 {
			if pdb != nil {
				t.Errorf("one coordinator: a PodDisruptionBudget %+v, want none", pdb.Spec)
			}
			continue
		}
		if pdb == nil || pdb.Spec.MinAvailable == nil || pdb.Spec.MaxUnavailable != nil {
			t.Fatalf("%d coordinators: budget %+v, want minAvailable", n, pdb)
		}
		if got, quorum := pdb.Spec.MinAvailable.IntValue(), n/2+1; got != quorum {
			t.Errorf("%d coordinators: minAvailable %d, want the quorum %d", n, got, quorum)
		}
		sel := labels.SelectorFromSet(pdb.Spec.Selector.MatchLabels)
		if !sel.Matches(labels.Set(sts.Spec.Template.Labels)) {
			t.Errorf("the budget's selector %v does not select the coordinators", pdb.Spec.Selector)
		}
	}
}

// TestCoordinatorProbes: startup and liveness on /healthz; readiness on /readyz, which does not
// wait for a leader (coordinator.TestReadyWithoutLeader); ports by names the container has; a
// preStop that, with the leave after SIGTERM, fits in the grace period.
func TestCoordinatorProbes(t *testing.T) {
	r := render(t, install(), nil)
	_, c := coordinatorSet(t, r)
	sts := r.statefulSet("vlp-coordinator")
	check := func(name string, p *corev1.Probe, path string) {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe: %+v, want an HTTP GET", name, p)
			return
		}
		if p.HTTPGet.Path != path {
			t.Errorf("%s probe on %s, want %s", name, p.HTTPGet.Path, path)
		}
		if portOf(t, flags(c)["http-addr"]) != containerPort(c, p.HTTPGet.Port.StrVal) {
			t.Errorf("%s probe on port %q, which is not --http-addr's", name, p.HTTPGet.Port.StrVal)
		}
	}
	check("startup", c.StartupProbe, "/healthz")
	check("liveness", c.LivenessProbe, "/healthz")
	check("readiness", c.ReadinessProbe, "/readyz")
	if s := c.StartupProbe; s != nil && s.PeriodSeconds*s.FailureThreshold < 60 {
		t.Errorf("startup probe allows %d s: a replica restoring a large snapshot needs at least a minute", s.PeriodSeconds*s.FailureThreshold)
	}
	ps := c.Lifecycle.PreStop
	// The leave after SIGTERM takes at most vlp coordinator start's --leave-timeout (5 s).
	if ps == nil || ps.Sleep == nil || *sts.Spec.Template.Spec.TerminationGracePeriodSeconds < ps.Sleep.Seconds+5+1 {
		t.Errorf("preStop %+v, grace %d: want a sleep that leaves the grace period room for the leave (5 s)", ps, *sts.Spec.Template.Spec.TerminationGracePeriodSeconds)
	}
	if a := sts.Spec.Template.Spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Errorf("affinity %+v: want a required anti-affinity between coordinators", a)
	}
}

// TestCoordinatorStorage: the Raft data is on a claim per pod that outlives the pods, and the
// data dir is on it.
func TestCoordinatorStorage(t *testing.T) {
	r := render(t, install(), values("coordinators.persistence.storageClassName", "fast", "coordinators.persistence.size", "5Gi"))
	sts, c := coordinatorSet(t, r)
	if len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Fatalf("volumeClaimTemplates: %d, want 1", len(sts.Spec.VolumeClaimTemplates))
	}
	vct := sts.Spec.VolumeClaimTemplates[0]
	if *vct.Spec.StorageClassName != "fast" || vct.Spec.Resources.Requests.Storage().Cmp(resource.MustParse("5Gi")) != 0 {
		t.Errorf("claim template %+v", vct.Spec)
	}
	if p := sts.Spec.PersistentVolumeClaimRetentionPolicy; p == nil || p.WhenDeleted != appsv1.RetainPersistentVolumeClaimRetentionPolicyType || p.WhenScaled != appsv1.RetainPersistentVolumeClaimRetentionPolicyType {
		t.Errorf("claim retention %+v: want Retain (a reinstall resumes from the claims)", p)
	}
	onClaim := false
	for _, m := range c.VolumeMounts {
		if m.Name == vct.Name && strings.HasPrefix(flags(c)["data-dir"], m.MountPath+"/") {
			onClaim = true
		}
	}
	if !onClaim {
		t.Errorf("--data-dir %s is not on the claim %s", flags(c)["data-dir"], vct.Name)
	}
}

// TestWorkerPods: a GPU per worker and --device the one allocated, /dev/shm in memory and
// bounded, the ring advertised on the pod IP at the port it listens on, checkpoints on the
// shared ReadWriteMany claim, the optional scheduler and PodGroup.
func TestWorkerPods(t *testing.T) {
	r := render(t, install(), values("workers.shmSize", "16Gi", "workers.schedulerName", "gang", "workers.podGroup.enabled", true))
	sts, c := workerSet(t, r)
	f := flags(c)
	spec := sts.Spec.Template.Spec
	gpu := c.Resources.Limits[corev1.ResourceName("nvidia.com/gpu")]
	if gpu.Value() != 1 || f["device"] != "cuda:0" {
		t.Errorf("nvidia.com/gpu limit %v, --device %s: want 1 and cuda:0", gpu.String(), f["device"])
	}
	if f["name"] != "$(POD_NAME)" || !fieldRef(envOf(c, "POD_NAME"), "metadata.name") {
		t.Errorf("--name %q: want the pod's name", f["name"])
	}
	if f["ring-advertise"] != fmt.Sprintf("$(POD_IP):%d", containerPort(c, "ring")) || portOf(t, f["ring-listen"]) != containerPort(c, "ring") || !fieldRef(envOf(c, "POD_IP"), "status.podIP") {
		t.Errorf("--ring-listen %s, --ring-advertise %s, ring port %d: want the pod IP at the listened port", f["ring-listen"], f["ring-advertise"], containerPort(c, "ring"))
	}
	vols := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		vols[v.Name] = v
	}
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	shm := vols[mounts["/dev/shm"]]
	if shm.EmptyDir == nil || shm.EmptyDir.Medium != corev1.StorageMediumMemory || shm.EmptyDir.SizeLimit == nil || shm.EmptyDir.SizeLimit.Cmp(resource.MustParse("16Gi")) != 0 {
		t.Errorf("/dev/shm: %+v, want a memory-backed emptyDir of 16Gi", shm)
	}
	shared := vols[mounts["/data"]]
	if shared.PersistentVolumeClaim == nil || !strings.HasPrefix(f["checkpoint-dir"], "/data/") {
		t.Fatalf("/data: %+v, --checkpoint-dir %s: want the checkpoints on the shared claim", shared, f["checkpoint-dir"])
	}
	pvc := r.find("PersistentVolumeClaim", shared.PersistentVolumeClaim.ClaimName)
	if pvc == nil || pvc.Value.(*corev1.PersistentVolumeClaim).Spec.AccessModes[0] != corev1.ReadWriteMany ||
		pvc.Value.(*corev1.PersistentVolumeClaim).Annotations["helm.sh/resource-policy"] != "keep" {
		t.Errorf("the shared claim %q: %+v, want ReadWriteMany and kept on uninstall", shared.PersistentVolumeClaim.ClaimName, pvc)
	}
	if spec.SchedulerName != "gang" || sts.Spec.Template.Labels["scheduling.x-k8s.io/pod-group"] != "vlp-worker" {
		t.Errorf("schedulerName %q, pod-group label %q", spec.SchedulerName, sts.Spec.Template.Labels["scheduling.x-k8s.io/pod-group"])
	}
	if pg := r.find("PodGroup", "vlp-worker"); pg == nil || pg.Value.(*podGroup).Spec.MinMember != 1 {
		t.Errorf("PodGroup %+v: want one with the job's min_workers (1)", pg)
	}

	cpu := render(t, install(), values("workers.gpus", 0, "storage.existingClaim", "datasets"))
	_, c = workerSet(t, cpu)
	if _, ok := c.Resources.Limits[corev1.ResourceName("nvidia.com/gpu")]; ok || flags(c)["device"] != "cpu" {
		t.Errorf("gpus 0: limits %v, --device %s; want no GPU and cpu", c.Resources.Limits, flags(c)["device"])
	}
	if cpu.find("PersistentVolumeClaim", "vlp-shared") != nil {
		t.Errorf("storage.existingClaim: the chart still makes its own claim")
	}
}

// TestPodsSecure: every pod of the chart runs the image's binary as its non-root user, with no
// privilege, a read-only root filesystem, resources, no service account token and no service
// links (whose variables could be read as VLP_* flags).
func TestPodsSecure(t *testing.T) {
	for name, vals := range valueSets(t) {
		r := render(t, install(), vals)
		var pods []corev1.PodSpec
		for _, o := range r.kinds("StatefulSet") {
			pods = append(pods, o.Value.(*appsv1.StatefulSet).Spec.Template.Spec)
		}
		for _, j := range r.jobs() {
			pods = append(pods, j.Spec.Template.Spec)
		}
		for _, p := range r.testPods() {
			pods = append(pods, p.Spec)
		}
		if len(pods) != 4 {
			t.Errorf("%s: %d pod specs, want 4 (coordinators, workers, submit, test)", name, len(pods))
		}
		for _, p := range pods {
			sc := p.SecurityContext
			if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != image.User || sc.FSGroup == nil {
				t.Errorf("%s: pod security context %+v: want non-root user 65532 and an fsGroup", name, sc)
			}
			if p.EnableServiceLinks == nil || *p.EnableServiceLinks || p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
				t.Errorf("%s: enableServiceLinks %s, automountServiceAccountToken %s: want both off", name, boolp(p.EnableServiceLinks), boolp(p.AutomountServiceAccountToken))
			}
			for _, c := range p.Containers {
				cs := c.SecurityContext
				if cs == nil || cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem || cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation ||
					cs.Capabilities == nil || len(cs.Capabilities.Drop) != 1 || cs.Capabilities.Drop[0] != "ALL" {
					t.Errorf("%s: container %s security context %+v", name, c.Name, cs)
				}
				if len(c.Resources.Requests) == 0 || c.Resources.Limits.Memory().IsZero() {
					t.Errorf("%s: container %s resources %+v: want requests and a memory limit", name, c.Name, c.Resources)
				}
				if len(c.Command) != 1 || c.Command[0] != image.BinaryPath {
					t.Errorf("%s: container %s command %v, want the images' %s", name, c.Name, c.Command, image.BinaryPath)
				}
			}
		}
	}
}

// boolp shows an optional bool.
func boolp(b *bool) string {
	if b == nil {
		return "unset"
	}
	return strconv.FormatBool(*b)
}
