package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/imagegw/imagegw/internal/config"
)

// The tests here work on what a cluster gets: the kustomization rendered with the kustomize
// API (what `kubectl apply -k deploy/kubernetes` applies) and the files applied on their own
// (the migration Job, the Secret templates), each object decoded strictly into its Kubernetes
// API type. deploy_test.go checks the same files as plain YAML.

// k8sObjects is deploy/kubernetes, typed.
type k8sObjects struct {
	// Rendered from kustomization.yaml.
	deployment *appsv1.Deployment
	service    *corev1.Service
	configMap  *corev1.ConfigMap
	pdb        *policyv1.PodDisruptionBudget
	hpa        *autoscalingv2.HorizontalPodAutoscaler
	// Applied with kubectl apply -f (or created from a secret store).
	job     *batchv1.Job
	secrets map[string]*corev1.Secret
}

// renderKustomization runs kustomize on deploy/kubernetes and returns its YAML stream.
func renderKustomization(t *testing.T) []byte {
	t.Helper()
	dir, err := filepath.Abs("kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build deploy/kubernetes: %v", err)
	}
	out, err := res.AsYaml()
	if err != nil {
		t.Fatalf("kustomize build deploy/kubernetes: %v", err)
	}
	return out
}

// yamlDocuments splits a YAML stream into its documents, leaving out empty ones.
func yamlDocuments(t *testing.T, where string, b []byte) [][]byte {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		j, err := sigsyaml.YAMLToJSON(doc)
		if err != nil {
			t.Fatalf("%s: %v", where, err)
		}
		if s := strings.TrimSpace(string(j)); s != "null" && s != "" {
			docs = append(docs, doc)
		}
	}
}

// decodeObject decodes one document into the API type of its apiVersion and kind, refusing
// unknown and duplicate fields and values of the wrong type (quantities, int-or-strings…).
func decodeObject(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := sigsyaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	var obj any
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		obj = &appsv1.Deployment{}
	case "batch/v1 Job":
		obj = &batchv1.Job{}
	case "autoscaling/v2 HorizontalPodAutoscaler":
		obj = &autoscalingv2.HorizontalPodAutoscaler{}
	case "policy/v1 PodDisruptionBudget":
		obj = &policyv1.PodDisruptionBudget{}
	case "v1 Service":
		obj = &corev1.Service{}
	case "v1 ConfigMap":
		obj = &corev1.ConfigMap{}
	case "v1 Secret":
		obj = &corev1.Secret{}
	default:
		return nil, fmt.Errorf("apiVersion %q kind %q: not a kind this test knows (add it to decodeObject, and checks for it)", tm.APIVersion, tm.Kind)
	}
	if err := sigsyaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s %s: %w", tm.APIVersion, tm.Kind, err)
	}
	return obj, nil
}

func objectName(o any) string {
	if m, ok := o.(metav1.Object); ok {
		return m.GetName()
	}
	return fmt.Sprintf("%T", o)
}

// setOnce puts o, read from where, in *dst: a second object of its kind is an error.
func setOnce[T any](t *testing.T, where string, dst **T, o *T) {
	t.Helper()
	if *dst != nil {
		t.Fatalf("%s: a second %s %s", where, reflect.TypeFor[T]().Name(), objectName(o))
	}
	*dst = o
}

