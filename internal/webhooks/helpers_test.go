package webhooks

import (
	"bytes"
	"log/slog"
	"maps"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

const (
	testToken  = "test-token-that-must-never-be-printed"
	testSecret = "secret-that-must-never-be-printed"
	testTarget = "https://bot.example.com/webhooks/webex"
)

// writeOps change webhooks; readOps only look.
var (
	writeOps = []string{webexsim.OpCreateWebhook, webexsim.OpUpdateWebhook, webexsim.OpDeleteWebhook}
	allOps   = []string{webexsim.OpListWebhooks, webexsim.OpGetWebhook, webexsim.OpCreateWebhook,
		webexsim.OpUpdateWebhook, webexsim.OpDeleteWebhook, webexsim.OpGetMe}
)

// env is a Webex emulator served over HTTP and a client of it.
type env struct {
	sim    *webexsim.Sim
	apiURL string
	client *webex.Client
}

func newEnv(t *testing.T) *env {
	t.Helper()
	sim := webexsim.New(webexsim.Options{Token: testToken})
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	client, err := webex.New(webex.Options{BaseURL: srv.URL + "/v1", Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	return &env{sim: sim, apiURL: srv.URL + "/v1", client: client}
}

// environ is the environment of a command run against e; extra entries
// override it, and an empty value removes the variable.
func (e *env) environ(extra map[string]string) config.Lookup {
	m := map[string]string{
		"WEBEX_API_URL":         e.apiURL,
		"WEBEX_ACCESS_TOKEN":    testToken,
		"WEBEX_WEBHOOK_SECRETS": testSecret,
	}
	maps.Copy(m, extra)
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok && v != ""
	}
}

// calls returns the calls received so far for each of ops.
func (e *env) calls(ops ...string) map[string]int {
	out := map[string]int{}
	for _, op := range ops {
		out[op] = e.sim.Calls(op)
	}
	return out
}

// named returns the emulator's webhooks called name, and the others.
func (e *env) named(name string) (ours, others []webex.Webhook) {
	for _, w := range e.sim.Webhooks() {
		if w.Name == name {
			ours = append(ours, w)
		} else {
			others = append(others, w)
		}
	}
	return ours, others
}

// addForeign registers webhooks of other deployments and bots, some of
// them tempting (a similar name, inactive, same target).
func (e *env) addForeign() {
	for _, w := range []webex.Webhook{
		{Name: "Sparkguard", TargetURL: testTarget, Resource: "messages", Event: "created", Secret: "foreign-secret-1"},
		{Name: "sparkguard-staging", TargetURL: "https://staging.example.com/h", Resource: "messages", Event: "created", Filter: "roomType=group", Secret: "foreign-secret-2"},
		{Name: "other-bot", TargetURL: "https://other.example.com/h", Resource: "all", Event: "all", Status: webex.WebhookInactive},
	} {
		e.sim.AddWebhook(w)
	}
}

// ourHook is a webhook as sync would create it for spec defaults.
func ourHook(mod func(*webex.Webhook)) webex.Webhook {
	w := webex.Webhook{Name: DefaultName, TargetURL: testTarget, Resource: "messages", Event: "created",
		Filter: "roomType=direct", Secret: testSecret}
	if mod != nil {
		mod(&w)
	}
	return w
}

// logBuffer is a concurrency-safe log destination.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLogger(buf *logBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// assertNoLeak fails when text holds the token or one of the secrets.
func assertNoLeak(t *testing.T, what, text string, secrets ...string) {
	t.Helper()
	for _, s := range append([]string{testToken, testSecret}, secrets...) {
		if strings.Contains(text, s) {
			t.Errorf("%s leaks %q:\n%s", what, s, text)
		}
	}
}
