package helm

import (
	"fmt"
	"maps"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	releaseutil "helm.sh/helm/v4/pkg/release/v1/util"
)

// The release every test renders, unless it says otherwise.
const (
	testRelease   = "vlp"
	testNamespace = "vlp-test"
	testDomain    = "cluster.local"
)

// chartDir is helm/vlp, found from this file so that the tests run from any directory.
func chartDir(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("helm: cannot locate the test's source file")
	}
	return filepath.Join(filepath.Dir(file), "vlp")
}

func loadChart(t testing.TB) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir(t))
	if err != nil {
		t.Fatalf("helm: load the chart: %v", err)
	}
	return ch
}

// release says what kind of render it is: an install, or an upgrade to a revision.
type release struct {
	Name, Namespace string
	Upgrade         bool
	Revision        int
}

func install() release { return release{Name: testRelease, Namespace: testNamespace, Revision: 1} }

func upgrade(rev int) release {
	return release{Name: testRelease, Namespace: testNamespace, Upgrade: true, Revision: rev}
}

// Rendered is one render of the chart: the manifests helm would apply, and the hooks (the
// helm test pod), each decoded strictly into its API type.
type Rendered struct {
	Objects []Object // manifests, in Helm's install order
	Hooks   []Object
	Notes   string
}

// renderValues renders the chart with vals over its defaults (as `helm template -f`), checking
// the values against values.schema.json first. The error is what helm install would print.
func renderValues(t testing.TB, rel release, vals map[string]any) (*Rendered, error) {
	t.Helper()
	ch := loadChart(t)
	caps := common.DefaultCapabilities.Copy()
	top, err := util.ToRenderValues(ch, vals, common.ReleaseOptions{
		Name: rel.Name, Namespace: rel.Namespace, Revision: rel.Revision, IsInstall: !rel.Upgrade, IsUpgrade: rel.Upgrade,
	}, caps)
	if err != nil {
		return nil, err
	}
	files, err := engine.Engine{Strict: true}.Render(ch, top)
	if err != nil {
		return nil, err
	}
	r := &Rendered{}
	for name, content := range files {
		if strings.HasSuffix(name, "NOTES.txt") {
			r.Notes = content
			delete(files, name)
		}
	}
	hooks, manifests, err := releaseutil.SortManifests(files, nil, releaseutil.InstallOrder)
	if err != nil {
		return nil, fmt.Errorf("helm: sort the manifests: %w", err)
	}
	for _, m := range manifests {
		o, err := decode(m.Name, m.Content)
		if err != nil {
			return nil, err
		}
		r.Objects = append(r.Objects, o)
	}
	for _, h := range hooks {
		o, err := decode(h.Path, h.Manifest)
		if err != nil {
			return nil, err
		}
		r.Hooks = append(r.Hooks, o)
	}
	return r, nil
}

// render is renderValues that fails the test on an error.
func render(t testing.TB, rel release, vals map[string]any) *Rendered {
	t.Helper()
	r, err := renderValues(t, rel, vals)
	if err != nil {
		t.Fatalf("helm: render with %s: %v", showValues(vals), err)
	}
	return r
}

// values builds a values tree from dotted keys, as `helm --set` does (but typed):
// values("workers.replicas", 3, "image.tag", "2").
func values(kv ...any) map[string]any {
	out := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		setPath(out, kv[i].(string), kv[i+1])
	}
	return out
}

func setPath(m map[string]any, path string, v any) {
	keys := strings.Split(path, ".")
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[k] = next
		}
		m = next
	}
	m[keys[len(keys)-1]] = v
}

// merge returns a deep merge of value trees, later ones winning.
func merge(trees ...map[string]any) map[string]any {
	out := map[string]any{}
	for _, tree := range trees {
		mergeInto(out, tree)
	}
	return out
}

func mergeInto(dst, src map[string]any) {
	for k, v := range src {
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				mergeInto(dv, sv)
				continue
			}
			cp := map[string]any{}
			mergeInto(cp, sv)
			dst[k] = cp
			continue
		}
		dst[k] = v
	}
}

func showValues(vals map[string]any) string {
	if len(vals) == 0 {
		return "the default values"
	}
	return "values " + strings.Join(slices.Sorted(maps.Keys(vals)), ",")
}
