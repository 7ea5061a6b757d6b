package webhooks

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

func TestSync(t *testing.T) {
	t.Parallel()
	spec := Spec{TargetURL: testTarget, Filter: "roomType=direct", Secret: testSecret}
	tests := []struct {
		name string
		// setup registers webhooks and returns the id sync must keep
		// ("" when it must create a new one).
		setup   func(e *env) string
		spec    func(*Spec)
		action  string
		removed int
		writes  map[string]int // create, update and delete calls
		// noSecret: Webex holds no secret afterwards (else spec.Secret).
		noSecret bool
	}{
		{
			name:   "first sync creates",
			setup:  func(*env) string { return "" },
			action: ActionCreated,
			writes: map[string]int{webexsim.OpCreateWebhook: 1},
		},
		{
			name:   "same inputs make no write",
			setup:  func(e *env) string { return e.sim.AddWebhook(ourHook(nil)).ID },
			action: ActionUnchanged,
			writes: map[string]int{},
		},
		{
			name: "inactive is reactivated in place",
			setup: func(e *env) string {
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Status = webex.WebhookInactive })).ID
			},
			action: ActionReactivated,
			writes: map[string]int{webexsim.OpUpdateWebhook: 1},
		},
		{
			name: "new secret is applied in place",
			setup: func(e *env) string {
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Secret = "old-secret-never-printed" })).ID
			},
			action: ActionUpdated,
			writes: map[string]int{webexsim.OpUpdateWebhook: 1},
		},
		{
			name: "changed target URL is updated in place",
			setup: func(e *env) string {
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.TargetURL = "https://old.example.com/webhooks/webex" })).ID
			},
			action: ActionUpdated,
			writes: map[string]int{webexsim.OpUpdateWebhook: 1},
		},
		{
			name: "inactive with a changed target URL is updated and reactivated",
			setup: func(e *env) string {
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) {
					w.TargetURL, w.Status = "https://old.example.com/h", webex.WebhookInactive
				})).ID
			},
			action: ActionUpdated,
			writes: map[string]int{webexsim.OpUpdateWebhook: 1},
		},
		{
			name: "a secret Webex does not show is left as it is",
			setup: func(e *env) string {
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Secret = "" })).ID
			},
			action:   ActionUnchanged,
			writes:   map[string]int{},
			noSecret: true,
		},
		{
			name: "the same filter pairs in another order are the same filter",
			setup: func(e *env) string {
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Filter = "roomType=direct&mentionedPeople=me" })).ID
			},
			spec:   func(s *Spec) { s.Filter = "mentionedPeople=me&roomType=direct" },
			action: ActionUnchanged,
			writes: map[string]int{},
		},
		{
			name: "a new filter replaces",
			setup: func(e *env) string {
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Filter = "roomType=group" }))
				return ""
			},
			action: ActionReplaced,
			writes: map[string]int{webexsim.OpCreateWebhook: 1, webexsim.OpDeleteWebhook: 1},
		},
		{
			name:   "a removed filter replaces",
			setup:  func(e *env) string { e.sim.AddWebhook(ourHook(nil)); return "" },
			spec:   func(s *Spec) { s.Filter = "" },
			action: ActionReplaced,
			writes: map[string]int{webexsim.OpCreateWebhook: 1, webexsim.OpDeleteWebhook: 1},
		},
		{
			name: "another resource replaces",
			setup: func(e *env) string {
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Resource, w.Filter = "rooms", "" }))
				return ""
			},
			action: ActionReplaced,
			writes: map[string]int{webexsim.OpCreateWebhook: 1, webexsim.OpDeleteWebhook: 1},
		},
		{
			name: "duplicates are removed, the matching one kept",
			setup: func(e *env) string {
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Status = webex.WebhookInactive }))
				keep := e.sim.AddWebhook(ourHook(nil)).ID
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.TargetURL = "https://old.example.com/h" }))
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Filter = "roomType=group" }))
				return keep
			},
			action:  ActionUnchanged,
			removed: 3,
			writes:  map[string]int{webexsim.OpDeleteWebhook: 3},
		},
		{
			name: "duplicates are removed, the kept one fixed",
			setup: func(e *env) string {
				keep := e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Secret = "old-secret-never-printed" })).ID
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Secret = "old-secret-never-printed" }))
				return keep
			},
			action:  ActionUpdated,
			removed: 1,
			writes:  map[string]int{webexsim.OpUpdateWebhook: 1, webexsim.OpDeleteWebhook: 1},
		},
		{
			name: "duplicates none of which can be kept are replaced",
			setup: func(e *env) string {
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Filter = "roomType=group" }))
				e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Filter = "" }))
				return ""
			},
			action:  ActionReplaced,
			removed: 1,
			writes:  map[string]int{webexsim.OpCreateWebhook: 1, webexsim.OpDeleteWebhook: 2},
		},
		{
			name: "another name is another deployment",
			setup: func(e *env) string {
				return e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Name = "echo-prod" })).ID
			},
			spec:   func(s *Spec) { s.Name = "echo-prod" },
			action: ActionUnchanged,
			writes: map[string]int{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.addForeign()
			keepID := tc.setup(e)
			spec := spec
			if tc.spec != nil {
				tc.spec(&spec)
			}
			name := cmp.Or(spec.Name, DefaultName)
			before, othersBefore := e.named(name)
			var logs logBuffer

			res, err := Sync(t.Context(), e.client, spec, newLogger(&logs))
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if res.Action != tc.action || res.Removed != tc.removed {
				t.Errorf("Result = %s, removed %d; want %s, removed %d", res.Action, res.Removed, tc.action, tc.removed)
			}
			for _, op := range writeOps {
				if got := e.sim.Calls(op); got != tc.writes[op] {
					t.Errorf("%s calls = %d, want %d", op, got, tc.writes[op])
				}
			}

			ours, othersAfter := e.named(name)
			if !slices.Equal(othersAfter, othersBefore) {
				t.Errorf("other webhooks changed:\nbefore %+v\nafter  %+v", othersBefore, othersAfter)
			}
			if len(ours) != 1 {
				t.Fatalf("webhooks named %q after sync = %d, want 1: %+v", name, len(ours), ours)
			}
			got := ours[0]
			wantSecret := spec.Secret
			if tc.noSecret {
				wantSecret = ""
			}
			if got.TargetURL != spec.TargetURL || !sameFilter(got.Filter, spec.Filter) || got.Secret != wantSecret ||
				got.Resource != "messages" || got.Event != "created" || got.Status != webex.WebhookActive {
				t.Errorf("webhook = %+v, want target %s, filter %q, messages/created, active, the secret", got, spec.TargetURL, spec.Filter)
			}
			switch {
			case keepID != "" && got.ID != keepID:
				t.Errorf("kept webhook %s, want %s (changed in place)", got.ID, keepID)
			case keepID == "" && slices.ContainsFunc(before, func(w webex.Webhook) bool { return w.ID == got.ID }):
				t.Errorf("kept old webhook %s, want a new one", got.ID)
			}
			if res.Webhook.ID != got.ID || res.Webhook.Secret != "" {
				t.Errorf("Result.Webhook = %+v, want id %s and no secret", res.Webhook, got.ID)
			}
			assertNoLeak(t, "log", logs.String(), "old-secret-never-printed")
			assertNoLeak(t, "result", fmt.Sprintf("%+v", res), "old-secret-never-printed")

			// Whatever the first run fixed, a second one has nothing to do.
			writes := e.calls(writeOps...)
			res, err = Sync(t.Context(), e.client, spec, nil)
			if err != nil || res.Action != ActionUnchanged || res.Removed != 0 {
				t.Errorf("second Sync = %+v, %v; want unchanged", res, err)
			}
			if after := e.calls(writeOps...); !maps.Equal(after, writes) {
				t.Errorf("second Sync wrote: calls %v, before %v", after, writes)
			}
		})
	}
}

