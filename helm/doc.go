// Package helm holds the tests of the Helm chart in helm/vlp, the way vlp is installed on a
// Kubernetes cluster; the chart itself is the package's data.
//
// # Basics
//
// The tests render the chart with the Helm Go library (helm.sh/helm/v4: the loader, the values
// schema, the template engine, the manifest sorter) for the default values and several value
// sets, lint it with Helm's linter, and decode every rendered document strictly into its
// k8s.io/api type, so that a misspelt or misplaced field fails the test as the API server would
// refuse it. The custom resources the chart can render (cert-manager's Certificate and Issuer,
// the Prometheus Operator's ServiceMonitor, the scheduler-plugins' PodGroup) have no k8s.io/api
// type: they are decoded, as strictly, into types that mirror the fields of those APIs the chart
// uses (crd_types_test.go). Then invariant tests check what the chart promises: the Raft peers
// and NATS routes are the replica count's stable names, the disruption budget keeps a quorum,
// every probe means what docs/operations.md says, workers get their GPU and /dev/shm, and no
// secret is ever in a value, a ConfigMap or an argument.
//
// # Running what the chart renders
//
// TestChartRunsAsRendered takes the rendered pod templates and starts each container's command,
// arguments and environment as a real process, one network namespace per pod (the integration
// package's harness), as a kubelet would: $(VAR) references expanded, fieldRef and
// secretKeyRef resolved, every volume a directory (emptyDir per pod, a claim per name that
// outlives its pods, Secrets and ConfigMaps as files), paths rewritten onto them, the pod's
// user and fsGroup applied, and each pod's hosts file giving it the chart's DNS names
// (<pod>.<headless service>.<namespace>.svc.cluster.local). Probes are run as rendered. The
// group forms, the submit Job submits, workers join and train; a coordinator pod is killed and
// recreated; an upgrade (a new image tag and a third worker) rolls every pod; an uninstall and
// an install on the same claims resume the job from its checkpoint; no pair is trained twice
// over all of it (the workers' commit logs, counted as the integration tests count them).
// TestChartRunsSingleCoordinator runs the other shape: one coordinator, no TLS, a NATS ring.
//
// # Caveats
//
// The run needs root and `ip netns` and skips, saying why, without them; it runs the vlp binary
// ($VLP_BIN, or one built for the test) where the chart names the images' /usr/local/bin/vlp,
// with the linear model (no LibTorch). There is no API server: lookup returns nothing (a
// generated Secret is new at every render, so the run uses an existing one), a ClusterIP
// service has no virtual IP (the chart's pods use the headless names only), and StatefulSet
// rollouts, Job retries and restarts are done by the test in the order the controllers use.
package helm
