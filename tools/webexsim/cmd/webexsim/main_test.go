package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

// env is a fake environment for run.
func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestRunServesAndShutsDown(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	out, w := io.Pipe()
	errc := make(chan error, 1)
	go func() {
		errc <- run(ctx, []string{
			"-addr", "127.0.0.1:0", "-bot-name", "Echo", "-person", "alice@example.com",
			"-person", "bob@other.example:ORG-B", "-fault", "create_message=429:3", "-latency", "get_person=1ms",
		}, env(map[string]string{"WEBEX_ACCESS_TOKEN": "env-token"}), w)
		w.Close()
	}()

	lines := bufio.NewScanner(out)
	var base string
	people := map[string]string{}
	for lines.Scan() {
		line := lines.Text()
		if m := regexp.MustCompile(`^webexsim listening on (http://127\.0\.0\.1:\d+)/v1 `).FindStringSubmatch(line); m != nil {
			base = m[1]
		}
		if m := regexp.MustCompile(`^person (\S+) id=(\S+) orgId=(\S+)$`).FindStringSubmatch(line); m != nil {
			people[m[1]] = m[3]
		}
		if strings.HasPrefix(line, "fault get_person") {
			break // the last line printed before serving
		}
	}
	go func() { _, _ = io.Copy(io.Discard, out) }() // keep run's logging unblocked
	if base == "" {
		t.Fatal("run did not print its base URL")
	}
	if people["bob@other.example"] != "ORG-B" || people["alice@example.com"] == "" {
		t.Errorf("seeded people %v", people)
	}

	get := func(path, token string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, b
	}
	resp, body := get("/v1/people/me", "env-token")
	var me webex.Person
	if err := json.Unmarshal(body, &me); err != nil || resp.StatusCode != http.StatusOK || me.DisplayName != "Echo" {
		t.Errorf("GET /v1/people/me: %d %s", resp.StatusCode, body)
	}
	if resp, _ := get("/v1/people/me", webexsim.DefaultToken); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("default token accepted although WEBEX_ACCESS_TOKEN is set: %d", resp.StatusCode)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, base+"/v1/messages", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer env-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "3" {
		t.Errorf("faulted POST /v1/messages: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}

	addr := strings.TrimPrefix(base, "http://")
	if err := run(t.Context(), []string{"healthcheck", "-addr", addr}, env(nil), io.Discard); err != nil {
		t.Errorf("healthcheck of a running emulator: %v", err)
	}

	cancel()
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("run after cancel: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if err := run(t.Context(), []string{"healthcheck", "-addr", addr, "-timeout", "1s"}, env(nil), io.Discard); err == nil {
		t.Error("healthcheck of a stopped emulator succeeded")
	}
}

func TestParseFlags(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		args      []string
		env       map[string]string
		wantErr   bool
		wantToken string
		check     func(t *testing.T, c config)
	}{
		{name: "defaults", wantToken: webexsim.DefaultToken, check: func(t *testing.T, c config) {
			if c.addr != defaultAddr || c.failAfter != webexsim.DefaultDeliveryFailuresBeforeInactive || c.botName != webexsim.DefaultBotName {
				t.Errorf("config %+v", c)
			}
		}},
		{name: "token from env", env: map[string]string{"WEBEX_ACCESS_TOKEN": "e"}, wantToken: "e"},
		{name: "token from a file", env: map[string]string{"WEBEX_ACCESS_TOKEN_FILE": tokenFile(t, "from-file\n")}, wantToken: "from-file"},
		{name: "token file missing", env: map[string]string{"WEBEX_ACCESS_TOKEN_FILE": "/nonexistent/token"}, wantErr: true},
		{name: "token flag wins", args: []string{"-token", "f"}, env: map[string]string{"WEBEX_ACCESS_TOKEN": "e"}, wantToken: "f"},
		{name: "fault and latency merge", args: []string{"-fault", "get_me=429:5", "-latency", "get_me=2s", "-fail-after", "2"}, wantToken: webexsim.DefaultToken,
			check: func(t *testing.T, c config) {
				want := webexsim.Fault{Status: 429, RetryAfter: 5, Latency: 2 * time.Second}
				if c.faults["get_me"] != want || c.failAfter != 2 {
					t.Errorf("faults %+v, fail-after %d", c.faults, c.failAfter)
				}
			}},
		{name: "unknown op", args: []string{"-fault", "get_room=500"}, wantErr: true},
		{name: "bad status", args: []string{"-fault", "get_me=200"}, wantErr: true},
		{name: "bad retry", args: []string{"-fault", "get_me=429:soon"}, wantErr: true},
		{name: "bad latency", args: []string{"-latency", "get_me=fast"}, wantErr: true},
		{name: "bad person", args: []string{"-person", "alice"}, wantErr: true},
		{name: "bad fail-after", args: []string{"-fail-after", "0"}, wantErr: true},
		{name: "stray argument", args: []string{"serve"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := parseFlags(tc.args, env(tc.env), io.Discard)
			if (err != nil) != tc.wantErr {
				t.Fatalf("parseFlags(%q) error %v, want error %v", tc.args, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			if c.token != tc.wantToken {
				t.Errorf("token %q, want %q", c.token, tc.wantToken)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestRunFailsOnBadAddress(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), []string{"-addr", "256.0.0.1:0"}, env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Errorf("run on a bad address: %v", err)
	}
}

func tokenFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
