package responder

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/bus/bustest"
	"github.com/sparkguard/sparkguard/platform/obs"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

func TestEcho(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	bot := h.sim.Bot()
	botUUID := personUUID(bot.ID)
	if botUUID == "" {
		t.Fatalf("emulator bot id %q has no uuid inside", bot.ID)
	}
	tests := []struct {
		name string
		post webexsim.Post
		// thread posts a parent message first and the test message as a
		// reply in its thread.
		thread bool
		// rewrite changes the message as GET /messages/{id} answers it.
		rewrite func(*webex.Message)
		want    string
	}{
		{
			name: "label is the display name",
			post: webexsim.Post{Text: "Hello World", MentionBot: true},
			want: "Hello World",
		},
		{
			name: "custom mention label, casing and characters kept",
			post: webexsim.Post{Text: "MiXeD CaSe ÄÖü ✓ 😀", MentionBot: true, MentionLabel: "Echo"},
			want: "MiXeD CaSe ÄÖü ✓ 😀",
		},
		{
			name: "html mention by the raw uuid",
			post: webexsim.Post{Text: "by uuid", MentionBot: true, MentionLabel: "Echo"},
			rewrite: func(m *webex.Message) {
				m.HTML = strings.ReplaceAll(m.HTML, bot.ID, botUUID)
			},
			want: "by uuid",
		},
		{
			name: "mention in the middle",
			post: webexsim.Post{Text: "placeholder", MentionBot: true, MentionLabel: "Echo"},
			rewrite: func(m *webex.Message) {
				m.Text = "please Echo say this"
				m.HTML = `<p>please <spark-mention data-object-type="person" data-object-id="` + bot.ID + `">Echo</spark-mention> say this</p>`
			},
			want: "please say this",
		},
		{
			name: "markdown characters are posted as text",
			post: webexsim.Post{Text: "**bold** _it_ <@all> [x](http://e.com)", MentionBot: true},
			want: "**bold** _it_ <@all> [x](http://e.com)",
		},
		{
			name: "direct message",
			post: webexsim.Post{Text: "Direct Words", RoomType: webexsim.RoomDirect},
			want: "Direct Words",
		},
		{
			name:   "thread reply keeps the parent",
			post:   webexsim.Post{Text: "in a thread", MentionBot: true},
			thread: true,
			want:   "in a thread",
		},
		{
			name: "long text cut at a three-byte character boundary",
			post: webexsim.Post{Text: "long", MentionBot: true},
			rewrite: func(m *webex.Message) {
				m.Text = bot.DisplayName + " " + strings.Repeat("€", 3000) + " end"
			},
			want: strings.Repeat("€", 2479), // 7437 bytes: one more would be 7440
		},
		{
			name: "long text cut at a four-byte character boundary",
			post: webexsim.Post{Text: "long", MentionBot: true},
			rewrite: func(m *webex.Message) {
				m.Text = bot.DisplayName + " " + strings.Repeat("😀", 2000)
			},
			want: strings.Repeat("😀", 1859), // 7436 bytes
		},
		{
			name: "bare mention gets help",
			post: webexsim.Post{Text: " ", MentionBot: true, MentionLabel: "Echo"},
			want: helpText,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := tt.post
			var parent webex.Message
			if p.RoomType != webexsim.RoomDirect {
				p.RoomID = h.sim.NewRoomID()
			}
			if tt.thread {
				parent = h.post(t, webexsim.Post{RoomID: p.RoomID, Text: "the thread's start"})
				p.ParentID = parent.ID
			}
			orig := h.post(t, p)
			if tt.rewrite != nil {
				h.api.rewrite(orig.ID, tt.rewrite)
			}
			h.publish(t, h.authorized(orig), "test:"+orig.ID)

			reply := h.waitReply(t, orig.RoomID)
			if reply.Text != tt.want {
				t.Errorf("reply text = %q (%d bytes), want %q (%d bytes)",
					abbreviate(reply.Text), len(reply.Text), abbreviate(tt.want), len(tt.want))
			}
			if reply.Markdown != "" {
				t.Errorf("reply was posted with markdown %q; want text only", reply.Markdown)
			}
			if reply.RoomID != orig.RoomID {
				t.Errorf("reply in room %q, want the original's %q", reply.RoomID, orig.RoomID)
			}
			if reply.ParentID != parent.ID {
				t.Errorf("reply parentId = %q, want %q", reply.ParentID, parent.ID)
			}
			// The record is written just after Webex accepts the reply.
			waitFor(t, "the reply recorded as sent", func() bool { return h.replyRecord(t, orig.ID) == replySent })
		})
	}
}

