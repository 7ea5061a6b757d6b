package deploy

import (
	"os/exec"
	"testing"
)

// lookTool finds a command the tests need; a missing one fails the test:
// .ci/run installs it.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (%v): .ci/run installs Debian's prometheus package (apt-get install prometheus), which provides promtool and prometheus", name, err)
	}
	return path
}

func TestPrometheusConfig(t *testing.T) {
	promtool := lookTool(t, "promtool")
	for _, args := range [][]string{
		{"check", "config", "prometheus/prometheus.yml"},
		{"check", "rules", "prometheus/alerts.yml"},
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %v: %v\n%s", args, err, out)
		}
	}
}

// TestAlertRules runs the alerts' unit tests (prometheus/alerts_test.yml):
// each alert fires on the series that should raise it, with its labels and
// annotations, and stays quiet on the ones that should not.
func TestAlertRules(t *testing.T) {
	promtool := lookTool(t, "promtool")
	out, err := exec.Command(promtool, "test", "rules", "prometheus/alerts_test.yml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules prometheus/alerts_test.yml: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
