package helm

import (
	"encoding/json"
	"fmt"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
)

// The controllers of the test cluster: what the StatefulSet and Job controllers do with a
// rendered object, in their order, on the kubelet's pods.

// templates remembers which pod template each running pod was made from.
type templates map[string]string

func templateKey(spec corev1.PodSpec) string {
	b, _ := json.Marshal(spec)
	return string(b)
}

// podName is the name of a StatefulSet's pod i.
func podName(sts *appsv1.StatefulSet, i int) string { return fmt.Sprintf("%s-%d", sts.Name, i) }

// claimsOf names the claims of a StatefulSet's pod: <template>-<pod>.
func claimsOf(sts *appsv1.StatefulSet, pod string) map[string]string {
	out := map[string]string{}
	for _, c := range sts.Spec.VolumeClaimTemplates {
		out[c.Name] = c.Name + "-" + pod
	}
	return out
}

// rollout applies a StatefulSet as its controller does with podManagementPolicy Parallel:
// missing pods are created at once, pods beyond the replica count deleted, then pods whose
// template changed are replaced one at a time from the highest ordinal, each new one ready
// (and minReadySeconds more) before the next, and none while a pod above it is not ready.
func (k *kubelet) rollout(sts *appsv1.StatefulSet, tmpl templates, readyTimeout time.Duration) {
	k.t.Helper()
	if sts.Spec.PodManagementPolicy != appsv1.ParallelPodManagement {
		k.t.Fatalf("rollout %s: podManagementPolicy %q; the test controller does Parallel", sts.Name, sts.Spec.PodManagementPolicy)
	}
	n := int(*sts.Spec.Replicas)
	key := templateKey(sts.Spec.Template.Spec)
	minReady := time.Duration(sts.Spec.MinReadySeconds) * time.Second
	for i := range n {
		name := podName(sts, i)
		if p, ok := k.pods[name]; ok && !p.deleted {
			continue
		}
		k.start(name, name, sts.Spec.Template.Spec, claimsOf(sts, name), 0)
		tmpl[name] = key
	}
	for i := n; ; i++ {
		p, ok := k.pods[podName(sts, i)]
		if !ok {
			break
		}
		if !p.deleted {
			k.delete(p)
		}
	}
	outdatedBelow := func(i int) bool {
		for j := range i {
			if tmpl[podName(sts, j)] != key {
				return true
			}
		}
		return false
	}
	for i := n - 1; i >= 0; i-- {
		name := podName(sts, i)
		if tmpl[name] == key {
			// The controller replaces a pod only once every pod above it is ready (a pod it
			// has just created included).
			if outdatedBelow(i) {
				k.waitReady(k.pods[name], readyTimeout, 0)
			}
			continue
		}
		k.delete(k.pods[name])
		p := k.start(name, name, sts.Spec.Template.Spec, claimsOf(sts, name), 0)
		tmpl[name] = key
		k.waitReady(p, readyTimeout, minReady)
		k.t.Logf("rollout %s: %s replaced", sts.Name, name)
	}
}

// runJob starts a Job's pod on host: it is tried backoffLimit+1 times (tick retries it).
func (k *kubelet) runJob(job *batchv1.Job, host string) *pod {
	k.t.Helper()
	tries := 7
	if job.Spec.BackoffLimit != nil {
		tries = int(*job.Spec.BackoffLimit) + 1
	}
	spec := job.Spec.Template.Spec
	if spec.RestartPolicy != corev1.RestartPolicyNever && spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		k.t.Fatalf("job %s: restartPolicy %q is not allowed in a Job", job.Name, spec.RestartPolicy)
	}
	return k.start(job.Name, host, spec, nil, tries)
}

// uninstall deletes every pod, as `helm uninstall` does by deleting their owners; claims stay.
func (k *kubelet) uninstall(tmpl templates) {
	k.t.Helper()
	done := make(chan struct{})
	n := 0
	for _, p := range k.pods {
		if p.deleted {
			continue
		}
		n++
		go func() {
			k.delete(p)
			done <- struct{}{}
		}()
	}
	for range n {
		<-done
	}
	for name := range tmpl {
		delete(tmpl, name)
	}
}

// allReady says whether every pod named is ready.
func (k *kubelet) allReady(names ...string) bool {
	for _, n := range names {
		p, ok := k.pods[n]
		if !ok || !k.ready(p) {
			return false
		}
	}
	return true
}