func abbreviate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func TestDeliveredTwicePostsOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// wait makes the second copy arrive only after the first is
		// answered; otherwise both arrive at once and race.
		wait bool
	}{
		{name: "after the first is answered", wait: true},
		{name: "both at once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{})
			orig := h.post(t, webexsim.Post{RoomID: h.sim.NewRoomID(), Text: "once only", MentionBot: true})
			rec := h.authorized(orig)
			h.publish(t, rec, "first:"+orig.ID)
			if tt.wait {
				h.waitReply(t, orig.RoomID)
			}
			// A different Nats-Msg-Id: the stream's duplicate window does
			// not catch it, as with a Webex redelivery outside it.
			h.publish(t, rec, "second:"+orig.ID)

			waitFor(t, "outcome duplicate", func() bool { return h.outcome(t, outcomeDuplicate) == 1 })
			if n := len(h.botReplies(orig.RoomID)); n != 1 {
				t.Errorf("%d replies, want 1", n)
			}
			if n := h.sim.Calls(webexsim.OpCreateMessage); n != 1 {
				t.Errorf("%d POST /messages, want 1", n)
			}
			// The first delivery counts its send just after recording it.
			waitFor(t, "outcome sent", func() bool { return h.outcome(t, outcomeSent) == 1 })
		})
	}
}

func TestRateLimitWaitsRetryAfter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.sim.SetFault(webexsim.OpCreateMessage, webexsim.Fault{Status: http.StatusTooManyRequests, RetryAfter: 2, Times: 1})
	orig := h.post(t, webexsim.Post{RoomID: h.sim.NewRoomID(), Text: "slow down", MentionBot: true})
	h.publish(t, h.authorized(orig), "test:"+orig.ID)

	reply := h.waitReply(t, orig.RoomID)
	if reply.Text != "slow down" {
		t.Errorf("reply %q", reply.Text)
	}
	times := h.api.creates()
	if len(times) != 2 {
		t.Fatalf("%d POST /messages, want 2 (rate limited, then accepted)", len(times))
	}
	if gap := times[1].Sub(times[0]); gap < 2*time.Second {
		t.Errorf("second POST /messages %v after the rate-limited one, want at least Retry-After 2s", gap)
	}
	if n := h.outcome(t, outcomeRetried); n < 1 {
		t.Errorf("outcome retried = %v, want at least 1", n)
	}
}

func TestTransientFailuresAreRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		configure func(*Config)
		fault     webexsim.Fault
		// clearAfterRetry clears the fault once a retry was counted
		// (for a fault without Times).
		clearAfterRetry bool
		wantCalls       int // POST /messages in all; 0 = do not check
		wantRetried     float64
	}{
		{
			name:        "503 twice then success",
			fault:       webexsim.Fault{Status: http.StatusServiceUnavailable, Times: 2},
			wantCalls:   3,
			wantRetried: 2,
		},
		{
			name: "slower than WEBEX_API_TIMEOUT until the fault is cleared",
			configure: func(c *Config) {
				c.Webex.Timeout = 500 * time.Millisecond
			},
			fault:           webexsim.Fault{Latency: 3 * time.Second},
			clearAfterRetry: true,
			wantRetried:     1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{configure: tt.configure})
			h.sim.SetFault(webexsim.OpCreateMessage, tt.fault)
			orig := h.post(t, webexsim.Post{RoomID: h.sim.NewRoomID(), Text: "try again", MentionBot: true})
			h.publish(t, h.authorized(orig), "test:"+orig.ID)
			if tt.clearAfterRetry {
				waitFor(t, "a retry", func() bool { return h.outcome(t, outcomeRetried) >= 1 })
				if n := len(h.botReplies(orig.RoomID)); n != 0 {
					t.Fatalf("%d replies while the API was failing", n)
				}
				h.sim.ClearFaults()
			}
			reply := h.waitReply(t, orig.RoomID)
			if reply.Text != "try again" {
				t.Errorf("reply %q", reply.Text)
			}
			waitFor(t, "outcome sent", func() bool { return h.outcome(t, outcomeSent) == 1 })
			if n := len(h.botReplies(orig.RoomID)); n != 1 {
				t.Errorf("%d replies, want 1", n)
			}
			if tt.wantCalls > 0 {
				if n := h.sim.Calls(webexsim.OpCreateMessage); n != tt.wantCalls {
					t.Errorf("%d POST /messages, want %d", n, tt.wantCalls)
				}
			}
			if n := h.outcome(t, outcomeRetried); n < tt.wantRetried {
				t.Errorf("outcome retried = %v, want at least %v", n, tt.wantRetried)
			}
			if n := h.outcome(t, outcomeDeadLettered); n != 0 {
				t.Errorf("outcome dead_lettered = %v, want 0", n)
			}
		})
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		configure func(*Config)
		fault     webexsim.Fault
		// record builds what is published; nil publishes the record of a
		// real message mentioning the bot.
		record func(h *harness) []byte
		// wantReason must be in the dead letter's reason.
		wantReason []string
		wantCalls  int // POST /messages
	}{
		{
			name: "message gone (404)",
			record: func(h *harness) []byte {
				rec := h.authorized(webex.Message{ID: unknownMessageID(), RoomID: h.sim.NewRoomID(), RoomType: "group"})
				return mustMarshal(rec)
			},
			wantReason: []string{"permanent", "fetch message", "404"},
		},
		{
			name:       "post forbidden (403)",
			fault:      webexsim.Fault{Status: http.StatusForbidden},
			wantReason: []string{"permanent", "post reply", "403"},
			wantCalls:  1,
		},
		{
			name:       "post refused (400)",
			fault:      webexsim.Fault{Status: http.StatusBadRequest},
			wantReason: []string{"permanent", "post reply", "400"},
			wantCalls:  1,
		},
		{
			name:       "record cannot be decoded",
			record:     func(*harness) []byte { return []byte{0xff, 0xff, 0xff} },
			wantReason: []string{"permanent", "decode authorized message"},
		},
		{
			name: "record without a message id",
			record: func(*harness) []byte {
				return mustMarshal(&sparkguardv1.AuthorizedMessage{RoomId: "r", RequestId: "req-empty"})
			},
			wantReason: []string{"permanent", "no message id"},
		},
		{
			name:       "persistent 503 past the redelivery limit",
			configure:  func(c *Config) { c.MaxDeliver = 2 },
			fault:      webexsim.Fault{Status: http.StatusServiceUnavailable},
			wantReason: []string{"gave up after 2 deliveries", "503"},
			wantCalls:  2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{configure: tt.configure})
			if tt.fault != (webexsim.Fault{}) {
				h.sim.SetFault(webexsim.OpCreateMessage, tt.fault)
			}
			var data []byte
			var orig webex.Message
			if tt.record != nil {
				data = tt.record(h)
				h.publishRaw(t, data, "test:"+tt.name, "req-dead")
			} else {
				orig = h.post(t, webexsim.Post{RoomID: h.sim.NewRoomID(), Text: "doomed", MentionBot: true})
				data = h.publish(t, h.authorized(orig), "test:"+orig.ID)
			}

			waitFor(t, "outcome dead_lettered", func() bool { return h.outcome(t, outcomeDeadLettered) == 1 })
			dls := h.deadLetters(t)
			if len(dls) != 1 {
				t.Fatalf("%d dead letters on %s, want 1", len(dls), bus.DeadLetterSubject("responder"))
			}
			dl := dls[0]
			for _, want := range tt.wantReason {
				if !strings.Contains(dl.GetReason(), want) {
					t.Errorf("dead letter reason %q does not mention %q", dl.GetReason(), want)
				}
			}
			if dl.GetStage() != "responder" || dl.GetSubject() != bus.SubjectAuthorized || string(dl.GetPayload()) != string(data) {
				t.Errorf("dead letter stage %q subject %q payload %x; want responder, %s and the published record",
					dl.GetStage(), dl.GetSubject(), dl.GetPayload(), bus.SubjectAuthorized)
			}
			if n := h.sim.Calls(webexsim.OpCreateMessage); n != tt.wantCalls {
				t.Errorf("%d POST /messages, want %d", n, tt.wantCalls)
			}
			if n := h.outcome(t, outcomeSent); n != 0 {
				t.Errorf("outcome sent = %v, want 0", n)
			}
			if orig.ID != "" {
				if n := len(h.botReplies(orig.RoomID)); n != 0 {
					t.Errorf("%d replies, want none", n)
				}
				// A failed post releases its claim: a replay of the dead
				// letter can post at once.
				if got := h.replyRecord(t, orig.ID); got != "" {
					t.Errorf("replies bucket holds %q after a failed post, want nothing", got)
				}
			}
		})
	}
}

