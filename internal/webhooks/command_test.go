package webhooks

import (
	"bytes"
	"encoding/base64"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/sparkguard/sparkguard/platform/webex"
)

func TestCommandSync(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.addForeign()
	_, othersBefore := e.named(DefaultName)
	// The first secret signs; the second is still accepted by the ingress
	// during a rotation.
	lookup := e.environ(map[string]string{"WEBEX_WEBHOOK_SECRETS": " " + testSecret + " , old-secret-never-printed"})
	args := []string{"sync", "--target-url", testTarget, "--filter", "roomType=direct&mentionedPeople=me"}

	var out bytes.Buffer
	if err := Command(t.Context(), args, lookup, &out); err != nil {
		t.Fatalf("Command: %v\n%s", err, out.String())
	}
	ours, othersAfter := e.named(DefaultName)
	if len(ours) != 1 || ours[0].Secret != testSecret || ours[0].TargetURL != testTarget ||
		ours[0].Filter != "roomType=direct&mentionedPeople=me" || len(othersAfter) != len(othersBefore) {
		t.Fatalf("after sync: ours %+v, %d others", ours, len(othersAfter))
	}
	if !strings.Contains(out.String(), "created") || !strings.Contains(out.String(), ours[0].ID) {
		t.Errorf("output lacks the action or the id:\n%s", out.String())
	}
	assertNoLeak(t, "output", out.String(), "old-secret-never-printed")

	out.Reset()
	writes := e.calls(writeOps...)
	if err := Command(t.Context(), args, lookup, &out); err != nil {
		t.Fatalf("second Command: %v", err)
	}
	if !strings.Contains(out.String(), "unchanged") {
		t.Errorf("second run output:\n%s", out.String())
	}
	for op, n := range e.calls(writeOps...) {
		if n != writes[op] {
			t.Errorf("second run: %s calls %d, want %d", op, n, writes[op])
		}
	}
}

func TestCommandList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		setup   func(e *env) (ourID string)
		wantErr error // nil, ErrInactive or errAny
	}{
		{
			name:  "ours active, a foreign one inactive",
			setup: func(e *env) string { return e.sim.AddWebhook(ourHook(nil)).ID },
		},
		{
			name: "ours inactive",
			setup: func(e *env) string {
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Status = webex.WebhookInactive })).ID
			},
			wantErr: ErrInactive,
		},
		{
			name: "one of two of ours inactive",
			setup: func(e *env) string {
				e.sim.AddWebhook(ourHook(nil))
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Status = webex.WebhookInactive })).ID
			},
			wantErr: ErrInactive,
		},
		{
			name: "another name chosen with --name",
			args: []string{"--name", "echo-prod"},
			setup: func(e *env) string {
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Status = webex.WebhookInactive }))
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Name = "echo-prod" })).ID
			},
		},
		{
			name:    "none of ours",
			setup:   func(*env) string { return "" },
			wantErr: errAny,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.addForeign() // one of them inactive
			ourID := tc.setup(e)
			writes := e.calls(writeOps...)

			var out bytes.Buffer
			err := Command(t.Context(), append([]string{"list"}, tc.args...), e.environ(nil), &out)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("Command: %v\n%s", err, out.String())
			case tc.wantErr == errAny && (err == nil || errors.Is(err, ErrInactive)):
				t.Errorf("error = %v, want one other than ErrInactive", err)
			case tc.wantErr == ErrInactive && !errors.Is(err, ErrInactive):
				t.Errorf("error = %v, want ErrInactive", err)
			}
			text := out.String()
			assertNoLeak(t, "output", text, "foreign-secret-1", "foreign-secret-2")
			if err != nil {
				assertNoLeak(t, "error", err.Error())
			}

			lines := strings.Split(text, "\n")
			header := lines[0]
			for _, col := range []string{"ID", "NAME", "RESOURCE/EVENT", "FILTER", "TARGET", "STATUS"} {
				if !strings.Contains(header, col) {
					t.Errorf("header %q lacks %s", header, col)
				}
			}
			all := e.sim.Webhooks()
			if len(lines) < len(all)+1 {
				t.Fatalf("output has %d lines for %d webhooks:\n%s", len(lines), len(all), text)
			}
			name := DefaultName
			if len(tc.args) == 2 {
				name = tc.args[1]
			}
			statusCol := strings.Index(header, "STATUS")
			for _, w := range all {
				i := lineWith(lines, w.ID)
				if i < 0 {
					t.Errorf("no line for %s (%s):\n%s", w.ID, w.Name, text)
					continue
				}
				line := lines[i]
				if marked := strings.HasPrefix(line, "*"); marked != (w.Name == name) {
					t.Errorf("line %q: marked %v, want %v", line, marked, w.Name == name)
				}
				if got := strings.LastIndex(line, w.Status); got != statusCol {
					t.Errorf("line %q: status at column %d, header's STATUS at %d", line, got, statusCol)
				}
			}
			if ourID != "" && lineWith(lines, ourID) < 0 {
				t.Errorf("our webhook %s not listed", ourID)
			}
			if n := e.calls(writeOps...); !maps.Equal(n, writes) {
				t.Errorf("list wrote: %v", n)
			}
		})
	}
}

