package deploy_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/httpx"
	_ "github.com/imagegw/imagegw/providers/all" // provider types: config validation and <TYPE>_API_KEY
)

// ---- loading -------------------------------------------------------------------------------

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeYAML decodes every document of path into a new T; strict rejects unknown fields.
func decodeYAML[T any](t *testing.T, path string, strict bool) []T {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
	dec.KnownFields(strict)
	var out []T
	for {
		var v T
		err := dec.Decode(&v)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, v)
	}
}

// envFunc is a getenv over m, recording the names asked for in asked (when not nil).
func envFunc(m map[string]string, asked map[string]bool) func(string) string {
	return func(k string) string {
		if asked != nil {
			asked[k] = true
		}
		return m[k]
	}
}

// configEnvNames are the environment variables the gateway reads: those config.Load asks for
// (IMAGEGW_* and every registered provider's <TYPE>_API_KEY and <TYPE>_BASE_URL) and
// IMAGEGW_CONFIG, which cmd/imagegw reads itself as the --config default.
func configEnvNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	if _, err := config.Load("", envFunc(nil, names)); err != nil {
		t.Fatal(err)
	}
	if !names["IMAGEGW_ADDR"] || !names["SILICONFLOW_API_KEY"] {
		t.Fatalf("config.Load asked only for %v", names)
	}
	if bytes.Contains(readFile(t, "../cmd/imagegw/main.go"), []byte(`os.Getenv("IMAGEGW_CONFIG")`)) {
		names["IMAGEGW_CONFIG"] = true
	}
	return names
}

// usageFlushTimeout bounds the usage ledger's final flush after the server has drained
// (internal/app closes the recorder with a 30s deadline); shutdown takes up to
// shutdown_timeout plus this.
const usageFlushTimeout = 30 * time.Second

// goRuntimeEnv are variables the Go runtime reads; the manifests may set them.
var goRuntimeEnv = set("GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG")

// ---- Dockerfile ----------------------------------------------------------------------------

type dockerfile struct {
	from       []string          // FROM lines, in order
	env        map[string]string // ENV of the final stage
	expose     []string
	entrypoint []string
	user       string
	runs       []string // RUN commands (continuations joined)
	healthchk  string
}

func loadDockerfile(t *testing.T) dockerfile {
	t.Helper()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, "Dockerfile")))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") || l == "" && cur.Len() == 0 {
			continue
		}
		if c, ok := strings.CutSuffix(l, "\\"); ok {
			cur.WriteString(c + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	d := dockerfile{env: map[string]string{}}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			d.from = append(d.from, rest)
			d.env = map[string]string{}
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %q: use KEY=VALUE", rest)
				}
				d.env[k] = v
			}
		case "EXPOSE":
			d.expose = strings.Fields(rest)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &d.entrypoint); err != nil {
				t.Fatalf("Dockerfile: ENTRYPOINT must be exec form: %v", err)
			}
		case "USER":
			d.user = rest
		case "RUN":
			d.runs = append(d.runs, rest)
		case "HEALTHCHECK":
			d.healthchk = rest
		}
	}
	return d
}

func TestDockerfile(t *testing.T) {
	d := loadDockerfile(t)
	if len(d.from) < 2 || !strings.HasPrefix(d.from[0], "--platform=$BUILDPLATFORM golang:") {
		t.Errorf("FROM = %v: want a golang build stage and a final stage", d.from)
	}
	if final := d.from[len(d.from)-1]; !strings.Contains(final, "distroless/static") && final != "scratch" {
		t.Errorf("final stage %q is not distroless static or scratch", final)
	}
	if d.user == "" || strings.HasPrefix(d.user, "0") || strings.HasPrefix(d.user, "root") {
		t.Errorf("USER %q: must not be root", d.user)
	}
	if want := []string{"/imagegw", "serve"}; !slices.Equal(d.entrypoint, want) {
		t.Errorf("ENTRYPOINT = %q, want %q", d.entrypoint, want)
	}
	_, port, err := net.SplitHostPort(d.env["IMAGEGW_ADDR"])
	if err != nil || !slices.Contains(d.expose, port) {
		t.Errorf("IMAGEGW_ADDR=%q and EXPOSE %v disagree", d.env["IMAGEGW_ADDR"], d.expose)
	}
	if d.healthchk == "" || !strings.Contains(d.healthchk, `"/healthcheck"`) {
		t.Errorf("HEALTHCHECK %q: want the exec-form /healthcheck probe", d.healthchk)
	}

	var build string
	for _, r := range d.runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w -X main.version=${VERSION}"} {
		if !strings.Contains(build, want) {
			t.Errorf("the go build step lacks %q: %s", want, build)
		}
	}
	// The flags are the Makefile's, and main.version exists to be stamped.
	if !strings.Contains(string(readFile(t, "../Makefile")), "-s -w -X main.version=") {
		t.Error("the Makefile's LDFLAGS changed: update the Dockerfile's go build step to match")
	}
	if !regexp.MustCompile(`(?m)^var version = `).Match(readFile(t, "../cmd/imagegw/main.go")) {
		t.Error("cmd/imagegw has no `var version` for -X main.version")
	}
	for _, pkg := range []string{"./cmd/imagegw", "./cmd/imagegw-sim", "./deploy/healthcheck"} {
		if !strings.Contains(build, " "+pkg+" ") && !strings.HasSuffix(build, " "+pkg) {
			t.Errorf("the go build step does not build %s", pkg)
		}
		if !bytes.Contains(readFile(t, filepath.Join("..", pkg, "main.go")), []byte("package main")) {
			t.Errorf("%s is not a command", pkg)
		}
	}
}