func mustMarshal(rec *sparkguardv1.AuthorizedMessage) []byte {
	b, err := proto.Marshal(rec)
	if err != nil {
		panic(err)
	}
	return b
}

func TestClaimOfAnotherReplicaHoldsThePost(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	orig := h.post(t, webexsim.Post{RoomID: h.sim.NewRoomID(), Text: "claimed", MentionBot: true})

	// Another replica claimed the message and died before posting.
	ctx := context.Background()
	kv, err := h.js.KeyValue(ctx, bus.BucketReplies)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, replyKey(orig.ID), []byte(replyPending), jetstream.KeyTTL(h.resp.claimTTL)); err != nil {
		t.Fatal(err)
	}
	h.publish(t, h.authorized(orig), "test:"+orig.ID)

	waitFor(t, "a retry while the claim holds", func() bool { return h.outcome(t, outcomeRetried) >= 1 })
	if n := len(h.botReplies(orig.RoomID)); n != 0 {
		t.Fatalf("%d replies while another replica's claim holds, want none", n)
	}
	// The dead replica's claim expires, and the message is answered once.
	reply := h.waitReply(t, orig.RoomID)
	if reply.Text != "claimed" {
		t.Errorf("reply %q", reply.Text)
	}
	waitFor(t, "outcome sent", func() bool { return h.outcome(t, outcomeSent) == 1 })
	if n := h.sim.Calls(webexsim.OpCreateMessage); n != 1 {
		t.Errorf("%d POST /messages, want 1", n)
	}
}

func TestClaimTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		ackWait time.Duration
		want    time.Duration
	}{
		{"default ack wait", 30 * time.Second, time.Minute},
		{"whole seconds", 3 * time.Second, 6 * time.Second},
		{"rounded up", 1500 * time.Millisecond, 3 * time.Second},
		{"at least a second", 100 * time.Millisecond, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := claimTTL(tt.ackWait); got != tt.want {
				t.Errorf("claimTTL(%v) = %v, want %v", tt.ackWait, got, tt.want)
			}
		})
	}
	r := New(Config{Concurrency: 1, MaxDeliver: 1}, Deps{})
	if r.claimTTL != time.Minute {
		t.Errorf("claim TTL with the default ack wait = %v, want 1m", r.claimTTL)
	}
}

func TestConcurrency(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		concurrency int
		wantAtLeast int
		wantAtMost  int
	}{
		{name: "default 16 at once", concurrency: 16, wantAtLeast: 2, wantAtMost: 8},
		{name: "one at a time", concurrency: 1, wantAtLeast: 1, wantAtMost: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t, harnessOptions{configure: func(c *Config) { c.Concurrency = tt.concurrency }})
			h.sim.SetFault(webexsim.OpCreateMessage, webexsim.Fault{Latency: 300 * time.Millisecond})
			room := h.sim.NewRoomID()
			const messages = 8
			for i := range messages {
				orig := h.post(t, webexsim.Post{RoomID: room, Text: fmt.Sprintf("message %d", i), MentionBot: true})
				h.publish(t, h.authorized(orig), "test:"+orig.ID)
			}
			waitFor(t, "every reply", func() bool { return len(h.botReplies(room)) == messages })
			got := h.api.maxConcurrentCreates()
			if got < tt.wantAtLeast || got > tt.wantAtMost {
				t.Errorf("at most %d POST /messages in flight at once, want between %d and %d", got, tt.wantAtLeast, tt.wantAtMost)
			}
		})
	}
}

