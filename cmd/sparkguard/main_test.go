package main

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestRunAllInOne runs `sparkguard run --public-url` as a user would: the
// three stages, an embedded NATS in SPARKGUARD_DATA_DIR, the webhook
// registered at start, and an allowed person's message echoed once, all
// visible on one METRICS_ADDR.
func TestRunAllInOne(t *testing.T) {
	sim := webexsim.New(webexsim.Options{})
	api := httptest.NewServer(sim.Handler())
	t.Cleanup(func() { api.Close(); sim.Close() })
	ingressAddr, metricsAddr := freeAddr(t), freeAddr(t)
	env := map[string]string{
		"SPARKGUARD_DATA_DIR":   filepath.Join(t.TempDir(), "data"),
		"INGRESS_ADDR":          ingressAddr,
		"METRICS_ADDR":          metricsAddr,
		"WEBEX_WEBHOOK_SECRETS": "first-secret,old-secret",
		"WEBEX_API_URL":         api.URL + "/v1",
		"WEBEX_ACCESS_TOKEN":    webexsim.DefaultToken,
		"AUTHZ_ALLOWED_EMAILS":  "alice@example.com",
		"LOG_LEVEL":             "debug",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", "--public-url", "http://" + ingressAddr, "--filter", "mentionedPeople=me"}, lookup, io.Discard, &logs)
	}()

	waitFor(t, "the webhook registered at start", func() bool {
		hooks := sim.Webhooks()
		return len(hooks) == 1 && hooks[0].TargetURL == "http://"+ingressAddr+"/webhooks/webex" &&
			hooks[0].Secret == "first-secret" && hooks[0].Filter == "mentionedPeople=me"
	})
	waitFor(t, "ready", func() bool {
		resp, err := http.Get("http://" + metricsAddr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	alice := sim.AddPerson(webex.Person{Emails: []string{"alice@example.com"}})
	room := sim.NewRoomID()
	m, err := sim.Post(webexsim.Post{PersonID: alice.ID, RoomID: room, RoomType: webexsim.RoomGroup, Text: "Ship it", MentionBot: true})
	if err != nil {
		t.Fatal(err)
	}
	bot := sim.Bot()
	replies := func() []webex.Message {
		var out []webex.Message
		for _, r := range sim.Messages(room) {
			if r.PersonID == bot.ID {
				out = append(out, r)
			}
		}
		return out
	}
	waitFor(t, "the echo", func() bool { return len(replies()) == 1 })
	if got := replies()[0]; got.Text != "Ship it" || got.RoomID != m.RoomID {
		t.Errorf("reply = %+v", got)
	}

	metrics := func() string {
		resp, err := http.Get("http://" + metricsAddr + "/metrics")
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	for _, want := range []string{
		`sparkguard_build_info{service="sparkguard"`,
		`sparkguard_ingress_webhooks_total{outcome="accepted"}`,
		`sparkguard_authz_decisions_total{decision="allow",reason="email"} 1`,
		`sparkguard_responder_replies_total{outcome="sent"} 1`,
		`sparkguard_webex_api_requests_total{code="200",operation="create_message"} 1`,
	} {
		// The stages count just after their work is done.
		waitFor(t, "/metrics to show "+want, func() bool { return strings.Contains(metrics(), want) })
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("run did not stop")
	}
	if strings.Contains(logs.String(), "first-secret") || strings.Contains(logs.String(), webexsim.DefaultToken) {
		t.Error("a secret reached the logs")
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	t.Parallel()
	lookup := func(k string) (string, bool) { return "", false }
	err := run(context.Background(), []string{"run"}, lookup, io.Discard, io.Discard)
	for _, want := range []string{"WEBEX_WEBHOOK_SECRETS", "WEBEX_ACCESS_TOKEN", "AUTHZ_ALLOW_ALL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %s", err, want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "--public-url", "ftp://example.com"}, "--public-url"},
		{[]string{"run", "--filter", "roomType=direct"}, "--filter"},
		{[]string{"run", "extra"}, "extra"},
		{[]string{"demo", "extra"}, "extra"},
		{[]string{"nonsense"}, "nonsense"},
	} {
		err := run(context.Background(), tc.args, lookup, io.Discard, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want it to name %s", tc.args, err, tc.want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	t.Parallel()
	lookup := func(string) (string, bool) { return "", false }
	for _, args := range [][]string{{}, {"help"}, {"--help"}, {"run", "--help"}, {"demo", "-h"}, {"version"}} {
		var out, errOut strings.Builder
		if err := run(context.Background(), args, lookup, &out, &errOut); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if out.Len()+errOut.Len() == 0 {
			t.Errorf("%v printed nothing", args)
		}
	}
}

// TestDemoOnce plays the demo's conversation: every step behaves.
func TestDemoOnce(t *testing.T) {
	var out, errOut syncBuffer
	lookup := func(string) (string, bool) { return "", false }
	if err := run(context.Background(), []string{"demo", "--once"}, lookup, &out, &errOut); err != nil {
		t.Fatalf("demo: %v\n%s\n%s", err, out.String(), errOut.String())
	}
	transcript := out.String()
	if strings.Contains(transcript, "✗") || strings.Count(transcript, "✓") != 5 {
		t.Fatalf("transcript:\n%s", transcript)
	}
	for _, want := range []string{"Hello, World!", "refused", "401", "once", "itself"} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q:\n%s", want, transcript)
		}
	}
}
