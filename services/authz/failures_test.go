package authz

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

// TestLookupFailureNeverAllows: while Webex fails (5xx or no answer in
// time) the message is not allowed, nor dropped; once Webex recovers it
// passes.
func TestLookupFailureNeverAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault webexsim.Fault
	}{
		{"server error", webexsim.Fault{Status: 503}},
		{"timeout", webexsim.Fault{Latency: 2 * time.Second}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			cfg := w.config()
			cfg.Webex.Timeout = 300 * time.Millisecond
			w.start(t, cfg)
			alice := w.person("alice@example.com", "", "person")
			w.sim.SetFault(webexsim.OpGetPerson, tc.fault)
			w.send(t, w.post(t, alice, "hi"), "")
			waitFor(t, "retries", func() bool { return w.sim.Calls(webexsim.OpGetPerson) >= 3 })
			if n := len(w.authorized(t)); n != 0 {
				t.Fatalf("%d messages allowed while Webex failed", n)
			}
			if n := len(w.deadLetters(t)); n != 0 {
				t.Fatalf("%d dead letters before the retry limit", n)
			}
			w.sim.ClearFaults()
			waitFor(t, "allowed after recovery", func() bool { return len(w.authorized(t)) == 1 })
		})
	}
}

// TestRateLimitRetryAfter: after a 429 with Retry-After, Webex is not asked
// again before that time has passed.
func TestRateLimitRetryAfter(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.start(t, w.config())
	alice := w.person("alice@example.com", "", "person")
	w.sim.SetFault(webexsim.OpGetPerson, webexsim.Fault{Status: 429, RetryAfter: 2, Times: 1})
	w.send(t, w.post(t, alice, "hi"), "")
	waitFor(t, "allowed after the rate limit", func() bool { return len(w.authorized(t)) == 1 })
	w.mu.Lock()
	calls := append([]time.Time(nil), w.personCalls...)
	w.mu.Unlock()
	if len(calls) != 2 {
		t.Fatalf("person calls = %d, want 2 (the 429, then the retry)", len(calls))
	}
	if gap := calls[1].Sub(calls[0]); gap < 2*time.Second {
		t.Fatalf("retried %v after a 429 with Retry-After: 2", gap)
	}
}

// TestIgnoredAndDenied: the bot's own messages and other bots are dropped,
// strangers are denied with one audit line, events that are not new
// messages are ignored, and none reaches the responder.
func TestIgnoredAndDenied(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfg := w.config()
	cfg.AllowedOrgIDs = "org-allowed"
	w.start(t, cfg)
	otherBot := w.person("helper@example.com", "", webex.PersonTypeBot)
	stranger := w.person("mallory@evil.test", "org-evil", "person")
	bot := w.sim.Bot()

	own, err := w.sim.Post(webexsim.Post{PersonID: bot.ID, RoomType: webexsim.RoomGroup, Text: "my own reply"})
	if err != nil {
		t.Fatal(err)
	}
	w.send(t, own, "")
	w.send(t, w.post(t, otherBot, "beep"), "")
	// The payload's orgId is the webhook creator's: an allowed org there
	// must not let a stranger from another org in.
	w.send(t, w.post(t, stranger, "let me in"), "org-allowed")
	w.publish(t, "memberships", "created", "membership-1", []byte(`{"resource":"memberships","event":"created","data":{"id":"membership-1"}}`))
	w.publish(t, "messages", "deleted", "gone-1", []byte(`{"resource":"messages","event":"deleted","data":{"id":"gone-1"}}`))

	waitFor(t, "every event decided", func() bool {
		return w.decisions(decisionIgnore, reasonSelf) == 1 && w.decisions(decisionIgnore, reasonBot) == 1 &&
			w.decisions(decisionDeny, reasonNotAllowed) == 1 && w.decisions(decisionIgnore, reasonNotMessage) == 2
	})
	if n := len(w.authorized(t)); n != 0 {
		t.Fatalf("%d messages forwarded, want none", n)
	}
	logs := w.log.String()
	var audit []string
	for line := range strings.SplitSeq(logs, "\n") {
		if strings.Contains(line, `"audit":true`) {
			audit = append(audit, line)
		}
	}
	if len(audit) != 1 {
		t.Fatalf("audit lines = %d, want 1:\n%s", len(audit), strings.Join(audit, "\n"))
	}
	for _, want := range []string{"mallory@evil.test", stranger.ID, `"reason":"not_allowed"`, `"room_id"`} {
		if !strings.Contains(audit[0], want) {
			t.Errorf("audit line lacks %s: %s", want, audit[0])
		}
	}
	if strings.Contains(logs, webexsim.DefaultToken) {
		t.Error("the token is in the logs")
	}
}

// TestUndecidableGoesToDeadLetter: an event that keeps failing past the
// redelivery limit is dead-lettered with its reason, not dropped.
func TestUndecidableGoesToDeadLetter(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfg := w.config()
	cfg.MaxDeliver = 3
	w.start(t, cfg)
	alice := w.person("alice@example.com", "", "person")
	w.sim.SetFault(webexsim.OpGetPerson, webexsim.Fault{Status: 502})
	m := w.post(t, alice, "hi")
	w.send(t, m, "")
	waitFor(t, "dead letter", func() bool { return len(w.deadLetters(t)) == 1 })
	dl := w.deadLetters(t)[0]
	if dl.GetStage() != "authz" || dl.GetDeliveries() != 3 || !strings.Contains(dl.GetReason(), "502") {
		t.Errorf("dead letter = stage %q deliveries %d reason %q", dl.GetStage(), dl.GetDeliveries(), dl.GetReason())
	}
	var ev sparkguardv1.WebhookEvent
	if err := proto.Unmarshal(dl.GetPayload(), &ev); err != nil || ev.GetDataId() != m.ID {
		t.Errorf("dead letter payload is not the event: %v %v", err, ev.GetDataId())
	}
	if n := len(w.authorized(t)); n != 0 {
		t.Fatalf("%d allowed", n)
	}
	// The event left the work queue: it is settled, not stuck.
	waitFor(t, "webhook stream empty", func() bool {
		s, _ := w.js.Stream(context.Background(), bus.StreamWebhooks)
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
}

// TestReplicaKilledMidMessage: a replica that dies while deciding loses
// nothing: the event goes to the other replica.
func TestReplicaKilledMidMessage(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	cfg := w.config()
	doomed := w.start(t, cfg)
	alice := w.person("alice@example.com", "", "person")
	w.sim.SetFault(webexsim.OpGetPerson, webexsim.Fault{Latency: time.Second, Times: 1})
	w.send(t, w.post(t, alice, "hi"), "")
	waitFor(t, "the doomed replica to take the event", func() bool { return w.sim.Calls(webexsim.OpGetPerson) == 1 })
	doomed.kill()
	w.start(t, cfg)
	waitFor(t, "the other replica to allow it", func() bool { return len(w.authorized(t)) == 1 })
	if n := len(w.deadLetters(t)); n != 0 {
		t.Fatalf("%d dead letters", n)
	}
}