func TestPipelineLatency(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	if n := histogramCount(t, h.reg, "sparkguard_pipeline_latency_seconds"); n != 0 {
		t.Fatalf("latency count %d before any reply", n)
	}
	orig := h.post(t, webexsim.Post{RoomID: h.sim.NewRoomID(), Text: "how long", MentionBot: true})
	rec := h.authorized(orig)
	// The ingress received the webhook 3s ago: that counts, not just the
	// responder's part.
	rec.ReceivedAt = timestamppb.New(time.Now().Add(-3 * time.Second))
	h.publish(t, rec, "test:"+orig.ID)
	h.waitReply(t, orig.RoomID)

	waitFor(t, "a latency sample", func() bool { return histogramCount(t, h.reg, "sparkguard_pipeline_latency_seconds") == 1 })
	m := findMetric(t, h.reg, "sparkguard_pipeline_latency_seconds", nil)
	if sum := m.GetHistogram().GetSampleSum(); sum < 3 || sum > 60 {
		t.Errorf("latency %vs, want from the ingress's receive time (3s ago)", sum)
	}
}

// histogramCount is the sample count of an unlabelled histogram.
func histogramCount(t *testing.T, reg prometheus.Gatherer, name string) uint64 {
	t.Helper()
	m := findMetric(t, reg, name, nil)
	if m == nil {
		t.Fatalf("no histogram %s", name)
	}
	return m.GetHistogram().GetSampleCount()
}

func TestMetricsRegistered(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	first := New(Config{Concurrency: 1, MaxDeliver: 1}, Deps{Registry: reg})
	// The all-in-one runs two stages on one registry; a second responder
	// (or authz's worker metrics) must share, not clash.
	second := New(Config{Concurrency: 1, MaxDeliver: 1}, Deps{Registry: reg})
	first.metrics.replies.WithLabelValues(outcomeSent).Inc()
	if got := testutil.ToFloat64(second.metrics.replies.WithLabelValues(outcomeSent)); got != 1 {
		t.Errorf("second responder sees %v sent, want the shared 1", got)
	}
	if n := testutil.CollectAndCount(first.metrics.replies, "sparkguard_responder_replies_total"); n != len(outcomes) {
		t.Errorf("%d outcome series before any message, want all %d", n, len(outcomes))
	}
	for _, o := range []string{"sent", "duplicate", "retried", "dead_lettered"} {
		if findMetric(t, reg, "sparkguard_responder_replies_total", map[string]string{"outcome": o}) == nil {
			t.Errorf("outcome %q not exported before any message", o)
		}
	}
	if n, err := testutil.GatherAndCount(reg, "sparkguard_pipeline_latency_seconds"); err != nil || n != 1 {
		t.Errorf("latency histogram series = %d (%v), want 1", n, err)
	}
}

func TestRunSetsUpTheBus(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{configure: func(c *Config) { c.MaxDeliver = 7 }})
	ctx := context.Background()
	for _, name := range []string{bus.StreamAuthorized, bus.StreamDeadLetter} {
		if _, err := h.js.Stream(ctx, name); err != nil {
			t.Errorf("stream %s: %v", name, err)
		}
	}
	kv, err := h.js.KeyValue(ctx, bus.BucketReplies)
	if err != nil {
		t.Fatalf("bucket %s: %v", bus.BucketReplies, err)
	}
	status, err := kv.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if status.TTL() != 7*24*time.Hour {
		t.Errorf("bucket TTL %v, want 7 days", status.TTL())
	}
	cons, err := h.js.Consumer(ctx, bus.StreamAuthorized, bus.ConsumerResponder)
	if err != nil {
		t.Fatalf("consumer %s: %v", bus.ConsumerResponder, err)
	}
	info, err := cons.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.Durable != "responder" || info.Config.MaxDeliver != 8 || info.Config.AckWait != h.cfg.Worker.AckWait {
		t.Errorf("consumer durable %q max deliver %d ack wait %v; want responder, RESPONDER_MAX_DELIVER+1 = 8, %v",
			info.Config.Durable, info.Config.MaxDeliver, info.Config.AckWait, h.cfg.Worker.AckWait)
	}
	waitFor(t, "the pending gauge", func() bool {
		return findMetric(t, h.reg, "sparkguard_consumer_pending_messages", map[string]string{"consumer": "responder"}) != nil
	})

	if err := h.stop(); err != nil {
		t.Errorf("run after stop: %v", err)
	}
	if err := h.resp.Ready(ctx); err == nil {
		t.Error("ready after Run returned")
	}
}

