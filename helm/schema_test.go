package helm

import (
	"strings"
	"testing"
)

// TestSchemaRejects: values.schema.json refuses bad values before anything renders, naming the
// key and what it wants; and the checks across values that a schema cannot express fail the
// render with a message that says why.
func TestSchemaRejects(t *testing.T) {
	for _, c := range []struct {
		name string
		vals map[string]any
		want []string // all in the error
	}{
		{"even coordinators", values("coordinators.replicas", 2), []string{"coordinators/replicas", "1, 3, 5"}},
		{"two GPUs a worker", values("workers.gpus", 2), []string{"workers/gpus"}},
		{"a password in values", values("auth.operatorPassword", "hunter2"), []string{"auth", "operatorPassword"}},
		{"a misspelt spec key", values("job.spec", map[string]any{"model": "tiny", "global_bacth": 8}), []string{"job/spec", "global_bacth"}},
		{"a number as a job option", values("job.spec", map[string]any{"model": "tiny", "options": map[string]any{"images": 512}}), []string{"job/spec/options/images", "string"}},
		{"a job name NATS cannot use", values("job.name", "my job"), []string{"job/name", "A-Za-z0-9_-"}},
		{"a duration without unit", values("coordinators.leaseTTL", "3"), []string{"coordinators/leaseTTL"}},
		{"shm not a quantity", values("workers.shmSize", "lots"), []string{"workers/shmSize"}},
		{"an unknown ring security", values("workers.ringSecurity", "none"), []string{"workers/ringSecurity", "auth"}},
		{"a privileged port", values("coordinators.ports.nats", 422), []string{"coordinators/ports/nats", "minimum"}},
		{"an unknown top-level key", values("replicas", 3), []string{"replicas"}},
		{"a bad external URL", values("nats.externalURL", "http://nats:4222"), []string{"nats/externalURL"}},
		// Checks in templates/_helpers.tpl (vlp.validate).
		{"more workers than max_workers", values("workers.replicas", 65), []string{"workers.replicas 65", "max_workers 64"}},
		{"fewer workers than min_workers", values("workers.replicas", 1, "job.spec", map[string]any{"model": "tiny", "global_batch": 8, "units": map[string]any{"pairs": 10}, "min_workers": 4}), []string{"workers.replicas 1", "min_workers 4"}},
		{"a spec without units", values("job.spec", map[string]any{"model": "tiny", "global_batch": 8}), []string{"job.spec.units: required"}},
		{"TLS with neither cert-manager nor secrets", values("tls.certManager.enabled", false), []string{"tls.existingSecrets.server"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := renderValues(t, install(), c.vals)
			if err == nil {
				t.Fatalf("values %v rendered; want them refused", c.vals)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not name %q:\n%v", w, err)
				}
			}
		})
	}
}