// ---- Kubernetes ----------------------------------------------------------------------------

type objectMeta struct {
	Name        string            `yaml:"name"`
	Namespace   string            `yaml:"namespace"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

type k8sObject struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   objectMeta        `yaml:"metadata"`
	Data       map[string]string `yaml:"data"`
	StringData map[string]string `yaml:"stringData"`
	Type       string            `yaml:"type"`
	Spec       yaml.Node         `yaml:"spec"`
	file       string
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Name    string   `yaml:"name"`
	Image   string   `yaml:"image"`
	Command []string `yaml:"command"`
	Args    []string `yaml:"args"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name     string `yaml:"name"`
				Key      string `yaml:"key"`
				Optional *bool  `yaml:"optional"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	EnvFrom []struct {
		SecretRef *struct {
			Name string `yaml:"name"`
		} `yaml:"secretRef"`
	} `yaml:"envFrom"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	LivenessProbe  *probe `yaml:"livenessProbe"`
	Lifecycle      struct {
		PreStop *struct {
			Sleep *struct {
				Seconds int `yaml:"seconds"`
			} `yaml:"sleep"`
		} `yaml:"preStop"`
	} `yaml:"lifecycle"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type podTemplate struct {
	Metadata objectMeta `yaml:"metadata"`
	Spec     struct {
		TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`
		SecurityContext               struct {
			RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		} `yaml:"securityContext"`
		Containers []container `yaml:"containers"`
		Volumes    []struct {
			Name      string `yaml:"name"`
			ConfigMap *struct {
				Name string `yaml:"name"`
			} `yaml:"configMap"`
			EmptyDir              *struct{} `yaml:"emptyDir"`
			PersistentVolumeClaim *struct{} `yaml:"persistentVolumeClaim"`
		} `yaml:"volumes"`
	} `yaml:"spec"`
}

type workloadSpec struct {
	Replicas *int `yaml:"replicas"`
	Selector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	} `yaml:"selector"`
	Template podTemplate `yaml:"template"`
}

type manifests struct {
	all        []k8sObject
	configMap  k8sObject
	secrets    map[string]k8sObject // the Secret templates, by name
	deployment workloadSpec
	job        workloadSpec
	service    struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
	}
	pdb struct {
		MinAvailable any `yaml:"minAvailable"`
		Selector     struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	}
	hpa struct {
		ScaleTargetRef struct {
			APIVersion string `yaml:"apiVersion"`
			Kind       string `yaml:"kind"`
			Name       string `yaml:"name"`
		} `yaml:"scaleTargetRef"`
		MinReplicas int `yaml:"minReplicas"`
		MaxReplicas int `yaml:"maxReplicas"`
	}
	deploymentName string
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	m := &manifests{secrets: map[string]k8sObject{}}
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	kinds := map[string]int{}
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		for _, o := range decodeYAML[k8sObject](t, f, true) {
			o.file = f
			if o.Metadata.Namespace != "" {
				t.Errorf("%s: %s %s sets a namespace; the manifests are namespace-agnostic", f, o.Kind, o.Metadata.Name)
			}
			m.all = append(m.all, o)
			kinds[o.Kind]++
			var dst any
			switch o.Kind {
			case "ConfigMap":
				m.configMap = o
			case "Secret":
				m.secrets[o.Metadata.Name] = o
			case "Deployment":
				dst = &m.deployment
				m.deploymentName = o.Metadata.Name
			case "Job":
				dst = &m.job
			case "Service":
				dst = &m.service
			case "PodDisruptionBudget":
				dst = &m.pdb
			case "HorizontalPodAutoscaler":
				dst = &m.hpa
			default:
				t.Errorf("%s: unexpected kind %s", f, o.Kind)
			}
			if dst != nil {
				if err := o.Spec.Decode(dst); err != nil {
					t.Fatalf("%s: %s spec: %v", f, o.Kind, err)
				}
			}
		}
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Job", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"} {
		if kinds[k] != 1 {
			t.Fatalf("want exactly one %s in deploy/kubernetes, found %d", k, kinds[k])
		}
	}
	if len(m.secrets) != kinds["Secret"] || len(m.secrets) == 0 {
		t.Fatalf("want Secret templates with distinct names in deploy/kubernetes, found %d in %d names", kinds["Secret"], len(m.secrets))
	}
	return m
}