func TestNotReadyUntilTheBotIsKnown(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{noWait: true, beforeStart: func(sim *webexsim.Sim) {
		sim.SetFault(webexsim.OpGetMe, webexsim.Fault{Status: http.StatusServiceUnavailable})
	}})
	waitFor(t, "a retried GET /people/me", func() bool { return h.sim.Calls(webexsim.OpGetMe) >= 2 })
	err := h.resp.Ready(context.Background())
	if err == nil || !strings.Contains(err.Error(), "bot not known") {
		t.Fatalf("Ready = %v while GET /people/me fails, want bot not known", err)
	}
	h.sim.ClearFaults()
	waitFor(t, "ready", func() bool { return h.resp.Ready(context.Background()) == nil })
}

func TestRunStopsCleanlyDuringSetUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{noWait: true, configure: func(c *Config) {
		c.Webex.APIURL = "http://127.0.0.1:1/v1" // nothing listens: GET /people/me keeps failing
	}})
	time.Sleep(200 * time.Millisecond)
	if err := h.resp.Ready(context.Background()); err == nil {
		t.Fatal("ready without the bot")
	}
	if err := h.stop(); err != nil {
		t.Errorf("Run = %v after its context ended during set-up, want nil", err)
	}
}

func TestLogsCarryRequestIDNeverTheToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	// One failure on the way, so that warnings are logged too.
	h.sim.SetFault(webexsim.OpGetMessage, webexsim.Fault{Status: http.StatusServiceUnavailable, Times: 1})
	room := h.sim.NewRoomID()

	fromHeader := h.post(t, webexsim.Post{RoomID: room, Text: "one", MentionBot: true})
	rec := h.authorized(fromHeader)
	rec.RequestId = "req-from-header"
	h.publish(t, rec, "test:1")

	fromRecord := h.post(t, webexsim.Post{RoomID: room, Text: "two", MentionBot: true})
	rec = h.authorized(fromRecord)
	rec.RequestId = "req-from-record"
	h.publishRaw(t, mustMarshal(rec), "test:2", "") // no header: the record's field

	waitFor(t, "both replies", func() bool { return len(h.botReplies(room)) == 2 })
	// The line is written last, after the metrics.
	waitFor(t, "both logged", func() bool { return strings.Count(h.logs.String(), `"msg":"reply sent"`) == 2 })
	logs := h.logs.String()
	if strings.Contains(logs, testToken) {
		t.Error("the token is in the logs")
	}
	sent := map[string]bool{}
	for line := range strings.Lines(logs) {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if entry["msg"] == "reply sent" {
			id, _ := entry["request_id"].(string)
			sent[id] = true
		}
	}
	for _, id := range []string{"req-from-header", "req-from-record"} {
		if !sent[id] {
			t.Errorf("no \"reply sent\" line with request_id %q in:\n%s", id, logs)
		}
	}
}

