// Package deploy holds the deployment artifacts; its tests check them without a
// container engine: the Kubernetes manifests against the API's own Go types (strict: an
// unknown or misspelt field fails), the compose file's wiring, and the Dockerfile's build
// command producing a static binary.
package deploy

import (
	"bytes"
	"debug/elf"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsyaml "sigs.k8s.io/yaml"
)

// manifests decodes every document of deploy/k8s/*.yaml into its typed object.
func manifests(t *testing.T) map[string]any {
	t.Helper()
	files, _ := filepath.Glob("k8s/*.yaml")
	if len(files) == 0 {
		t.Fatal("no manifests in deploy/k8s")
	}
	out := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := sigsyaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s #%d: %v", f, i, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "v1 ConfigMap":
				obj = &corev1.ConfigMap{}
			case "v1 Service":
				obj = &corev1.Service{}
			case "apps/v1 Deployment":
				obj = &appsv1.Deployment{}
			case "batch/v1 Job":
				obj = &batchv1.Job{}
			case "networking.k8s.io/v1 Ingress":
				obj = &networkingv1.Ingress{}
			case "autoscaling/v2 HorizontalPodAutoscaler":
				obj = &autoscalingv2.HorizontalPodAutoscaler{}
			case "policy/v1 PodDisruptionBudget":
				obj = &policyv1.PodDisruptionBudget{}
			default:
				t.Fatalf("%s #%d: no schema for %s %s", f, i, tm.APIVersion, tm.Kind)
			}
			if err := sigsyaml.UnmarshalStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s #%d (%s): %v", f, i, tm.Kind, err)
			}
			out[tm.Kind] = obj
		}
	}
	return out
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

func TestKubernetesManifests(t *testing.T) {
	m := manifests(t)
	for _, kind := range []string{"ConfigMap", "Job", "Deployment", "Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget"} {
		if m[kind] == nil {
			t.Fatalf("no %s", kind)
		}
	}
	dep := m["Deployment"].(*appsv1.Deployment)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas < 2 {
		t.Error("the Deployment needs at least 2 replicas")
	}
	c := dep.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Error("readiness must probe /readyz")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("liveness must probe /healthz")
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Error("resource requests (cpu, memory) and a memory limit are required")
	}
	if !slices.Equal(c.Args, []string{"serve"}) {
		t.Errorf("the server runs `serve`, not %v", c.Args)
	}
	for name, sc := range map[string]*corev1.PodSecurityContext{"Deployment": dep.Spec.Template.Spec.SecurityContext,
		"Job": m["Job"].(*batchv1.Job).Spec.Template.Spec.SecurityContext} {
		if sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s must run as non-root", name)
		}
	}
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("the server's root filesystem should be read-only")
	}
	grace := dep.Spec.Template.Spec.TerminationGracePeriodSeconds
	if grace == nil || *grace <= 25 {
		t.Error("terminationGracePeriodSeconds must exceed preStop + GATEHOUSE_SHUTDOWN_TIMEOUT (25 s)")
	}
	job := m["Job"].(*batchv1.Job)
	jc := job.Spec.Template.Spec.Containers[0]
	if jc.Image != c.Image || !slices.Equal(jc.Args, []string{"migrate", "up"}) {
		t.Errorf("the migration Job must run `migrate up` with the server's image (%s vs %s)", jc.Image, c.Image)
	}
	ing := m["Ingress"].(*networkingv1.Ingress)
	wildcard := false
	for _, r := range ing.Spec.Rules {
		wildcard = wildcard || strings.HasPrefix(r.Host, "*.")
	}
	if !wildcard {
		t.Error("the Ingress needs a wildcard host for tenant subdomains")
	}
	hpa := m["HorizontalPodAutoscaler"].(*autoscalingv2.HorizontalPodAutoscaler)
	if hpa.Spec.ScaleTargetRef.Name != dep.Name || hpa.Spec.MinReplicas == nil || *hpa.Spec.MinReplicas < 2 {
		t.Error("the HPA must scale the Deployment with at least 2 replicas")
	}
	pdb := m["PodDisruptionBudget"].(*policyv1.PodDisruptionBudget)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 {
		t.Error("the PDB must keep at least one pod")
	}
	for _, sel := range []map[string]string{m["Service"].(*corev1.Service).Spec.Selector, pdb.Spec.Selector.MatchLabels, dep.Spec.Selector.MatchLabels} {
		for k, v := range sel {
			if dep.Spec.Template.Labels[k] != v {
				t.Errorf("selector %s=%s does not match the pods", k, v)
			}
		}
	}
}