func TestSyncLeavesOtherWebhooksAlone(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		ours   bool // a webhook of ours, to be updated, registered after the foreign ones
		action string
	}{
		{name: "ours on the last page is found and updated", ours: true, action: ActionUpdated},
		{name: "without ours one is created", ours: false, action: ActionCreated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			for i := range 150 {
				e.sim.AddWebhook(webex.Webhook{Name: fmt.Sprintf("other-%03d", i), TargetURL: fmt.Sprintf("https://h%d.example.com/", i),
					Resource: "messages", Event: "created", Secret: fmt.Sprintf("s%d", i)})
			}
			var oursID string
			if tc.ours {
				oursID = e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.TargetURL = "https://old.example.com/h" })).ID
			}
			_, before := e.named(DefaultName)

			res, err := Sync(t.Context(), e.client, Spec{TargetURL: testTarget, Filter: "roomType=direct", Secret: testSecret}, nil)
			if err != nil {
				t.Fatalf("Sync: %v", err)
			}
			if res.Action != tc.action {
				t.Errorf("Action = %s, want %s", res.Action, tc.action)
			}
			if n := e.sim.Calls(webexsim.OpListWebhooks); n < 2 {
				t.Errorf("list_webhooks calls = %d, want every page (≥ 2)", n)
			}
			ours, after := e.named(DefaultName)
			if len(before) != 150 || !slices.Equal(after, before) {
				t.Errorf("other webhooks changed: %d before, %d after", len(before), len(after))
			}
			if len(ours) != 1 || ours[0].TargetURL != testTarget || (tc.ours && ours[0].ID != oursID) {
				t.Errorf("ours = %+v", ours)
			}
		})
	}
}

func TestSyncRateLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		op      string
		fault   webexsim.Fault
		timeout time.Duration // of the context, 0 for none
		wantErr error         // nil: success; errAny: some error
		calls   int           // calls of op
		minTime time.Duration
	}{
		{name: "429 while listing is waited out", op: webexsim.OpListWebhooks,
			fault: webexsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 1}, calls: 2, minTime: 900 * time.Millisecond},
		{name: "429 without Retry-After waits a second", op: webexsim.OpListWebhooks,
			fault: webexsim.Fault{Status: http.StatusTooManyRequests, Times: 1}, calls: 2, minTime: 900 * time.Millisecond},
		{name: "429 while creating is waited out", op: webexsim.OpCreateWebhook,
			fault: webexsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 1}, calls: 2, minTime: 900 * time.Millisecond},
		{name: "endless 429 gives up after a few retries", op: webexsim.OpListWebhooks,
			fault: webexsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 1}, wantErr: errAny, calls: maxRateLimitRetries + 1},
		{name: "the context ends the wait", op: webexsim.OpListWebhooks,
			fault:   webexsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 30},
			timeout: 300 * time.Millisecond, wantErr: context.DeadlineExceeded, calls: 1},
		{name: "other errors fail at once", op: webexsim.OpListWebhooks,
			fault: webexsim.Fault{Status: http.StatusInternalServerError}, wantErr: errAny, calls: 1},
		{name: "a failed create deletes nothing", op: webexsim.OpCreateWebhook,
			fault: webexsim.Fault{Status: http.StatusBadRequest}, wantErr: errAny, calls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			// A filter change: create, then delete the old one.
			old := e.sim.AddWebhook(ourHook(func(w *webex.Webhook) { w.Filter = "roomType=group" }))
			e.sim.SetFault(tc.op, tc.fault)
			ctx := t.Context()
			if tc.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.timeout)
				defer cancel()
			}

			start := time.Now()
			res, err := Sync(ctx, e.client, Spec{TargetURL: testTarget, Filter: "roomType=direct", Secret: testSecret}, nil)
			elapsed := time.Since(start)

			if got := e.sim.Calls(tc.op); got != tc.calls {
				t.Errorf("%s calls = %d, want %d", tc.op, got, tc.calls)
			}
			ours, _ := e.named(DefaultName)
			switch {
			case tc.wantErr == nil:
				if err != nil {
					t.Fatalf("Sync: %v", err)
				}
				if elapsed < tc.minTime {
					t.Errorf("Sync took %v, want at least the Retry-After (%v)", elapsed, tc.minTime)
				}
				if res.Action != ActionReplaced || len(ours) != 1 || ours[0].ID == old.ID {
					t.Errorf("Result %+v, ours %+v; want the old webhook replaced", res, ours)
				}
			default:
				if err == nil {
					t.Fatal("Sync succeeded, want an error")
				}
				if tc.wantErr != errAny && !errors.Is(err, tc.wantErr) {
					t.Errorf("error %v, want %v", err, tc.wantErr)
				}
				// Nothing is deleted unless its replacement exists.
				if e.sim.Calls(webexsim.OpDeleteWebhook) != 0 || len(ours) != 1 || ours[0].ID != old.ID {
					t.Errorf("after a failed sync ours = %+v, delete calls %d; want the old one kept", ours, e.sim.Calls(webexsim.OpDeleteWebhook))
				}
			}
		})
	}
}

// errAny stands for any error in test tables.
var errAny = errors.New("any error")