// gateway is the Deployment's gateway container.
func (m *manifests) gateway(t *testing.T) container {
	t.Helper()
	if cs := m.deployment.Template.Spec.Containers; len(cs) == 1 {
		return cs[0]
	}
	t.Fatal("the Deployment must have exactly one container")
	return container{}
}

// env is the environment c runs with: the image's ENV, then envFrom (the Secret templates'
// values, optional ones included), then env.
func (m *manifests) env(t *testing.T, c container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range loadDockerfile(t).env {
		env[k] = v
	}
	for _, ef := range c.EnvFrom {
		if ef.SecretRef == nil || m.secrets[ef.SecretRef.Name].Kind == "" {
			t.Errorf("container %s: envFrom must name a Secret template", c.Name)
			continue
		}
		for k, v := range m.secrets[ef.SecretRef.Name].StringData {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			v, ok := m.secrets[ref.Name].StringData[ref.Key]
			if !ok {
				t.Errorf("container %s: env %s refers to %s/%s, which the Secret template lacks", c.Name, e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = v
		case e.ValueFrom != nil:
			t.Errorf("container %s: env %s: only secretKeyRef is expected", c.Name, e.Name)
		default:
			env[e.Name] = e.Value
		}
	}
	return env
}

// configPath returns where c's --config points and checks it is the mounted ConfigMap's key.
func (m *manifests) configPath(t *testing.T, c container, vols map[string]string) string {
	t.Helper()
	argv := append(slices.Clone(c.Command), c.Args...)
	i := slices.Index(argv, "--config")
	if i < 0 || i+1 >= len(argv) {
		t.Fatalf("container %s: no --config in %q", c.Name, argv)
	}
	path := argv[i+1]
	dir, key := filepath.Split(path)
	for _, vm := range c.VolumeMounts {
		if filepath.Clean(vm.MountPath) == filepath.Clean(dir) {
			if vols[vm.Name] != "configMap:"+m.configMap.Metadata.Name {
				t.Errorf("container %s: %s is not the ConfigMap %s", c.Name, vm.MountPath, m.configMap.Metadata.Name)
			}
			if _, ok := m.configMap.Data[key]; !ok {
				t.Errorf("container %s: --config %s: the ConfigMap has no key %q", c.Name, path, key)
			}
			return path
		}
	}
	t.Errorf("container %s: --config %s is not under a volume mount", c.Name, path)
	return path
}

func volumes(p podTemplate) map[string]string {
	vols := map[string]string{}
	for _, v := range p.Spec.Volumes {
		switch {
		case v.ConfigMap != nil:
			vols[v.Name] = "configMap:" + v.ConfigMap.Name
		case v.EmptyDir != nil, v.PersistentVolumeClaim != nil:
			vols[v.Name] = "writable"
		default:
			vols[v.Name] = "other"
		}
	}
	return vols
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// loadKubernetesConfig loads the ConfigMap's file with config.Load, in the environment c runs
// with, the way `imagegw serve --config` does.
func (m *manifests) loadConfig(t *testing.T, c container) *config.Config {
	t.Helper()
	path := m.configPath(t, c, volumes(m.deployment.Template))
	tmp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(m.configMap.Data[filepath.Base(path)]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(tmp, envFunc(m.env(t, c), nil))
	if err != nil {
		t.Fatalf("the ConfigMap's configuration does not load: %v", err)
	}
	if err := (httpx.Options{AllowHosts: cfg.Outbound.AllowHosts}).Validate(); err != nil {
		t.Errorf("outbound.allow_hosts: %v", err)
	}
	return cfg
}

func TestKubernetesConfig(t *testing.T) {
	m := loadManifests(t)
	c := m.gateway(t)
	cfg := m.loadConfig(t, c)

	// It talks to a shared Postgres: each pod's SQLite would be a database of its own.
	if d := cfg.DatabaseURL.Value(); !strings.HasPrefix(d, "postgres://") && !strings.HasPrefix(d, "postgresql://") {
		t.Errorf("database_url %q: replicas need a shared Postgres", d)
	}
	for _, e := range c.Env {
		if e.Name == "IMAGEGW_DATABASE_URL" && (e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil ||
			e.ValueFrom.SecretKeyRef.Optional != nil && *e.ValueFrom.SecretKeyRef.Optional) {
			t.Error("IMAGEGW_DATABASE_URL must come from a required secretKeyRef, so a pod without it does not start on SQLite")
		}
	}

	// The port it listens on is the one the manifests use.
	_, port, _ := net.SplitHostPort(cfg.Addr)
	var httpPort int
	for _, p := range c.Ports {
		if p.Name == "http" {
			httpPort = p.ContainerPort
		}
	}
	if strconv.Itoa(httpPort) != port {
		t.Errorf("the gateway listens on %s but the container port http is %d", cfg.Addr, httpPort)
	}
	if a := m.deployment.Template.Metadata.Annotations; a["prometheus.io/scrape"] != "true" ||
		a["prometheus.io/port"] != port || a["prometheus.io/path"] != "/metrics" {
		t.Errorf("scrape annotations %v: want scrape=true, port=%s, path=/metrics", a, port)
	}

	// Graceful shutdown fits in the grace period.
	if c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil || c.Lifecycle.PreStop.Sleep.Seconds <= 0 {
		t.Fatal("no preStop sleep: endpoints would still route to a pod that closed its listener")
	}
	sleep := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	grace := m.deployment.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || time.Duration(*grace)*time.Second <= sleep+cfg.ShutdownTimeout.D()+usageFlushTimeout {
		t.Errorf("terminationGracePeriodSeconds must exceed the preStop sleep %v + shutdown_timeout %v + the usage flush %v",
			sleep, cfg.ShutdownTimeout.D(), usageFlushTimeout)
	}

	// Every directory the gateway writes is on a writable volume (the root file system is read-only).
	vols := volumes(m.deployment.Template)
	writable := func(dir string) bool {
		for _, vm := range c.VolumeMounts {
			rel, err := filepath.Rel(vm.MountPath, dir)
			if err == nil && !strings.HasPrefix(rel, "..") && !vm.ReadOnly && vols[vm.Name] == "writable" {
				return true
			}
		}
		return false
	}
	for what, dir := range map[string]string{"data_dir": cfg.DataDir, "images.dir": cfg.Images.Dir,
		"billing.outbox_dir": cfg.Billing.OutboxDir, "temporary files": os.TempDir()} {
		if !filepath.IsAbs(dir) || !writable(dir) {
			t.Errorf("%s %q is not on a writable volume", what, dir)
		}
	}

	// Migrations: either the pods apply them or the Job does.
	job := m.job.Template.Spec.Containers
	if len(job) != 1 || len(job[0].Command) < 2 || job[0].Command[0] != "/imagegw" || job[0].Command[1] != "migrate" {
		t.Fatalf("the Job must run /imagegw migrate, not %v", job)
	}
	jcfg := m.loadJobConfig(t, job[0])
	if jcfg.DatabaseURL != cfg.DatabaseURL {
		t.Error("the migration Job and the Deployment use different databases")
	}
	if job[0].Image != c.Image {
		t.Errorf("the Job runs %s but the Deployment %s", job[0].Image, c.Image)
	}
}

func (m *manifests) loadJobConfig(t *testing.T, c container) *config.Config {
	t.Helper()
	path := m.configPath(t, c, volumes(m.job.Template))
	tmp := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := os.WriteFile(tmp, []byte(m.configMap.Data[filepath.Base(path)]), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(tmp, envFunc(m.env(t, c), nil))
	if err != nil {
		t.Fatalf("the migration Job's configuration does not load: %v", err)
	}
	return cfg
}

func TestKubernetesWorkload(t *testing.T) {
	m := loadManifests(t)
	c := m.gateway(t)
	d := m.deployment
	podLabels := d.Template.Metadata.Labels

	if d.Replicas == nil || *d.Replicas < 2 {
		t.Errorf("replicas %v: want at least 2", d.Replicas)
	}
	if !matches(d.Selector.MatchLabels, podLabels) {
		t.Error("the Deployment's selector does not match its pods")
	}
	jobLabels := m.job.Template.Metadata.Labels
	for what, sel := range map[string]map[string]string{"Deployment": d.Selector.MatchLabels,
		"Service": m.service.Selector, "PodDisruptionBudget": m.pdb.Selector.MatchLabels} {
		if !matches(sel, podLabels) {
			t.Errorf("the %s's selector %v does not match the gateway pods %v", what, sel, podLabels)
		}
		if matches(sel, jobLabels) {
			t.Errorf("the %s's selector %v also matches the migration Job's pods", what, sel)
		}
	}
	if len(m.service.Ports) == 0 || fmt.Sprint(m.service.Ports[0].TargetPort) != "http" {
		t.Errorf("the Service should target the named port http: %+v", m.service.Ports)
	}
	if m.pdb.MinAvailable == nil {
		t.Error("the PodDisruptionBudget sets no minAvailable")
	}
	h := m.hpa
	if h.ScaleTargetRef.Kind != "Deployment" || h.ScaleTargetRef.Name != m.deploymentName || h.MinReplicas < 2 || h.MaxReplicas < h.MinReplicas {
		t.Errorf("HorizontalPodAutoscaler %+v: want the Deployment %s, minReplicas >= 2", h, m.deploymentName)
	}

	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("readinessProbe must GET /readyz")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("livenessProbe must GET /healthz")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resources %+v: want cpu and memory requests (the HPA needs cpu) and a memory limit", c.Resources)
	}
	for _, p := range []podTemplate{d.Template, m.job.Template} {
		for _, pc := range p.Spec.Containers {
			sc := pc.SecurityContext
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
				sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("container %s: want readOnlyRootFilesystem and no privilege escalation", pc.Name)
			}
			if (sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot) && (p.Spec.SecurityContext.RunAsNonRoot == nil || !*p.Spec.SecurityContext.RunAsNonRoot) {
				t.Errorf("container %s: want runAsNonRoot", pc.Name)
			}
		}
	}
	if !slices.Contains(c.Args, "--no-bootstrap") {
		t.Error("serve without --no-bootstrap: every replica would race to create a first key and print it to its log")
	}
}

// TestKustomization checks that kustomization.yaml lists every manifest but the Secret
// template and the migration Job, which are applied on their own.
func TestKustomization(t *testing.T) {
	var k struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
		Resources  []string
		Images     []struct {
			Name    string `yaml:"name"`
			NewName string `yaml:"newName"`
			NewTag  string `yaml:"newTag"`
		} `yaml:"images"`
	}
	if err := yaml.Unmarshal(readFile(t, "kubernetes/kustomization.yaml"), &k); err != nil {
		t.Fatal(err)
	}
	m := loadManifests(t)
	var want []string
	for _, o := range m.all {
		if o.Kind != "Secret" && o.Kind != "Job" {
			want = append(want, filepath.Base(o.file))
		}
	}
	slices.Sort(want)
	want = slices.Compact(want)
	got := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(got, want) {
		t.Errorf("kustomization resources = %v, want %v", got, want)
	}
	image := m.gateway(t).Image
	for _, im := range k.Images {
		if !strings.HasPrefix(image, im.Name+":") && image != im.Name {
			t.Errorf("kustomization image %s does not match the Deployment's %s", im.Name, image)
		}
	}
}

// ---- compose -------------------------------------------------------------------------------

type composeService struct {
	Image       string            `yaml:"image"`
	Build       yaml.Node         `yaml:"build"`
	Entrypoint  []string          `yaml:"entrypoint"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Healthcheck *struct {
		Test        []string `yaml:"test"`
		Interval    string   `yaml:"interval"`
		Timeout     string   `yaml:"timeout"`
		Retries     int      `yaml:"retries"`
		StartPeriod string   `yaml:"start_period"`
	} `yaml:"healthcheck"`
	DependsOn map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Ports           []string  `yaml:"ports"`
	Volumes         []string  `yaml:"volumes"`
	ReadOnly        bool      `yaml:"read_only"`
	Tmpfs           []string  `yaml:"tmpfs"`
	StopGracePeriod string    `yaml:"stop_grace_period"`
	Restart         string    `yaml:"restart"`
	Networks        yaml.Node `yaml:"networks"`
}

type composeFile struct {
	Name     string                    `yaml:"name"`
	XImage   yaml.Node                 `yaml:"x-image"`
	Services map[string]composeService `yaml:"services"`
	Networks map[string]struct {
		Ipam struct {
			Config []struct {
				Subnet string `yaml:"subnet"`
			} `yaml:"config"`
		} `yaml:"ipam"`
	} `yaml:"networks"`
	Volumes map[string]any `yaml:"volumes"`
}

func loadCompose(t *testing.T) composeFile {
	t.Helper()
	return decodeYAML[composeFile](t, "docker-compose.yml", true)[0]
}

// composeEnv is the gateway's environment in compose: the image's ENV, then environment:
// (with ${VAR:-default} taken at its default).
func composeEnv(t *testing.T, s composeService) map[string]string {
	t.Helper()
	env := map[string]string{}
	for k, v := range loadDockerfile(t).env {
		env[k] = v
	}
	interp := regexp.MustCompile(`\$\{([A-Z0-9_]+)(?::?-([^}]*))?\}`)
	for k, v := range s.Environment {
		env[k] = interp.ReplaceAllString(v, "$2")
	}
	return env
}

func TestCompose(t *testing.T) {
	cf := loadCompose(t)
	gw, ok := cf.Services["gateway"]
	if !ok {
		t.Fatal("no gateway service")
	}
	for _, name := range []string{"postgres", "redis", "sim"} {
		s, ok := cf.Services[name]
		if !ok {
			t.Errorf("no %s service", name)
			continue
		}
		if s.Healthcheck == nil || len(s.Healthcheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
		}
		if gw.DependsOn[name].Condition != "service_healthy" {
			t.Errorf("the gateway should depend on %s being healthy", name)
		}
	}
	if img := cf.Services["postgres"].Image; !strings.HasPrefix(img, "postgres:15") {
		t.Errorf("postgres image %s: want Postgres 15", img)
	}
	if img := cf.Services["redis"].Image; !strings.HasPrefix(img, "redis:7") {
		t.Errorf("redis image %s: want Redis 7", img)
	}
	if gw.Healthcheck == nil || !slices.Equal(gw.Healthcheck.Test, []string{"CMD", "/healthcheck"}) {
		t.Errorf("gateway healthcheck %v: want [CMD /healthcheck] (GET /readyz)", gw.Healthcheck)
	}

	env := composeEnv(t, gw)
	cfg, err := config.Load("", envFunc(env, nil))
	if err != nil {
		t.Fatalf("the gateway's compose environment does not load: %v", err)
	}
	if err := (httpx.Options{AllowHosts: cfg.Outbound.AllowHosts}).Validate(); err != nil {
		t.Errorf("IMAGEGW_OUTBOUND_ALLOW_HOSTS: %v", err)
	}
	if !strings.HasPrefix(cfg.DatabaseURL.Value(), "postgres://") || !strings.Contains(cfg.DatabaseURL.Value(), "@postgres:") {
		t.Error("the gateway should use the postgres service")
	}
	if !strings.Contains(cfg.RedisURL.Value(), "//redis:") {
		t.Error("the gateway should use the redis service")
	}
	if d, err := time.ParseDuration(gw.StopGracePeriod); err != nil || d <= cfg.ShutdownTimeout.D()+usageFlushTimeout {
		t.Errorf("stop_grace_period %q must exceed shutdown_timeout %v + the usage flush %v", gw.StopGracePeriod, cfg.ShutdownTimeout.D(), usageFlushTimeout)
	}
	_, port, _ := net.SplitHostPort(cfg.Addr)
	if len(gw.Ports) != 1 || !strings.HasSuffix(gw.Ports[0], ":"+port) {
		t.Errorf("ports %v do not publish the gateway's port %s", gw.Ports, port)
	}
	for _, v := range gw.Volumes {
		if _, dir, _ := strings.Cut(v, ":"); dir == cfg.DataDir {
			return
		}
	}
	t.Errorf("no volume on the data directory %s", cfg.DataDir)
}

// TestComposeSimulator checks the gateway's provider variables against the simulator's own
// -print-env output and that the image URLs its fakes hand out are reachable and allowed.
func TestComposeSimulator(t *testing.T) {
	cf := loadCompose(t)
	sim := cf.Services["sim"]
	env := composeEnv(t, cf.Services["gateway"])
	allow := strings.Split(env["IMAGEGW_OUTBOUND_ALLOW_HOSTS"], ",")

	// -addr: the simulator builds its fakes' image URLs from its listen address.
	i := slices.Index(sim.Entrypoint, "-addr")
	if len(sim.Entrypoint) == 0 || sim.Entrypoint[0] != "/imagegw-sim" || i < 0 || i+1 >= len(sim.Entrypoint) {
		t.Fatalf("sim entrypoint %q: want /imagegw-sim -addr IP:PORT", sim.Entrypoint)
	}
	listen := sim.Entrypoint[i+1]
	ap, err := netip.ParseAddrPort(listen)
	if err != nil {
		t.Fatalf("sim -addr %q: want a fixed IP:PORT: %v", listen, err)
	}
	var nets map[string]struct {
		IPv4 string `yaml:"ipv4_address"`
	}
	if err := sim.Networks.Decode(&nets); err != nil {
		t.Fatalf("sim networks: %v", err)
	}
	inSubnet := false
	for name, n := range nets {
		if n.IPv4 != ap.Addr().String() {
			t.Errorf("sim: ipv4_address %q on %s is not its -addr %s", n.IPv4, name, ap.Addr())
		}
		for _, c := range cf.Networks[name].Ipam.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil && p.Contains(ap.Addr()) {
				inSubnet = true
			}
		}
	}
	if !inSubnet {
		t.Errorf("sim address %s is in none of its networks' subnets", ap.Addr())
	}
	if !slices.Contains(allow, listen) {
		t.Errorf("IMAGEGW_OUTBOUND_ALLOW_HOSTS %v lacks %s: the gateway could not download the fakes' image URLs", allow, listen)
	}
	if sim.Healthcheck == nil || !slices.Contains(sim.Healthcheck.Test, "http://"+listen+"/") {
		t.Errorf("sim healthcheck should GET http://%s/", listen)
	}

	if testing.Short() {
		t.Skip("-short: not running the simulator's -print-env")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to run the simulator's -print-env")
	}
	host := "sim"
	for k, v := range env {
		if strings.HasSuffix(k, "_BASE_URL") {
			if u, _, ok := strings.Cut(strings.TrimPrefix(v, "http://"), "/"); ok {
				host = u
			}
		}
	}
	cmd := exec.Command(goBin, "run", "./cmd/imagegw-sim", "-addr", host, "-print-env")
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("imagegw-sim -print-env: %v", err)
	}
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kv, ok := strings.CutPrefix(line, "export ")
		k, qv, ok2 := strings.Cut(kv, "=")
		v, err := strconv.Unquote(qv)
		if !ok || !ok2 || err != nil {
			t.Fatalf("imagegw-sim -print-env: unexpected line %q", line)
		}
		seen++
		if k == "IMAGEGW_OUTBOUND_ALLOW_HOSTS" {
			for _, h := range strings.Split(v, ",") {
				if !slices.Contains(allow, h) {
					t.Errorf("IMAGEGW_OUTBOUND_ALLOW_HOSTS %v lacks %s, which the simulator needs", allow, h)
				}
			}
			continue
		}
		if env[k] != v {
			t.Errorf("compose gateway %s = %q, the simulator says %q", k, env[k], v)
		}
	}
	if seen < 3 {
		t.Errorf("imagegw-sim -print-env printed only %q", out)
	}
}

// ---- environment variables -----------------------------------------------------------------

// TestEnvNames checks that every IMAGEGW_* and provider variable the deploy files set is one
// the gateway reads.
func TestEnvNames(t *testing.T) {
	known := configEnvNames(t)
	check := func(where, name string, all bool) {
		if known[name] || goRuntimeEnv[name] {
			return
		}
		if all || strings.HasPrefix(name, "IMAGEGW_") || strings.HasSuffix(name, "_API_KEY") || strings.HasSuffix(name, "_BASE_URL") {
			t.Errorf("%s sets %s, which imagegw does not read", where, name)
		}
	}

	for k := range loadDockerfile(t).env {
		check("Dockerfile", k, true)
	}

	cf := loadCompose(t)
	for name, s := range cf.Services {
		for k := range s.Environment {
			check("docker-compose.yml service "+name, k, name == "gateway")
		}
	}
	for _, m := range regexp.MustCompile(`\$\{(IMAGEGW_[A-Z0-9_]+)`).FindAllStringSubmatch(string(readFile(t, "docker-compose.yml")), -1) {
		check("docker-compose.yml interpolation", m[1], true)
	}

	m := loadManifests(t)
	for name, s := range m.secrets {
		for k := range s.StringData {
			check("the Secret template "+name+" (loaded with envFrom)", k, true)
		}
	}
	for _, p := range []podTemplate{m.deployment.Template, m.job.Template} {
		for _, c := range p.Spec.Containers {
			for _, e := range c.Env {
				check("container "+c.Name, e.Name, true)
			}
		}
	}
}

// ---- syntax --------------------------------------------------------------------------------

// TestFilesParse checks that every YAML and JSON file under deploy/ parses.
func TestFilesParse(t *testing.T) {
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch filepath.Ext(path) {
		case ".yml", ".yaml":
			dec := yaml.NewDecoder(bytes.NewReader(readFile(t, path)))
			for {
				var v any
				if err := dec.Decode(&v); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Errorf("%s: %v", path, err)
					break
				}
			}
			n++
		case ".json":
			var v any
			if err := json.Unmarshal(readFile(t, path), &v); err != nil {
				t.Errorf("%s: %v", path, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 9 {
		t.Errorf("parsed only %d files", n)
	}
}

// ---- rules and dashboard structure ---------------------------------------------------------

type rule struct {
	Record        string            `yaml:"record"`
	Alert         string            `yaml:"alert"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

type rulesFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

func loadRules(t *testing.T) rulesFile {
	t.Helper()
	return decodeYAML[rulesFile](t, "prometheus/rules.yml", true)[0]
}

var recordNameRE = regexp.MustCompile(`^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$`)

func TestRulesStructure(t *testing.T) {
	rf := loadRules(t)
	names := map[string]bool{}
	alerts := 0
	for _, g := range rf.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			name := r.Record + r.Alert
			if (r.Record == "") == (r.Alert == "") || strings.TrimSpace(r.Expr) == "" {
				t.Errorf("rule %q: needs exactly one of record and alert, and an expr", name)
			}
			if names[name] {
				t.Errorf("rule %s is defined twice", name)
			}
			names[name] = true
			if r.Record != "" && !recordNameRE.MatchString(r.Record) {
				t.Errorf("recording rule %s: name it level:metric:operations", r.Record)
			}
			if r.Alert == "" {
				continue
			}
			alerts++
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
				}
			}
			if !slices.Contains([]string{"critical", "warning", "info"}, r.Labels["severity"]) {
				t.Errorf("alert %s: severity label %q", r.Alert, r.Labels["severity"])
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("alert %s: needs summary and description annotations", r.Alert)
			}
		}
	}
	if alerts == 0 {
		t.Error("no alerts")
	}
}

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name  string          `json:"name"`
	Type  string          `json:"type"`
	Query json.RawMessage `json:"query"`
}