func loadK8sObjects(t *testing.T) *k8sObjects {
	t.Helper()
	k := &k8sObjects{secrets: map[string]*corev1.Secret{}}

	// What kubectl apply -k applies.
	for _, doc := range yamlDocuments(t, "kustomize build", renderKustomization(t)) {
		o, err := decodeObject(doc)
		if err != nil {
			t.Fatalf("kustomize build deploy/kubernetes: %v", err)
		}
		if m := o.(metav1.Object); m.GetNamespace() != "" {
			t.Errorf("rendered %T %s sets a namespace; the manifests are namespace-agnostic", o, m.GetName())
		}
		switch o := o.(type) {
		case *appsv1.Deployment:
			setOnce(t, "kustomize build", &k.deployment, o)
		case *corev1.Service:
			setOnce(t, "kustomize build", &k.service, o)
		case *corev1.ConfigMap:
			setOnce(t, "kustomize build", &k.configMap, o)
		case *policyv1.PodDisruptionBudget:
			setOnce(t, "kustomize build", &k.pdb, o)
		case *autoscalingv2.HorizontalPodAutoscaler:
			setOnce(t, "kustomize build", &k.hpa, o)
		default:
			// A Job's pod template is immutable (apply -k would fail on the next release) and
			// the Secret templates hold placeholders.
			t.Errorf("kustomize build renders %T %s, which is applied on its own", o, objectName(o))
		}
	}

	// Every file, strictly, on its own: the Job and the Secret templates come from here.
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, doc := range yamlDocuments(t, f, readFile(t, f)) {
			o, err := decodeObject(doc)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			switch o := o.(type) {
			case *batchv1.Job:
				setOnce(t, f, &k.job, o)
			case *corev1.Secret:
				if k.secrets[o.Name] != nil {
					t.Fatalf("%s: a second Secret %s", f, o.Name)
				}
				k.secrets[o.Name] = o
			}
		}
	}

	for what, missing := range map[string]bool{"Deployment": k.deployment == nil, "Service": k.service == nil,
		"ConfigMap": k.configMap == nil, "PodDisruptionBudget": k.pdb == nil, "HorizontalPodAutoscaler": k.hpa == nil} {
		if missing {
			t.Fatalf("kustomize build deploy/kubernetes renders no %s", what)
		}
	}
	if k.job == nil || len(k.secrets) == 0 {
		t.Fatal("deploy/kubernetes has no migration Job or no Secret template")
	}
	return k
}

// TestKubernetesStrictDecode checks that decodeObject refuses what the API server would:
// a misspelt field deep in a pod template, a bad quantity, and a kind it does not know.
func TestKubernetesStrictDecode(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field": `apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - name: x
          readinessProbes: {}
`,
		"bad quantity": `apiVersion: batch/v1
kind: Job
metadata: {name: x}
spec:
  template:
    spec:
      containers:
        - name: x
          resources: {requests: {memory: 1 GiB}}
`,
		"duplicate field": `apiVersion: v1
kind: Service
metadata: {name: x}
spec: {type: ClusterIP, type: NodePort}
`,
		"unknown kind": `apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: x}
`,
		"old apiVersion": `apiVersion: autoscaling/v2beta2