func TestSyncRefusesBadSpecsBeforeAnyCall(t *testing.T) {
	t.Parallel()
	good := Spec{TargetURL: testTarget, Filter: "roomType=direct", Secret: testSecret}
	with := func(f func(*Spec)) Spec { s := good; f(&s); return s }
	tests := []struct {
		name string
		spec Spec
		want string // in the error
	}{
		{"empty URL", with(func(s *Spec) { s.TargetURL = "" }), "empty"},
		{"relative path", with(func(s *Spec) { s.TargetURL = "/webhooks/webex" }), "absolute"},
		{"host without scheme", with(func(s *Spec) { s.TargetURL = "bot.example.com/webhooks/webex" }), "absolute"},
		{"scheme-relative", with(func(s *Spec) { s.TargetURL = "//bot.example.com/webhooks/webex" }), "absolute"},
		{"ftp", with(func(s *Spec) { s.TargetURL = "ftp://bot.example.com/x" }), "scheme"},
		{"websocket", with(func(s *Spec) { s.TargetURL = "wss://bot.example.com/x" }), "scheme"},
		{"opaque", with(func(s *Spec) { s.TargetURL = "https:bot.example.com" }), "absolute"},
		{"http to a public host", with(func(s *Spec) { s.TargetURL = "http://bot.example.com/webhooks/webex" }), "http is allowed only"},
		{"http to a private address", with(func(s *Spec) { s.TargetURL = "http://10.0.0.5:8080/webhooks/webex" }), "http is allowed only"},
		{"http to a localhost look-alike", with(func(s *Spec) { s.TargetURL = "http://localhost.example.com/" }), "http is allowed only"},
		{"user information", with(func(s *Spec) { s.TargetURL = "https://user:pass@bot.example.com/webhooks/webex" }), "user information"},
		{"empty host", with(func(s *Spec) { s.TargetURL = "https:///webhooks/webex" }), "no host"},
		{"port without host", with(func(s *Spec) { s.TargetURL = "https://:8443/webhooks/webex" }), "no host"},
		{"fragment", with(func(s *Spec) { s.TargetURL = "https://bot.example.com/h#x" }), "fragment"},
		{"space", with(func(s *Spec) { s.TargetURL = "https://bot.example.com/a b\n" }), "parse"},
		{"unknown filter key", with(func(s *Spec) { s.Filter = "hasFiles=true" }), "unknown key"},
		{"bad roomType", with(func(s *Spec) { s.Filter = "roomType=dm" }), "roomType must be direct or group"},
		{"mentionedPeople not me", with(func(s *Spec) { s.Filter = "mentionedPeople=someone" }), "mentionedPeople must be me"},
		{"filter without value", with(func(s *Spec) { s.Filter = "roomId=" }), "not key=value"},
		{"filter without key", with(func(s *Spec) { s.Filter = "=x" }), "not key=value"},
		{"filter with an empty pair", with(func(s *Spec) { s.Filter = "roomType=group&&mentionedPeople=me" }), "not key=value"},
		{"filter key twice", with(func(s *Spec) { s.Filter = "roomId=a&roomId=b" }), "twice"},
		{"filter value with a space", with(func(s *Spec) { s.Filter = "personEmail=a b@example.com" }), "spaces"},
		{"filter joined with commas", with(func(s *Spec) { s.Filter = "roomType=group,mentionedPeople=me" }), "holds spaces"},
		{"empty secret", with(func(s *Spec) { s.Secret = "" }), "secret is empty"},
		{"name with spaces", with(func(s *Spec) { s.Name = " sparkguard" }), "spaces"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.sim.AddWebhook(ourHook(nil))
			_, err := Sync(t.Context(), e.client, tc.spec, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Sync error = %v, want one containing %q", err, tc.want)
			}
			for op, n := range e.calls(allOps...) {
				if n != 0 {
					t.Errorf("%s calls = %d, want 0 (refused before any call)", op, n)
				}
			}
		})
	}
}

func TestValidateTargetURLAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, url string }{
		{"https", "https://bot.example.com/webhooks/webex"},
		{"https with port and query", "https://bot.example.com:8443/webhooks/webex?x=1"},
		{"upper-case scheme", "HTTPS://bot.example.com/webhooks/webex"},
		{"http to localhost", "http://localhost:8080/webhooks/webex"},
		{"http to 127.0.0.1", "http://127.0.0.1:8080/webhooks/webex"},
		{"http to another loopback", "http://127.0.0.2/webhooks/webex"},
		{"http to ::1", "http://[::1]:8080/webhooks/webex"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if err := ValidateTargetURL(tc.url); err != nil {
				t.Errorf("ValidateTargetURL(%q) = %v, want nil", tc.url, err)
			}
		})
	}
}
