package deploy

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// loadCompose loads docker-compose.yml as `docker compose --env-file
// envFile` would, ignoring the test's own environment.
func loadCompose(t *testing.T, envFile string) *types.Project {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{"docker-compose.yml"},
		cli.WithWorkingDirectory("."),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithDefaultProfiles(), // COMPOSE_PROFILES from the env file
	)
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("load docker-compose.yml with %s: %v", envFile, err)
	}
	return p
}

// scalable are the services that run as many replicas.
var scalable = []string{"authz", "responder"}

// noHealthcheck are the services allowed without a container health check,
// and why.
var noHealthcheck = map[string]string{
	"nats-exporter": "FROM scratch image without a probe; Prometheus watches it (up{job=\"nats\"})",
}

// secretName says that an environment variable holds a secret by its name.
var secretName = regexp.MustCompile(`(?i)(SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|PRIVATE|API_?KEY)`)

func TestCompose(t *testing.T) {
	for _, tc := range []struct {
		name, envFile string
		services      []string
		webexAPI      string
	}{
		{"default", ".env.example",
			[]string{"authz", "grafana", "ingress", "nats", "nats-exporter", "prometheus", "responder"},
			"https://webexapis.com/v1"},
		{"sim profile", ".env.sim",
			[]string{"authz", "grafana", "ingress", "nats", "nats-exporter", "prometheus", "responder", "webexsim"},
			"http://webexsim:8900/v1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := loadCompose(t, tc.envFile)
			if got := p.ServiceNames(); !slices.Equal(sorted(got), tc.services) {
				t.Fatalf("services = %v, want %v", sorted(got), tc.services)
			}
			for name, svc := range p.Services {
				t.Run(name, func(t *testing.T) {
					checkService(t, p, name, svc)
				})
			}
			for _, name := range []string{"authz", "responder"} {
				if got := env(p.Services[name], "WEBEX_API_URL"); got != tc.webexAPI {
					t.Errorf("%s: WEBEX_API_URL = %q, want %q", name, got, tc.webexAPI)
				}
			}
			if tc.envFile == ".env.sim" {
				// The demo secrets exist, and the token is the emulator's.
				for name, s := range p.Secrets {
					if _, err := os.Stat(s.File); err != nil {
						t.Errorf("secret %s: %v", name, err)
					}
				}
				b, err := os.ReadFile(p.Secrets["webex_access_token"].File)
				if err != nil || strings.TrimSpace(string(b)) != "sim-token" {
					t.Errorf("sim webex_access_token = %q, %v; want the emulator's default token sim-token", b, err)
				}
			}
		})
	}
}

func checkService(t *testing.T, p *types.Project, name string, svc types.ServiceConfig) {
	if slices.Contains(scalable, name) {
		if svc.ContainerName != "" {
			t.Errorf("container_name %q: a scaled service must not have one", svc.ContainerName)
		}
		if len(svc.Ports) > 0 {
			t.Errorf("publishes ports %v: a scaled service must not", svc.Ports)
		}
	}
	for _, port := range svc.Ports {
		switch {
		case name == "ingress" && port.Target == 8080:
		case port.HostIP == "127.0.0.1":
		default:
			t.Errorf("publishes %s:%s->%d: only the ingress may publish beyond 127.0.0.1", port.HostIP, port.Published, port.Target)
		}
	}
	if why, ok := noHealthcheck[name]; ok {
		t.Logf("no health check: %s", why)
	} else if hc := svc.HealthCheck; hc == nil || hc.Disable || len(hc.Test) < 2 || hc.Test[0] != "CMD" {
		t.Errorf("healthcheck = %+v: want an exec-form (CMD) health check", hc)
	}
	if svc.Restart == "" {
		t.Error("no restart policy")
	}
	for dep, d := range svc.DependsOn {
		if d.Condition != types.ServiceConditionHealthy {
			t.Errorf("depends_on %s: condition %q, want service_healthy", dep, d.Condition)
		}
		if _, ok := noHealthcheck[dep]; ok {
			t.Errorf("depends_on %s, which has no health check", dep)
		}
	}
	checkEnvironment(t, p, name, svc)
	if svc.Build != nil {
		checkBuild(t, svc)
	}
	for _, v := range svc.Volumes {
		if v.Type == types.VolumeTypeBind {
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("bind mount %s: %v", v.Source, err)
			}
		}
	}
}

// required are the variables each service needs, each satisfied by NAME or
// NAME_FILE; a list of alternatives needs one of them.
var required = map[string][][]string{
	"ingress":   {{"WEBEX_WEBHOOK_SECRETS"}, {"NATS_USER"}, {"NATS_PASSWORD"}, {"NATS_URL"}},
	"authz":     {{"WEBEX_ACCESS_TOKEN"}, {"NATS_USER"}, {"NATS_PASSWORD"}, {"NATS_URL"}, {"AUTHZ_ALLOWED_EMAILS", "AUTHZ_ALLOWED_DOMAINS", "AUTHZ_ALLOWED_ORG_IDS", "AUTHZ_ALLOW_ALL"}},
	"responder": {{"WEBEX_ACCESS_TOKEN"}, {"NATS_USER"}, {"NATS_PASSWORD"}, {"NATS_URL"}},
}

