package helm

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// TestNoSecretInPlainSight: the token and the passwords are only ever in the auth Secret: no
// other rendered document (a ConfigMap, an argument, an env value) holds one, every variable of
// a credential comes from the Secret, and workers never get the operator's password. Values
// have no key for a secret at all (the schema refuses one: TestSchemaRejects).
func TestNoSecretInPlainSight(t *testing.T) {
	r := render(t, install(), nil)
	auth := r.secret("vlp-auth")
	if auth == nil || len(auth.Data) != 3 {
		t.Fatalf("auth Secret %+v: want job-token, operator-password, worker-password", auth)
	}
	for key, val := range auth.Data {
		if len(val) < 32 {
			t.Errorf("generated %s has %d characters, want at least 32", key, len(val))
		}
		for _, o := range append(append([]Object{}, r.Objects...), r.Hooks...) {
			if o.Kind == "Secret" {
				continue
			}
			if strings.Contains(o.YAML, string(val)) {
				t.Errorf("%s's value appears in %s %s", key, o.Kind, o.Name)
			}
		}
	}
	var containers []struct {
		role string
		c    corev1.Container
	}
	for _, o := range r.kinds("StatefulSet") {
		sts := o.Value.(*appsv1.StatefulSet)
		containers = append(containers, struct {
			role string
			c    corev1.Container
		}{sts.Name, sts.Spec.Template.Spec.Containers[0]})
	}
	for _, j := range r.jobs() {
		containers = append(containers, struct {
			role string
			c    corev1.Container
		}{"submit", j.Spec.Template.Spec.Containers[0]})
	}
	for _, rc := range containers {
		for _, e := range rc.c.Env {
			if strings.Contains(e.Name, "PASSWORD") || strings.Contains(e.Name, "TOKEN") {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "vlp-auth" {
					t.Errorf("%s: %s is not read from the auth Secret: %+v", rc.role, e.Name, e)
				}
				if rc.role == "vlp-worker" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil && e.ValueFrom.SecretKeyRef.Key == "operator-password" {
					t.Errorf("a worker gets the operator's password (%s)", e.Name)
				}
			}
		}
		for _, a := range rc.c.Args {
			if strings.Contains(a, "password") && !strings.HasPrefix(a, "--nats-worker-user") || strings.HasPrefix(a, "--token") {
				t.Errorf("%s: a credential on the command line: %s", rc.role, a)
			}
		}
	}
	existing := render(t, install(), values("auth.existingSecret", "ops-auth"))
	if len(existing.kinds("Secret")) != 0 {
		t.Errorf("auth.existingSecret: the chart still renders a Secret")
	}
	_, c := coordinatorSet(t, existing)
	if ref := envOf(c, "VLP_JOB_TOKEN").ValueFrom.SecretKeyRef; ref.Name != "ops-auth" || ref.Key != "job-token" {
		t.Errorf("with auth.existingSecret the token comes from %s/%s", ref.Name, ref.Key)
	}
}
