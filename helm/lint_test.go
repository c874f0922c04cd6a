package helm

import (
	"testing"

	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
)

// TestLint runs Helm's linter (Chart.yaml, values against the schema, every template rendered
// and parsed, dependencies) on every value set: no warning or error.
func TestLint(t *testing.T) {
	for name, vals := range valueSets(t) {
		res := lint.RunAll(chartDir(t), vals, testNamespace)
		for _, m := range res.Messages {
			if m.Severity >= support.WarningSev {
				t.Errorf("%s: %s", name, m.Error())
			} else {
				t.Logf("%s: %s", name, m.Error())
			}
		}
	}
}
