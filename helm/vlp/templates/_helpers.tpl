{{/*
Names. The release's resources are <fullname>-<component>; fullname is the release name when
it contains the chart's name, else <release>-vlp, cut to 40 characters so that the longest
derived name (<fullname>-coordinator-headless) stays within 63.
*/}}
{{- define "vlp.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vlp.coordinator" -}}{{ include "vlp.fullname" . }}-coordinator{{- end -}}
{{- define "vlp.coordinatorHeadless" -}}{{ include "vlp.fullname" . }}-coordinator-headless{{- end -}}
{{- define "vlp.worker" -}}{{ include "vlp.fullname" . }}-worker{{- end -}}
{{- define "vlp.workerHeadless" -}}{{ include "vlp.fullname" . }}-worker-headless{{- end -}}
{{- define "vlp.jobConfig" -}}{{ include "vlp.fullname" . }}-job{{- end -}}

{{- define "vlp.serviceAccount" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vlp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Labels every resource carries; selectorLabels picks one component's pods. */}}
{{- define "vlp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "vlp.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "vlp.controlImage" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "vlp.workerImage" -}}
{{- printf "%s:%s" .Values.workerImage.repository (default .Chart.AppVersion .Values.workerImage.tag) -}}
{{- end -}}

{{/*
The coordinators' stable DNS names, from the replica count: <sts>-<i>.<headless>.<ns>.svc.<domain>.
The headless service publishes not-ready addresses, so the names resolve as soon as the pods
have IPs, before any of them is ready.
*/}}
{{- define "vlp.coordinatorHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "vlp.coordinator" .root) .index (include "vlp.coordinatorHeadless" .root) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* --peers: id=host:raft-port of every voter; the ids are the pod names (--node-id). */}}
{{- define "vlp.peers" -}}
{{- $root := . -}}
{{- $out := list -}}
{{- range $i := until (int .Values.coordinators.replicas) -}}
{{- $out = append $out (printf "%s-%d=%s:%d" (include "vlp.coordinator" $root) $i (include "vlp.coordinatorHost" (dict "root" $root "index" $i)) (int $root.Values.coordinators.ports.raft)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* --nats-routes: every embedded server's route URL (a server skips its own). */}}
{{- define "vlp.routes" -}}
{{- $root := . -}}
{{- $out := list -}}
{{- range $i := until (int .Values.coordinators.replicas) -}}
{{- $out = append $out (printf "nats-route://%s:%d" (include "vlp.coordinatorHost" (dict "root" $root "index" $i)) (int $root.Values.coordinators.ports.cluster)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}

{{/* The NATS URLs clients use: the external cluster, or every coordinator by its stable name. */}}
{{- define "vlp.natsURLs" -}}
{{- if .Values.nats.externalURL -}}
{{- .Values.nats.externalURL -}}
{{- else -}}
{{- $root := . -}}
{{- $scheme := ternary "tls" "nats" .Values.tls.enabled -}}
{{- $out := list -}}
{{- range $i := until (int .Values.coordinators.replicas) -}}
{{- $out = append $out (printf "%s://%s:%d" $scheme (include "vlp.coordinatorHost" (dict "root" $root "index" $i)) (int $root.Values.coordinators.ports.nats)) -}}
{{- end -}}
{{- join "," $out -}}
{{- end -}}
{{- end -}}

{{- define "vlp.authSecret" -}}
{{- default (printf "%s-auth" (include "vlp.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}

{{- define "vlp.tlsServerSecret" -}}
{{- default (printf "%s-tls-server" (include "vlp.fullname" .)) .Values.tls.existingSecrets.server -}}
{{- end -}}

{{- define "vlp.tlsClientSecret" -}}
{{- default (printf "%s-tls-client" (include "vlp.fullname" .)) .Values.tls.existingSecrets.client -}}
{{- end -}}

{{- define "vlp.sharedClaim" -}}
{{- default (printf "%s-shared" (include "vlp.fullname" .)) .Values.storage.existingClaim -}}
{{- end -}}

{{/*
The environment every vlp command in a pod reads (urfave/cli: VLP_<FLAG>), so that `kubectl
exec <pod> -- vlp job status` works as the pod's role allows. role: operator or worker.
Secrets come from the auth Secret, never from values.
*/}}
{{- define "vlp.clientEnv" -}}
- name: VLP_JOB
  value: {{ .root.Values.job.name | quote }}
- name: VLP_JOB_TOKEN
  valueFrom:
    secretKeyRef: {name: {{ include "vlp.authSecret" .root }}, key: job-token}
- name: VLP_NATS_URL
  value: {{ include "vlp.natsURLs" .root | quote }}
{{- if eq .role "worker" }}
- name: VLP_NATS_USER
  value: {{ .root.Values.auth.workerUser | quote }}
- name: VLP_NATS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "vlp.authSecret" .root }}, key: worker-password}
{{- else }}
- name: VLP_NATS_USER
  value: {{ .root.Values.auth.operatorUser | quote }}
- name: VLP_NATS_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "vlp.authSecret" .root }}, key: operator-password}
{{- end }}
{{- if .root.Values.tls.enabled }}
- name: VLP_NATS_CA
  value: /etc/vlp/tls/ca.crt
- name: VLP_NATS_CERT
  value: /etc/vlp/tls/tls.crt
- name: VLP_NATS_KEY
  value: /etc/vlp/tls/tls.key
{{- end }}
{{- end -}}

{{/* The pod-level settings every pod of the chart shares. */}}
{{- define "vlp.podCommon" -}}
serviceAccountName: {{ include "vlp.serviceAccount" . }}
automountServiceAccountToken: false
# Service links would put <SERVICE>_PORT variables into the environment, and vlp reads VLP_*.
enableServiceLinks: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The submit Job's name: one per spec and image, so that a Job (whose pod template cannot
change) is created anew exactly when there is something new to submit. */}}
{{- define "vlp.submitJob" -}}
{{- $sum := printf "%s\n%s\n%v" (include "vlp.jobYAML" .) (include "vlp.controlImage" .) .Values.job.skipDataCheck | sha256sum | trunc 10 -}}
{{- printf "%s-submit-%s" (include "vlp.fullname" .) $sum -}}
{{- end -}}

{{/*
The demo spec: E2E-VLP's tiny preset on the synthetic shapes world (2048 images, 5 texts each),
which the workers render themselves. Kept out of values.yaml because Helm merges maps: a spec
given in values would inherit its keys (a linear job would get the preset's options).
*/}}
{{- define "vlp.demoSpec" -}}
model: tiny
global_batch: 64
min_workers: 1
max_workers: 64
checkpoint_every: 200
checkpoint_retain: 3
progress_every: 10
seed: 1
epochs: 10
units: {pairs: 10240, per_unit: 64}
options: {images: "2048", image_size: "64"}
{{- end -}}

{{/* The job spec: values' job.spec, or the demo spec when it is empty. */}}
{{- define "vlp.jobSpec" -}}
{{- if .Values.job.spec -}}
{{- toYaml .Values.job.spec -}}
{{- else -}}
{{- include "vlp.demoSpec" . -}}
{{- end -}}
{{- end -}}

{{/* job.yaml: the spec, named after the job. */}}
{{- define "vlp.jobYAML" -}}
name: {{ .Values.job.name }}
{{ include "vlp.jobSpec" . }}
{{- end -}}

{{/* Checks across values that the schema cannot express; each fails the render saying why. */}}
{{- define "vlp.validate" -}}
{{- $spec := include "vlp.jobSpec" . | fromYaml -}}
{{- range $key := list "model" "global_batch" "units" -}}
{{- if not (hasKey $spec $key) -}}
{{- fail (printf "job.spec.%s: required (job.yaml as vlp job submit reads it; vlp job init writes one)" $key) -}}
{{- end -}}
{{- end -}}
{{- $max := int (get $spec "max_workers" | default 1024) -}}
{{- $min := int (get $spec "min_workers" | default 1) -}}
{{- if gt (int .Values.workers.replicas) $max -}}
{{- fail (printf "workers.replicas %d: more than the job's max_workers %d (the coordinator would refuse the rest with job_full)" (int .Values.workers.replicas) $max) -}}
{{- end -}}
{{- if and (gt (int .Values.workers.replicas) 0) (lt (int .Values.workers.replicas) $min) -}}
{{- fail (printf "workers.replicas %d: fewer than the job's min_workers %d (the ring would never train)" (int .Values.workers.replicas) $min) -}}
{{- end -}}
{{- if and .Values.tls.enabled (not .Values.tls.certManager.enabled) (or (not .Values.tls.existingSecrets.server) (not .Values.tls.existingSecrets.client)) (not .Values.nats.externalURL) -}}
{{- fail "tls.enabled without cert-manager: set tls.existingSecrets.server and tls.existingSecrets.client (kubernetes.io/tls Secrets with ca.crt)" -}}
{{- end -}}
{{- if and .Values.tls.enabled .Values.nats.externalURL (not .Values.tls.certManager.enabled) (not .Values.tls.existingSecrets.client) -}}
{{- fail "tls.enabled with nats.externalURL: set tls.existingSecrets.client (the CA and client certificate the external cluster accepts)" -}}
{{- end -}}
{{- end -}}