func (v variable) queryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &o)
	return o.Query
}

type dashboard struct {
	Title      string  `json:"title"`
	UID        string  `json:"uid"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

// panels returns every panel, those inside collapsed rows included.
func (d dashboard) panels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	if err := json.Unmarshal(readFile(t, "grafana/imagegw.json"), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDashboardStructure(t *testing.T) {
	d := loadDashboard(t)
	if d.Title == "" || d.UID == "" {
		t.Error("the dashboard needs a title and a uid")
	}
	vars := map[string]bool{"__rate_interval": true, "__interval": true, "__range": true}
	for _, v := range d.Templating.List {
		vars[v.Name] = true
	}
	if !vars["datasource"] {
		t.Error("no datasource variable")
	}
	varRE := regexp.MustCompile(`\$\{?([a-zA-Z_][a-zA-Z0-9_]*)`)
	ids := map[int]bool{}
	for _, p := range d.panels() {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d is used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if g := p.GridPos; g.W < 1 || g.X < 0 || g.X+g.W > 24 || g.H < 1 {
			t.Errorf("panel %q: gridPos %+v", p.Title, g)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource should be ${datasource}", p.Title)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no queries", p.Title)
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if refs[tg.RefID] {
				t.Errorf("panel %q: refId %s twice", p.Title, tg.RefID)
			}
			refs[tg.RefID] = true
			for _, m := range varRE.FindAllStringSubmatch(tg.Expr, -1) {
				if !vars[m[1]] {
					t.Errorf("panel %q: variable $%s is not defined", p.Title, m[1])
				}
			}
		}
	}
}
