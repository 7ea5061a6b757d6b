package webexsim

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
)

func TestFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		op        string
		method    string
		path      string
		fault     Fault
		want      int
		retryHdr  string
		untouched string // another op's path that must still answer 200
	}{
		{"429 with Retry-After", OpGetMe, http.MethodGet, "/v1/people/me", Fault{Status: 429, RetryAfter: 7}, 429, "7", "/v1/webhooks"},
		{"423 with Retry-After", OpListWebhooks, http.MethodGet, "/v1/webhooks", Fault{Status: 423, RetryAfter: 3}, 423, "3", "/v1/people/me"},
		{"503 without Retry-After", OpGetMe, http.MethodGet, "/v1/people/me", Fault{Status: 503, RetryAfter: 3}, 503, "", "/v1/webhooks"},
		{"500", OpListWebhooks, http.MethodGet, "/v1/webhooks", Fault{Status: 500}, 500, "", "/v1/people/me"},
		{"404 on create", OpCreateMessage, http.MethodPost, "/v1/messages", Fault{Status: 404}, 404, "", "/v1/people/me"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, Options{})
			e.sim.SetFault(tc.op, tc.fault)
			for range 3 {
				resp, body := e.call(t, tc.method, tc.path, webex.MessageRequest{})
				checkError(t, resp, body, tc.want)
				if got := resp.Header.Get("Retry-After"); got != tc.retryHdr {
					t.Errorf("Retry-After %q, want %q", got, tc.retryHdr)
				}
			}
			e.mustCall(t, http.StatusOK, http.MethodGet, tc.untouched, nil, nil)
			if got := e.sim.Calls(tc.op); got != 3 {
				t.Errorf("Calls(%s) = %d, want 3", tc.op, got)
			}
			e.sim.ClearFaults()
			resp, body := e.call(t, tc.method, tc.path, webex.MessageRequest{})
			if resp.StatusCode == tc.want {
				t.Errorf("after ClearFaults: status %d; body %s", resp.StatusCode, body)
			}
		})
	}
}

func TestFaultTimes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.sim.SetFault(OpGetMe, Fault{Status: http.StatusTooManyRequests, RetryAfter: 1, Times: 2})
	var got []int
	for range 4 {
		resp, _ := e.call(t, http.MethodGet, "/v1/people/me", nil)
		got = append(got, resp.StatusCode)
	}
	want := []int{429, 429, 200, 200}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
	if n := e.sim.Calls(OpGetMe); n != 4 {
		t.Errorf("Calls(get_me) = %d, want 4", n)
	}

	// A zero Fault clears; SetFault replaces.
	e.sim.SetFault(OpGetMe, Fault{Status: 500})
	e.sim.SetFault(OpGetMe, Fault{Status: 502, Times: 1})
	if resp, _ := e.call(t, http.MethodGet, "/v1/people/me", nil); resp.StatusCode != 502 {
		t.Errorf("replaced fault: status %d, want 502", resp.StatusCode)
	}
	e.sim.SetFault(OpGetMe, Fault{Status: 500})
	e.sim.SetFault(OpGetMe, Fault{})
	if resp, _ := e.call(t, http.MethodGet, "/v1/people/me", nil); resp.StatusCode != 200 {
		t.Errorf("cleared fault: status %d, want 200", resp.StatusCode)
	}
}

func TestFaultLatency(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	e.sim.SetFault(OpGetPerson, Fault{Latency: time.Minute, Times: 1})

	// The latency outlasts a short client deadline; the call is counted
	// and the latency used up.
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/v1/people/"+e.sim.Bot().ID, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	_, err := e.srv.Client().Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call under a minute's latency: err %v, want deadline exceeded", err)
	}
	e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/people/"+e.sim.Bot().ID, nil, nil)
	waitFor(t, "both calls counted", func() bool { return e.sim.Calls(OpGetPerson) == 2 })

	// Latency with a status answers the status after the delay.
	e.sim.SetFault(OpGetPerson, Fault{Latency: time.Millisecond, Status: 503})
	resp, body := e.call(t, http.MethodGet, "/v1/people/"+e.sim.Bot().ID, nil)
	checkError(t, resp, body, 503)
}

func TestCallsCountsEveryOperation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	alice := e.addPerson("alice@example.com")
	room := e.sim.NewRoomID()
	m, err := e.sim.Post(Post{PersonID: alice.ID, RoomID: room, Text: "x", MentionBot: true})
	if err != nil {
		t.Fatal(err)
	}
	wh := e.sim.AddWebhook(webex.Webhook{Name: "w", TargetURL: "https://x.example", Resource: "messages", Event: "created"})
	calls := []struct {
		op, method, path string
		body             any
	}{
		{OpGetMe, http.MethodGet, "/v1/people/me", nil},
		{OpGetPerson, http.MethodGet, "/v1/people/" + alice.ID, nil},
		{OpGetMessage, http.MethodGet, "/v1/messages/" + m.ID, nil},
		{OpListMessages, http.MethodGet, "/v1/messages?mentionedPeople=me&roomId=" + room, nil},
		{OpCreateMessage, http.MethodPost, "/v1/messages", webex.MessageRequest{RoomID: room, Text: "y"}},
		{OpListWebhooks, http.MethodGet, "/v1/webhooks", nil},
		{OpGetWebhook, http.MethodGet, "/v1/webhooks/" + wh.ID, nil},
		{OpCreateWebhook, http.MethodPost, "/v1/webhooks", webex.WebhookRequest{Name: "n", TargetURL: "https://x.example", Resource: "messages", Event: "created"}},
		{OpUpdateWebhook, http.MethodPut, "/v1/webhooks/" + wh.ID, webex.WebhookUpdate{Name: "n", TargetURL: "https://x.example"}},
		{OpDeleteWebhook, http.MethodDelete, "/v1/webhooks/" + wh.ID, nil},
	}
	for i, c := range calls {
		// Each op is called i+1 times, once without a token.
		e.callWith(t, "", c.method, c.path, c.body)
		for range i {
			e.call(t, c.method, c.path, c.body)
		}
	}
	for i, c := range calls {
		if got := e.sim.Calls(c.op); got != i+1 {
			t.Errorf("Calls(%s) = %d, want %d", c.op, got, i+1)
		}
	}
	if got := e.sim.Calls("no_such_op"); got != 0 {
		t.Errorf("Calls(no_such_op) = %d", got)
	}
}