func checkEnvironment(t *testing.T, p *types.Project, name string, svc types.ServiceConfig) {
	for _, alternatives := range required[name] {
		ok := false
		for _, v := range alternatives {
			val := env(svc, v)
			if v == "AUTHZ_ALLOW_ALL" && val == "false" {
				val = ""
			}
			if val != "" || env(svc, v+"_FILE") != "" {
				ok = true
			}
		}
		if !ok {
			t.Errorf("none of %v (or its _FILE) is set", alternatives)
		}
	}
	if user := env(svc, "NATS_USER"); user != "" && user != name {
		t.Errorf("NATS_USER = %q, want the service's own NATS user %q", user, name)
	}
	mounted := map[string]bool{}
	for _, s := range svc.Secrets {
		target := s.Target
		if target == "" {
			target = s.Source
		}
		if !strings.HasPrefix(target, "/") {
			target = "/run/secrets/" + target
		}
		mounted[target] = true
		if ps, ok := p.Secrets[s.Source]; !ok || ps.File == "" {
			t.Errorf("secret %s: not a file secret of the project", s.Source)
		}
	}
	for k, v := range svc.Environment {
		if v == nil {
			continue
		}
		isFile := strings.HasSuffix(k, "_FILE") // GF_…__FILE too
		if isFile && strings.HasPrefix(*v, "/run/secrets/") && !mounted[*v] {
			t.Errorf("%s=%s: no such secret mounted in the service", k, *v)
		}
		if secretName.MatchString(k) && !isFile && *v != "" {
			t.Errorf("%s has an inline value: secrets must come from a compose secret through %s_FILE", k, k)
		}
	}
}

// checkBuild checks the service's Dockerfile: multi-stage, a static binary
// built with -trimpath, a distroless nonroot final image with a health
// check, and every module of go.work copied (the workspace build needs
// each go.mod).
func checkBuild(t *testing.T, svc types.ServiceConfig) {
	path := filepath.Join(svc.Build.Context, svc.Build.Dockerfile)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("dockerfile: %v", err)
	}
	df := string(b)
	var froms []string
	sc := bufio.NewScanner(strings.NewReader(df))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) >= 2 && strings.EqualFold(f[0], "FROM") {
			froms = append(froms, f[1])
		}
	}
	if len(froms) < 2 {
		t.Errorf("%s: %d stages, want a multi-stage build", path, len(froms))
	} else if last := froms[len(froms)-1]; last != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("%s: final image %s, want gcr.io/distroless/static-debian12:nonroot", path, last)
	}
	for _, want := range []string{
		"CGO_ENABLED=0 go build -trimpath", `-ldflags "-s -w -X github.com/sparkguard/sparkguard/platform/app.Version=${VERSION}"`,
		"ARG VERSION", "USER nonroot", "HEALTHCHECK", "EXPOSE",
	} {
		if !strings.Contains(df, want) {
			t.Errorf("%s: no %q", path, want)
		}
	}
	for _, mod := range workspaceModules(t) {
		if mod == "." {
			mod = ""
		} else {
			mod += "/"
		}
		if !strings.Contains(df, "COPY "+mod+"go.mod ") && !(mod == "" && strings.Contains(df, " go.mod go.su[m] ./")) {
			t.Errorf("%s: does not copy %sgo.mod, which go.work uses", path, mod)
		}
	}
	if healthcheck := svc.HealthCheck; healthcheck != nil && len(healthcheck.Test) > 1 {
		if bin := healthcheck.Test[1]; !strings.Contains(df, "COPY --from=build /out/"+filepath.Base(bin)+" "+bin) {
			t.Errorf("%s: the health check runs %s, which the image does not hold", path, bin)
		}
	}
}

// workspaceModules lists the directories go.work uses.
func workspaceModules(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../go.work")
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	in := false
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "use ("):
			in = true
		case in && line == ")":
			in = false
		case in && line != "":
			mods = append(mods, filepath.Clean(line))
		case strings.HasPrefix(line, "use "):
			mods = append(mods, filepath.Clean(strings.TrimPrefix(line, "use ")))
		}
	}
	if len(mods) == 0 {
		t.Fatal("go.work uses no module")
	}
	return mods
}

// TestEnvExampleListsEveryVariable: every variable docker-compose.yml
// interpolates is in .env.example, so operators see every knob.
func TestEnvExampleListsEveryVariable(t *testing.T) {
	compose, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile(".env.example")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for line := range strings.Lines(string(example)) {
		line = strings.TrimPrefix(strings.TrimSpace(line), "# ")
		if k, _, ok := strings.Cut(line, "="); ok && regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`).MatchString(k) {
			listed[k] = true
		}
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z][A-Z0-9_]*)`).FindAllStringSubmatch(string(compose), -1) {
		if !listed[m[1]] {
			t.Errorf("docker-compose.yml uses ${%s}, which .env.example does not list", m[1])
		}
	}
	for k := range listed {
		if secretName.MatchString(k) && k != "SECRETS_DIR" {
			t.Errorf(".env.example lists %s: secrets belong in SECRETS_DIR files", k)
		}
	}
}

func env(svc types.ServiceConfig, key string) string {
	if v := svc.Environment[key]; v != nil {
		return *v
	}
	return ""
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