func TestService(t *testing.T) {
	t.Parallel()
	srv := bustest.StartServer(t, bustest.Options{})
	sim := webexsim.New(webexsim.Options{Token: testToken})
	hs := httptest.NewServer(sim.Handler())
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)
	sim.SetFault(webexsim.OpGetMe, webexsim.Fault{Status: http.StatusServiceUnavailable})

	log := slog.New(slog.DiscardHandler)
	nc, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, "responder-service-test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	reg := obs.NewRegistry("responder", "test")
	rt := &app.Runtime{Log: log, Registry: reg, Obs: obs.NewServer(reg, log), NC: nc, JS: js}
	cfg := testConfig(hs.URL + "/v1")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Service(&cfg)(ctx, rt) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	})
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		rt.Obs.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}

	waitFor(t, "a retried GET /people/me", func() bool { return sim.Calls(webexsim.OpGetMe) >= 2 })
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, "responder: bot not known") {
		t.Errorf("/readyz = %d %q while the bot is unknown, want 503 naming the responder", code, body)
	}
	sim.ClearFaults()
	waitFor(t, "/readyz 200", func() bool { code, _ := readyz(); return code == http.StatusOK })

	alice := sim.AddPerson(webex.Person{Emails: []string{"alice@example.com"}})
	orig, err := sim.Post(webexsim.Post{PersonID: alice.ID, RoomID: sim.NewRoomID(), Text: "wired", MentionBot: true})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{sim: sim, js: js}
	h.publish(t, h.authorized(orig), "test:"+orig.ID)
	if reply := h.waitReply(t, orig.RoomID); reply.Text != "wired" {
		t.Errorf("reply %q", reply.Text)
	}
	waitFor(t, "outcome sent", func() bool {
		return metricValue(t, reg, "sparkguard_responder_replies_total", map[string]string{"outcome": "sent"}) == 1
	})
	if got := metricValue(t, reg, "sparkguard_webex_api_requests_total", map[string]string{"operation": "create_message", "code": "200"}); got != 1 {
		t.Errorf("webex create_message 200 count = %v, want 1", got)
	}
	if got := metricValue(t, reg, "sparkguard_webex_api_requests_total", map[string]string{"operation": "get_me", "code": "503"}); got < 1 {
		t.Errorf("webex get_me 503 count = %v, want at least 1", got)
	}
}

func TestClaimWhilePosting(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	h.sim.SetFault(webexsim.OpCreateMessage, webexsim.Fault{Latency: time.Second})
	orig := h.post(t, webexsim.Post{RoomID: h.sim.NewRoomID(), Text: "claim me", MentionBot: true})
	h.publish(t, h.authorized(orig), "test:"+orig.ID)

	// While the post is under way the message is claimed, with a TTL so
	// that a replica dying now does not block the message for the bucket's
	// seven days.
	waitFor(t, "the claim", func() bool { return h.replyRecord(t, orig.ID) == replyPending })
	if ttl := h.recordTTL(t, orig.ID); ttl != h.resp.claimTTL.String() {
		t.Errorf("claim Nats-TTL %q, want the claim TTL %s", ttl, h.resp.claimTTL)
	}
	h.waitReply(t, orig.RoomID)
	waitFor(t, "the sent record", func() bool { return h.replyRecord(t, orig.ID) == replySent })
	if ttl := h.recordTTL(t, orig.ID); ttl != "" {
		t.Errorf("sent record Nats-TTL %q, want none (the bucket's TTL)", ttl)
	}
}

// recordTTL is the Nats-TTL header of the replies record of a message.
func (h *harness) recordTTL(t *testing.T, messageID string) string {
	t.Helper()
	ctx := context.Background()
	stream, err := h.js.Stream(ctx, "KV_"+bus.BucketReplies)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := stream.GetLastMsgForSubject(ctx, "$KV."+bus.BucketReplies+"."+replyKey(messageID))
	if err != nil {
		t.Fatal(err)
	}
	return raw.Header.Get(jetstream.MsgTTLHeader)
}

func TestInFlightWait(t *testing.T) {
	t.Parallel()
	r := New(Config{Concurrency: 1, MaxDeliver: 1, Worker: bus.WorkerConfig{AckWait: 10 * time.Second}}, Deps{})
	tests := []struct {
		name     string
		age      time.Duration
		min, max time.Duration
	}{
		{"owner may still be posting: until it must be done", 2 * time.Second, 7 * time.Second, 8 * time.Second},
		{"owner must be done: until the claim expires", 12 * time.Second, 7 * time.Second, 8 * time.Second},
		{"claim expired", 25 * time.Second, 0, 0},
		{"clock ahead", -time.Hour, 0, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var e *inFlightError
			if !errors.As(r.inFlight(time.Now().Add(-tt.age)), &e) {
				t.Fatal("not an inFlightError")
			}
			if e.RetryAfter() < tt.min || e.RetryAfter() > tt.max {
				t.Errorf("retry after %v, want between %v and %v", e.RetryAfter(), tt.min, tt.max)
			}
		})
	}
}