func TestCompose(t *testing.T) {
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Services map[string]struct {
			Image       string            `yaml:"image"`
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			DependsOn   map[string]struct {
				Condition string `yaml:"condition"`
			} `yaml:"depends_on"`
			Volumes     []string `yaml:"volumes"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"postgres", "migrate", "gatehouse-1", "gatehouse-2", "otel-collector"} {
		if _, ok := doc.Services[name]; !ok {
			t.Fatalf("no service %s", name)
		}
	}
	for _, name := range []string{"gatehouse-1", "gatehouse-2"} {
		s := doc.Services[name]
		if !slices.Equal(s.Command, []string{"serve"}) || s.DependsOn["migrate"].Condition != "service_completed_successfully" {
			t.Errorf("%s must serve after the migration completed: %+v", name, s)
		}
		if !strings.Contains(s.Environment["DATABASE_URL"], "gatehouse_app") {
			t.Errorf("%s must connect as gatehouse_app", name)
		}
		if key, err := base64.StdEncoding.DecodeString(s.Environment["GATEHOUSE_SECRET_KEY"]); err != nil || len(key) != 32 {
			t.Errorf("%s: GATEHOUSE_SECRET_KEY is not base64 of 32 bytes", name)
		}
		if !slices.Contains(s.Healthcheck.Test, "healthcheck") {
			t.Errorf("%s: the health check should use `gatehouse healthcheck` (no shell in the image)", name)
		}
	}
	if !slices.Equal(doc.Services["migrate"].Command, []string{"migrate", "up"}) {
		t.Error("the migrate service runs `migrate up`")
	}
	for _, s := range doc.Services {
		for _, v := range s.Volumes {
			if src, _, ok := strings.Cut(v, ":"); ok && strings.HasPrefix(src, "./") {
				if _, err := os.Stat(src); err != nil {
					t.Errorf("compose mounts %s: %v", src, err)
				}
			}
		}
	}
}

// TestDockerfileBuild runs the Dockerfile's build command and checks the binary is static
// (the final stage is distroless/static, with no libc) and carries the version.
func TestDockerfileBuild(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	if !strings.Contains(df, "FROM gcr.io/distroless/static") || !regexp.MustCompile(`(?m)^USER [1-9][0-9]*`).MatchString(df) {
		t.Fatal("the final stage must be distroless/static and run as a non-root numeric user")
	}
	line := regexp.MustCompile(`(?m)^RUN CGO_ENABLED=0 go build (.+) -o /out/gatehouse (\./cmd/gatehouse)$`).FindStringSubmatch(df)
	if line == nil {
		t.Fatal("no `RUN CGO_ENABLED=0 go build … -o /out/gatehouse ./cmd/gatehouse` line")
	}
	flags := strings.ReplaceAll(line[1], "${VERSION}", "deploy-test")
	out := filepath.Join(t.TempDir(), "gatehouse")
	args := append([]string{"build"}, splitQuoted(flags)...)
	args = append(args, "-o", out, line[2])
	cmd := exec.Command("go", args...)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %v: %v\n%s", args, err, msg)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary is dynamically linked")
		}
	}
	v, err := exec.Command(out, "version").Output()
	if err != nil || !bytes.Contains(v, []byte("deploy-test")) {
		t.Fatalf("version: %q %v", v, err)
	}
}

// splitQuoted splits a shell word list with double quotes (enough for the build flags).
func splitQuoted(s string) []string {
	var out []string
	var cur strings.Builder
	quoted := false
	for _, r := range s {
		switch {
		case r == '"':
			quoted = !quoted
		case r == ' ' && !quoted:
			if cur.Len() > 0 {
				out = append(out, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.String())
	}
	return out
}
