package helm

import (
	"fmt"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"
)

// Object is one rendered document: where it came from, its group/version and kind, its name,
// and its value as the API type (a *appsv1.StatefulSet, …).
type Object struct {
	Source     string // the template that rendered it
	APIVersion string
	Kind       string
	Name       string
	Value      any
	YAML       string
}

// apiTypes are the kinds the chart may render, each with a new value of its API type. A kind
// missing here fails the decode: a new kind in the chart needs its type here.
var apiTypes = map[string]func() any{
	"v1/ConfigMap":                            func() any { return &corev1.ConfigMap{} },
	"v1/Secret":                               func() any { return &corev1.Secret{} },
	"v1/Service":                              func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                       func() any { return &corev1.ServiceAccount{} },
	"v1/PersistentVolumeClaim":                func() any { return &corev1.PersistentVolumeClaim{} },
	"v1/Pod":                                  func() any { return &corev1.Pod{} },
	"apps/v1/StatefulSet":                     func() any { return &appsv1.StatefulSet{} },
	"batch/v1/Job":                            func() any { return &batchv1.Job{} },
	"policy/v1/PodDisruptionBudget":           func() any { return &policyv1.PodDisruptionBudget{} },
	"networking.k8s.io/v1/NetworkPolicy":      func() any { return &networkingv1.NetworkPolicy{} },
	"cert-manager.io/v1/Certificate":          func() any { return &certificate{} },
	"cert-manager.io/v1/Issuer":               func() any { return &issuer{} },
	"monitoring.coreos.com/v1/ServiceMonitor": func() any { return &serviceMonitor{} },
	"scheduling.x-k8s.io/v1alpha1/PodGroup":   func() any { return &podGroup{} },
}

// decode reads one document strictly: an unknown field, a field of the wrong type, or a kind
// without an API type is an error naming the template.
func decode(source, doc string) (Object, error) {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name string `json:"name"`
		} `json:"metadata"`
	}
	if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
		return Object{}, fmt.Errorf("helm: %s: not YAML: %w\n%s", source, err, doc)
	}
	if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
		return Object{}, fmt.Errorf("helm: %s: a document without apiVersion, kind or metadata.name:\n%s", source, doc)
	}
	key := head.APIVersion + "/" + head.Kind
	newValue, ok := apiTypes[key]
	if !ok {
		return Object{}, fmt.Errorf("helm: %s: %s has no API type in the tests (apiTypes)", source, key)
	}
	v := newValue()
	if err := yaml.UnmarshalStrict([]byte(doc), v); err != nil {
		return Object{}, fmt.Errorf("helm: %s: %s %q does not decode strictly: %w\n%s", source, key, head.Metadata.Name, err, numbered(doc))
	}
	return Object{Source: source, APIVersion: head.APIVersion, Kind: head.Kind, Name: head.Metadata.Name, Value: v, YAML: doc}, nil
}

// numbered prefixes every line with its number, for error messages about a document.
func numbered(doc string) string {
	var b strings.Builder
	for i, l := range strings.Split(doc, "\n") {
		fmt.Fprintf(&b, "%4d  %s\n", i+1, l)
	}
	return b.String()
}

// find returns the object of kind and name, or nil.
func (r *Rendered) find(kind, name string) *Object {
	for i := range r.Objects {
		if r.Objects[i].Kind == kind && r.Objects[i].Name == name {
			return &r.Objects[i]
		}
	}
	for i := range r.Hooks {
		if r.Hooks[i].Kind == kind && r.Hooks[i].Name == name {
			return &r.Hooks[i]
		}
	}
	return nil
}

// kinds returns every object of kind (manifests, then hooks).
func (r *Rendered) kinds(kind string) []Object {
	var out []Object
	for _, o := range append(append([]Object{}, r.Objects...), r.Hooks...) {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// statefulSet, service, … return the named object as its type, or nil when it is not rendered.
func (r *Rendered) statefulSet(name string) *appsv1.StatefulSet {
	if o := r.find("StatefulSet", name); o != nil {
		return o.Value.(*appsv1.StatefulSet)
	}
	return nil
}

func (r *Rendered) service(name string) *corev1.Service {
	if o := r.find("Service", name); o != nil {
		return o.Value.(*corev1.Service)
	}
	return nil
}

func (r *Rendered) pdb(name string) *policyv1.PodDisruptionBudget {
	if o := r.find("PodDisruptionBudget", name); o != nil {
		return o.Value.(*policyv1.PodDisruptionBudget)
	}
	return nil
}

func (r *Rendered) secret(name string) *corev1.Secret {
	if o := r.find("Secret", name); o != nil {
		return o.Value.(*corev1.Secret)
	}
	return nil
}

func (r *Rendered) configMap(name string) *corev1.ConfigMap {
	if o := r.find("ConfigMap", name); o != nil {
		return o.Value.(*corev1.ConfigMap)
	}
	return nil
}

// jobs are the rendered batch Jobs (the submit Job).
func (r *Rendered) jobs() []*batchv1.Job {
	var out []*batchv1.Job
	for _, o := range r.kinds("Job") {
		out = append(out, o.Value.(*batchv1.Job))
	}
	return out
}

// testPods are the helm test hooks.
func (r *Rendered) testPods() []*corev1.Pod {
	var out []*corev1.Pod
	for _, o := range r.Hooks {
		if p, ok := o.Value.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out
}