kind: HorizontalPodAutoscaler
metadata: {name: x}
`,
	} {
		if _, err := decodeObject([]byte(doc)); err == nil {
			t.Errorf("%s: decoded without an error", name)
		}
	}
}

// ---- helpers on the typed objects ----------------------------------------------------------

// only returns the single container of a pod spec.
func only(t *testing.T, what string, p corev1.PodSpec) corev1.Container {
	t.Helper()
	if len(p.Containers) != 1 || len(p.InitContainers) != 0 {
		t.Fatalf("%s: want exactly one container", what)
	}
	return p.Containers[0]
}

// argv is what c runs: its command (else the image's ENTRYPOINT) and its args.
func argv(c corev1.Container, entrypoint []string) []string {
	cmd := c.Command
	if len(cmd) == 0 {
		cmd = entrypoint
	}
	return append(slices.Clone(cmd), c.Args...)
}

// resolvePort finds the container port p names (by name or number).
func resolvePort(c corev1.Container, p intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

// env is the environment c runs with: the image's ENV, then envFrom, then env, with values
// from the Secret templates and the ConfigMap. Sources marked optional are left out unless
// withOptional. names gets every variable name the manifests set.
func (k *k8sObjects) env(t *testing.T, c corev1.Container, withOptional bool, names map[string]string) map[string]string {
	t.Helper()
	env := maps.Clone(loadDockerfile(t).env)
	note := func(name, where string) {
		if names != nil {
			names[name] = where
		}
	}
	for _, ef := range c.EnvFrom {
		var data map[string]string
		var optional bool
		switch {
		case ef.SecretRef != nil:
			s := k.secrets[ef.SecretRef.Name]
			if s == nil {
				t.Errorf("container %s: envFrom names the Secret %s, which no template in deploy/kubernetes defines", c.Name, ef.SecretRef.Name)
				continue
			}
			data = secretData(s)
			optional = ef.SecretRef.Optional != nil && *ef.SecretRef.Optional
		case ef.ConfigMapRef != nil:
			if ef.ConfigMapRef.Name != k.configMap.Name {
				t.Errorf("container %s: envFrom names the ConfigMap %s, which is not rendered", c.Name, ef.ConfigMapRef.Name)
				continue
			}
			data = k.configMap.Data
			optional = ef.ConfigMapRef.Optional != nil && *ef.ConfigMapRef.Optional
		default:
			t.Errorf("container %s: an envFrom with neither secretRef nor configMapRef", c.Name)
			continue
		}
		for key, v := range data {
			note(ef.Prefix+key, "container "+c.Name+" envFrom")
			if !optional || withOptional {
				env[ef.Prefix+key] = v
			}
		}
	}
	for _, e := range c.Env {
		note(e.Name, "container "+c.Name+" env")
		switch vf := e.ValueFrom; {
		case vf == nil:
			env[e.Name] = e.Value
		case vf.SecretKeyRef != nil:
			optional := vf.SecretKeyRef.Optional != nil && *vf.SecretKeyRef.Optional
			v, ok := secretData(k.secrets[vf.SecretKeyRef.Name])[vf.SecretKeyRef.Key]
			if !ok {
				t.Errorf("container %s: env %s refers to %s/%s, which the Secret templates lack", c.Name, e.Name, vf.SecretKeyRef.Name, vf.SecretKeyRef.Key)
			}
			if !optional || withOptional {
				env[e.Name] = v
			}
		case vf.ConfigMapKeyRef != nil:
			optional := vf.ConfigMapKeyRef.Optional != nil && *vf.ConfigMapKeyRef.Optional
			v, ok := k.configMap.Data[vf.ConfigMapKeyRef.Key]
			if vf.ConfigMapKeyRef.Name != k.configMap.Name || !ok {
				t.Errorf("container %s: env %s refers to %s/%s, which is not rendered", c.Name, e.Name, vf.ConfigMapKeyRef.Name, vf.ConfigMapKeyRef.Key)
			}
			if !optional || withOptional {
				env[e.Name] = v
			}
		default:
			t.Errorf("container %s: env %s: only values, secretKeyRef and configMapKeyRef are expected", c.Name, e.Name)
		}
	}
	return env
}

func secretData(s *corev1.Secret) map[string]string {
	out := map[string]string{}
	if s == nil {
		return out
	}
	for key, v := range s.Data {
		out[key] = string(v)
	}
	maps.Copy(out, s.StringData)
	return out
}

// config loads c's --config file from the ConfigMap it mounts with config.Load, in the
// environment c runs with, the way `imagegw serve` and `imagegw migrate` do.
func (k *k8sObjects) config(t *testing.T, p corev1.PodSpec, c corev1.Container, withOptional bool) *config.Config {
	t.Helper()
	args := argv(c, loadDockerfile(t).entrypoint)
	i := slices.Index(args, "--config")
	if i < 0 || i+1 >= len(args) {
		t.Fatalf("container %s: no --config in %q", c.Name, args)
	}
	dir, key := filepath.Split(args[i+1])
	var vol string
	for _, vm := range c.VolumeMounts {
		if filepath.Clean(vm.MountPath) == filepath.Clean(dir) {
			vol = vm.Name
		}
	}
	var data string
	found := false
	for _, v := range p.Volumes {
		if v.Name == vol && v.ConfigMap != nil && v.ConfigMap.Name == k.configMap.Name {
			data, found = k.configMap.Data[key]
		}
	}
	if !found {
		t.Fatalf("container %s: --config %s is not a key of the ConfigMap %s mounted there", c.Name, args[i+1], k.configMap.Name)
	}
	tmp := filepath.Join(t.TempDir(), key)
	if err := os.WriteFile(tmp, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(tmp, envFunc(k.env(t, c, withOptional, nil), nil))
	if err != nil {
		t.Fatalf("container %s (optional Secrets present: %v): the configuration does not load: %v", c.Name, withOptional, err)
	}
	return cfg
}

// ---- the checks ----------------------------------------------------------------------------

func TestKubernetesRendered(t *testing.T) {
	k := loadK8sObjects(t)
	d := k.deployment
	pod := d.Spec.Template
	c := only(t, "Deployment "+d.Name, pod.Spec)
	jobPod := k.job.Spec.Template
	jc := only(t, "Job "+k.job.Name, jobPod.Spec)
	docker := loadDockerfile(t)
	cfg := k.config(t, pod.Spec, c, true)

	t.Run("selectors", func(t *testing.T) {
		podLabels := labels.Set(pod.Labels)
		jobLabels := labels.Set(jobPod.Labels)
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(podLabels) {
			t.Errorf("the Deployment's selector %s does not match its pod labels %v (%v)", metav1.FormatLabelSelector(d.Spec.Selector), pod.Labels, err)
		}
		pdbSel, err := metav1.LabelSelectorAsSelector(k.pdb.Spec.Selector)
		if err != nil || pdbSel.Empty() || !pdbSel.Matches(podLabels) {
			t.Errorf("the PodDisruptionBudget's selector %s does not match the gateway pods %v (%v)", metav1.FormatLabelSelector(k.pdb.Spec.Selector), pod.Labels, err)
		}
		svcSel := labels.SelectorFromSet(k.service.Spec.Selector)
		if len(k.service.Spec.Selector) == 0 || !svcSel.Matches(podLabels) {
			t.Errorf("the Service's selector %v does not match the gateway pods %v", k.service.Spec.Selector, pod.Labels)
		}
		for what, s := range map[string]labels.Selector{"Deployment": sel, "PodDisruptionBudget": pdbSel, "Service": svcSel} {
			if s != nil && !s.Empty() && s.Matches(jobLabels) {
				t.Errorf("the %s's selector also matches the migration Job's pods %v", what, jobPod.Labels)
			}
		}
	})

	t.Run("ports and probes", func(t *testing.T) {
		_, listen, err := splitPort(cfg.Addr)
		if err != nil {
			t.Fatalf("the gateway's address %q: %v", cfg.Addr, err)
		}
		httpPort, ok := resolvePort(c, intstr.FromString("http"))
		if !ok || httpPort != listen {
			t.Errorf("the container port http is %d, but the gateway listens on %s", httpPort, cfg.Addr)
		}
		if len(k.service.Spec.Ports) == 0 {
			t.Fatal("the Service has no ports")
		}
		for _, sp := range k.service.Spec.Ports {
			if p, ok := resolvePort(c, sp.TargetPort); !ok || p != listen {
				t.Errorf("Service port %d targets %s, which is not the gateway's port %d", sp.Port, sp.TargetPort.String(), listen)
			}
		}
		server := string(readFile(t, "../internal/server/server.go"))
		for what, pr := range map[string]struct {
			probe *corev1.Probe
			path  string
		}{"readinessProbe": {c.ReadinessProbe, "/readyz"}, "livenessProbe": {c.LivenessProbe, "/healthz"}, "startupProbe": {c.StartupProbe, "/healthz"}} {
			if pr.probe == nil || pr.probe.HTTPGet == nil {
				t.Errorf("%s: want an httpGet probe of %s", what, pr.path)
				continue
			}
			g := pr.probe.HTTPGet
			if g.Path != pr.path || g.Scheme != "" && g.Scheme != corev1.URISchemeHTTP {
				t.Errorf("%s GETs %s %s, want %s", what, g.Scheme, g.Path, pr.path)
			}
			if p, ok := resolvePort(c, g.Port); !ok || p != listen {
				t.Errorf("%s: port %s is not the gateway's port %d", what, g.Port.String(), listen)
			}
			if !strings.Contains(server, `r.Get("`+pr.path+`"`) {
				t.Errorf("%s: internal/server serves no %s", what, pr.path)
			}
		}
		a := pod.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/port"] != strconv.Itoa(int(listen)) || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("scrape annotations %v: want scrape=true, port=%d, path=/metrics", a, listen)
		}
	})

	t.Run("security", func(t *testing.T) {
		// The image runs as a numeric non-root USER; the pods run as that user (or as the
		// image's), never as root, and write only to volumes.
		uid, err := strconv.ParseInt(strings.Split(docker.user, ":")[0], 10, 64)
		if err != nil || uid == 0 {
			t.Fatalf("Dockerfile USER %q: want a numeric non-root user", docker.user)
		}
		for what, p := range map[string]corev1.PodSpec{"Deployment": pod.Spec, "Job": jobPod.Spec} {
			if p.AutomountServiceAccountToken == nil || *p.AutomountServiceAccountToken {
				t.Errorf("%s: the gateway does not talk to the API server: set automountServiceAccountToken: false", what)
			}
			for _, pc := range p.Containers {
				psc := p.SecurityContext
				if psc == nil {
					psc = &corev1.PodSecurityContext{}
				}
				sc := pc.SecurityContext
				if sc == nil {
					t.Errorf("%s container %s: no securityContext", what, pc.Name)
					continue
				}
				nonRoot, user := psc.RunAsNonRoot, psc.RunAsUser
				if sc.RunAsNonRoot != nil {
					nonRoot = sc.RunAsNonRoot
				}
				if sc.RunAsUser != nil {
					user = sc.RunAsUser
				}
				if nonRoot == nil || !*nonRoot {
					t.Errorf("%s container %s: want runAsNonRoot", what, pc.Name)
				}
				if user != nil && *user != uid {
					t.Errorf("%s container %s: runAsUser %d, but the image's USER is %d", what, pc.Name, *user, uid)
				}
				if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
					t.Errorf("%s container %s: want readOnlyRootFilesystem (the image writes only to /data and /tmp)", what, pc.Name)
				}
				if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s container %s: want allowPrivilegeEscalation: false", what, pc.Name)
				}
				if sc.Privileged != nil && *sc.Privileged || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") || len(sc.Capabilities.Add) > 0 {
					t.Errorf("%s container %s: want capabilities drop ALL, none added, not privileged", what, pc.Name)
				}
			}
		}
		// Read-only root: every directory the gateway writes is on a writable volume.
		writable := map[string]bool{}
		for _, v := range pod.Spec.Volumes {
			writable[v.Name] = v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.Ephemeral != nil
		}
		dirs := map[string]string{"data_dir": cfg.DataDir, "billing.outbox_dir": cfg.Billing.OutboxDir, "temporary files": os.TempDir()}
		if !strings.HasPrefix(cfg.ImagesURL.Value(), "s3://") {
			dirs["images.dir"] = cfg.Images.Dir
		}
		for what, dir := range dirs {
			ok := false
			for _, vm := range c.VolumeMounts {
				rel, err := filepath.Rel(vm.MountPath, dir)
				ok = ok || err == nil && !strings.HasPrefix(rel, "..") && !vm.ReadOnly && writable[vm.Name]
			}
			if !filepath.IsAbs(dir) || !ok {
				t.Errorf("%s %q is not on a writable volume", what, dir)
			}
		}
	})

	t.Run("environment", func(t *testing.T) {
		// Every variable the manifests set is one the gateway (or the Go runtime) reads: the
		// names TestEnvNames checks the other deploy files against.
		known := configEnvNames(t)
		names := map[string]string{}
		k.env(t, c, true, names)
		k.env(t, jc, true, names)
		for name, s := range k.secrets {
			for key := range secretData(s) {
				names[key] = "the Secret template " + name
			}
		}
		for name, where := range names {
			if !known[name] && !goRuntimeEnv[name] {
				t.Errorf("%s sets %s, which imagegw does not read", where, name)
			}
		}

		// The database URL is required: a pod without it would open a SQLite file of its own.
		required := false
		for _, e := range c.Env {
			if ref := e.ValueFrom; e.Name == "IMAGEGW_DATABASE_URL" && ref != nil && ref.SecretKeyRef != nil {
				required = ref.SecretKeyRef.Optional == nil || !*ref.SecretKeyRef.Optional
			}
		}
		if !required {
			t.Error("IMAGEGW_DATABASE_URL must come from a required secretKeyRef")
		}
		if u := cfg.DatabaseURL.Value(); !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
			t.Errorf("database_url %q: replicas need a shared Postgres", u)
		}
	})

	t.Run("image store", func(t *testing.T) {
		// Replicas share an S3 bucket for hosted images, so a URL one makes any serves.
		if u := cfg.ImagesURL.Value(); !strings.HasPrefix(u, "s3://") {
			t.Errorf("images_url %q: replicas need a shared s3:// store", u)
		}
		s3 := cfg.Images.S3
		if s3.AccessKeyID == "" || s3.SecretAccessKey == "" {
			t.Error("with the Secret templates applied, the gateway gets no AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
		}
		// The credentials come from a Secret of their own, loaded optionally, so the pods
		// also start against an object store without authentication (anonymous requests).
		var store *corev1.Secret
		for _, ef := range c.EnvFrom {
			if ef.SecretRef == nil {
				continue
			}
			s := k.secrets[ef.SecretRef.Name]
			if _, ok := secretData(s)["AWS_ACCESS_KEY_ID"]; ok {
				store = s
				if ef.SecretRef.Optional == nil || !*ef.SecretRef.Optional {
					t.Errorf("envFrom Secret %s: want optional: true, so an object store without authentication needs no Secret", s.Name)
				}
			}
		}
		if store == nil {
			t.Fatal("no envFrom Secret of the Deployment carries AWS_ACCESS_KEY_ID")
		}
		// Only the object store's credentials: the bucket's owner may hand this Secret out.
		data := secretData(store)
		_, secret := data["AWS_SECRET_ACCESS_KEY"]
		for key := range data {
			if !secret || !slices.Contains([]string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}, key) {
				t.Errorf("the object-store Secret %s holds %v: want AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN) only",
					store.Name, slices.Sorted(maps.Keys(data)))
				break
			}
		}
		anon := k.config(t, pod.Spec, c, false)
		if anon.Images.S3.AccessKeyID != "" || anon.ImagesURL.Value() != cfg.ImagesURL.Value() {
			t.Error("without the optional Secret the gateway should run with anonymous S3 requests")
		}
		// The migration never touches the bucket: the Job does not get its credentials.
		for _, ef := range jc.EnvFrom {
			if ef.SecretRef != nil && ef.SecretRef.Name == store.Name {
				t.Errorf("the migration Job loads the object-store Secret %s, which it does not need", store.Name)
			}
		}
	})

	t.Run("resources", func(t *testing.T) {
		for what, rc := range map[string]corev1.ResourceRequirements{"Deployment": c.Resources, "Job": jc.Resources} {
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if q, ok := rc.Requests[name]; !ok || q.Sign() <= 0 {
					t.Errorf("%s: no %s request", what, name)
				}
			}
			lim, ok := rc.Limits[corev1.ResourceMemory]
			if !ok || lim.Sign() <= 0 {
				t.Errorf("%s: no memory limit", what)
			}
			for name, l := range rc.Limits {
				if r, ok := rc.Requests[name]; ok && r.Cmp(l) > 0 {
					t.Errorf("%s: %s request %s above its limit %s", what, name, r.String(), l.String())
				}
			}
		}
		// GOMEMLIMIT below the memory limit, so the GC works harder before the OOM killer acts.
		env := k.env(t, c, true, nil)
		if v := env["GOMEMLIMIT"]; v != "" {
			n, err := parseGoMemLimit(v)
			lim := c.Resources.Limits[corev1.ResourceMemory]
			if err != nil || n >= lim.Value() {
				t.Errorf("GOMEMLIMIT=%s must be below the memory limit %s (%v)", v, lim.String(), err)
			}
		}
	})

	t.Run("autoscaling and disruption", func(t *testing.T) {
		h := k.hpa.Spec
		if h.ScaleTargetRef.APIVersion != "apps/v1" || h.ScaleTargetRef.Kind != "Deployment" || h.ScaleTargetRef.Name != d.Name {
			t.Errorf("the HPA targets %+v, want apps/v1 Deployment %s", h.ScaleTargetRef, d.Name)
		}
		if h.MinReplicas == nil || *h.MinReplicas < 2 || h.MaxReplicas < *h.MinReplicas {
			t.Errorf("HPA minReplicas %v, maxReplicas %d: want 2 <= min <= max", h.MinReplicas, h.MaxReplicas)
		}
		for _, m := range h.Metrics {
			if m.Type == autoscalingv2.ResourceMetricSourceType && m.Resource != nil && m.Resource.Target.Type == autoscalingv2.UtilizationMetricType {
				if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
					t.Errorf("the HPA scales on %s utilization, which the container does not request", m.Resource.Name)
				}
			}
		}
		if len(h.Metrics) == 0 {
			t.Error("the HPA has no metrics")
		}
		if d.Spec.Replicas == nil || h.MinReplicas != nil && *d.Spec.Replicas < *h.MinReplicas {
			t.Errorf("Deployment replicas %v below the HPA's minReplicas", d.Spec.Replicas)
		}
		// The PDB must leave room to evict: minAvailable below the smallest replica count.
		p := k.pdb.Spec
		switch {
		case p.MinAvailable != nil && p.MaxUnavailable != nil, p.MinAvailable == nil && p.MaxUnavailable == nil:
			t.Error("the PodDisruptionBudget needs exactly one of minAvailable and maxUnavailable")
		case p.MinAvailable != nil && p.MinAvailable.Type == intstr.Int && h.MinReplicas != nil && p.MinAvailable.IntVal >= *h.MinReplicas:
			t.Errorf("PDB minAvailable %d with minReplicas %d: no pod could ever be evicted (node drains block)", p.MinAvailable.IntVal, *h.MinReplicas)
		}
		if s := d.Spec.Strategy; s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil ||
			s.RollingUpdate.MaxUnavailable == nil || s.RollingUpdate.MaxUnavailable.String() != "0" {
			t.Errorf("strategy %+v: want a RollingUpdate with maxUnavailable 0", s)
		}
	})

	t.Run("migration Job", func(t *testing.T) {
		if jc.Image != c.Image || c.Image == "" {
			t.Errorf("the Job runs image %q, the Deployment %q (set both: kustomize edit set image and migrate-job.yaml)", jc.Image, c.Image)
		}
		args := argv(jc, docker.entrypoint)
		if len(args) < 2 || args[0] != docker.entrypoint[0] || args[1] != "migrate" {
			t.Errorf("the Job runs %q, want %s migrate", args, docker.entrypoint[0])
		}
		if r := jobPod.Spec.RestartPolicy; r != corev1.RestartPolicyNever && r != corev1.RestartPolicyOnFailure {
			t.Errorf("the Job's restartPolicy %q", r)
		}
		jcfg := k.config(t, jobPod.Spec, jc, true)
		if jcfg.DatabaseURL != cfg.DatabaseURL {
			t.Error("the migration Job and the Deployment use different databases")
		}
		if gw := argv(c, docker.entrypoint); len(gw) < 2 || gw[0] != docker.entrypoint[0] || gw[1] != "serve" || !slices.Contains(gw, "--no-bootstrap") {
			t.Errorf("the Deployment runs %q, want %s serve … --no-bootstrap", gw, docker.entrypoint[0])
		}
		if cfg.MigrateOnStart {
			t.Error("migrate_on_start is true: the serving pods would migrate too, racing the Job")
		}
	})
}

// splitPort returns the port of a host:port address.
func splitPort(addr string) (string, int32, error) {
	i := strings.LastIndex(addr, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("no port")
	}
	p, err := strconv.ParseUint(addr[i+1:], 10, 16)
	return addr[:i], int32(p), err
}

// parseGoMemLimit parses a GOMEMLIMIT value (bytes with an optional B, KiB, MiB, GiB or TiB).
func parseGoMemLimit(v string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"B", 1}} {
		if s, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = s, u.m
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n * mult, err
}