func TestCommandNewSecret(t *testing.T) {
	t.Parallel()
	var secrets []string
	for range 2 {
		var out bytes.Buffer
		if err := Command(t.Context(), []string{"new-secret"}, func(string) (string, bool) { return "", false }, &out); err != nil {
			t.Fatalf("Command: %v", err)
		}
		lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		last := lines[len(lines)-1]
		raw, err := base64.RawURLEncoding.DecodeString(last)
		if err != nil || len(raw) != 32 {
			t.Errorf("last line %q decodes to %d bytes (%v), want 32", last, len(raw), err)
		}
		secrets = append(secrets, last)
	}
	if secrets[0] == secrets[1] {
		t.Errorf("two runs gave the same secret %q", secrets[0])
	}
}

func TestCommandErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		args    []string
		env     map[string]string // over the default environment; "" removes
		want    []string          // each in the error
		wantOut string            // in the output
	}{
		{name: "no command", args: nil, want: []string{"sync", "list", "new-secret"}, wantOut: "Usage"},
		{name: "unknown command", args: []string{"purge"}, want: []string{`"purge"`, "sync", "list", "new-secret"}, wantOut: "Usage"},
		{name: "sync without WEBEX_WEBHOOK_SECRETS", args: []string{"sync", "--target-url", testTarget},
			env: map[string]string{"WEBEX_WEBHOOK_SECRETS": ""}, want: []string{"WEBEX_WEBHOOK_SECRETS"}},
		{name: "sync with only commas in WEBEX_WEBHOOK_SECRETS", args: []string{"sync", "--target-url", testTarget},
			env: map[string]string{"WEBEX_WEBHOOK_SECRETS": " , "}, want: []string{"WEBEX_WEBHOOK_SECRETS"}},
		{name: "sync without WEBEX_ACCESS_TOKEN", args: []string{"sync", "--target-url", testTarget},
			env: map[string]string{"WEBEX_ACCESS_TOKEN": ""}, want: []string{"WEBEX_ACCESS_TOKEN"}},
		{name: "sync without either", args: []string{"sync", "--target-url", testTarget},
			env: map[string]string{"WEBEX_ACCESS_TOKEN": "", "WEBEX_WEBHOOK_SECRETS": ""}, want: []string{"WEBEX_ACCESS_TOKEN", "WEBEX_WEBHOOK_SECRETS"}},
		{name: "list without WEBEX_ACCESS_TOKEN", args: []string{"list"},
			env: map[string]string{"WEBEX_ACCESS_TOKEN": ""}, want: []string{"WEBEX_ACCESS_TOKEN"}},
		{name: "sync without --target-url", args: []string{"sync"}, want: []string{"--target-url"}},
		{name: "sync with an http URL", args: []string{"sync", "--target-url", "http://bot.example.com/webhooks/webex"}, want: []string{"--target-url", "https"}},
		{name: "sync with a bad filter", args: []string{"sync", "--target-url", testTarget, "--filter", "roomType=dm"}, want: []string{"--filter", "roomType"}},
		{name: "sync with an empty name", args: []string{"sync", "--target-url", testTarget, "--name", ""}, want: []string{"--name"}},
		{name: "unknown flag", args: []string{"list", "--verbose"}, want: []string{"verbose"}},
		{name: "stray argument", args: []string{"sync", "--target-url", testTarget, "extra"}, want: []string{`"extra"`}},
		{name: "new-secret with an argument", args: []string{"new-secret", "now"}, want: []string{`"now"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			var out bytes.Buffer
			err := Command(t.Context(), tc.args, e.environ(tc.env), &out)
			if err == nil {
				t.Fatalf("Command succeeded:\n%s", out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(out.String(), tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, out.String())
			}
			assertNoLeak(t, "error", err.Error())
			assertNoLeak(t, "output", out.String())
			for op, n := range e.calls(allOps...) {
				if n != 0 {
					t.Errorf("%s calls = %d, want 0", op, n)
				}
			}
		})
	}
}

func TestCommandHelp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"help", []string{"help"}, "new-secret"},
		{"sync -h", []string{"sync", "-h"}, "-target-url"},
		{"list --help", []string{"list", "--help"}, "-name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out bytes.Buffer
			if err := Command(t.Context(), tc.args, func(string) (string, bool) { return "", false }, &out); err != nil {
				t.Errorf("Command: %v", err)
			}
			if !strings.Contains(out.String(), tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out.String())
			}
		})
	}
}

// lineWith returns the index of the first line containing s, or -1.
func lineWith(lines []string, s string) int {
	return slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, s) })
}
