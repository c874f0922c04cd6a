package helm

import (
	"strings"
	"testing"
)

// valueSets are the configurations every render test covers: the defaults, and the variants an
// operator picks among.
func valueSets(t testing.TB) map[string]map[string]any {
	return map[string]map[string]any{
		"default":         nil,
		"single":          values("coordinators.replicas", 1),
		"five":            values("coordinators.replicas", 5, "workers.replicas", 8),
		"cpu-no-tls":      values("workers.gpus", 0, "tls.enabled", false, "workers.ringTransport", "nats"),
		"existing":        values("auth.existingSecret", "ops-auth", "storage.existingClaim", "datasets", "tls.certManager.enabled", false, "tls.existingSecrets.server", "srv", "tls.existingSecrets.client", "cli"),
		"issuer":          values("tls.certManager.issuerRef", map[string]any{"name": "corp-ca", "kind": "ClusterIssuer"}),
		"external-nats":   values("nats.externalURL", "tls://nats-a:4222,tls://nats-b:4222"),
		"gang-monitoring": values("workers.schedulerName", "scheduler-plugins-scheduler", "workers.podGroup.enabled", true, "metrics.serviceMonitor.enabled", true, "networkPolicy.enabled", false, "workers.ringSecurity", "encrypt"),
	}
}

// TestRenderDecodes renders every value set, as an install and as an upgrade, and decodes
// every document strictly into its API type.
func TestRenderDecodes(t *testing.T) {
	for name, vals := range valueSets(t) {
		t.Run(name, func(t *testing.T) {
			for _, rel := range []release{install(), upgrade(2)} {
				r := render(t, rel, vals)
				if len(r.Objects) == 0 || len(r.Hooks) == 0 || !strings.Contains(r.Notes, "vlp job status") {
					t.Fatalf("render: %d objects, %d hooks, notes %q", len(r.Objects), len(r.Hooks), r.Notes)
				}
			}
		})
	}
}
