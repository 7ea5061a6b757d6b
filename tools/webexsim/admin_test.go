package webexsim

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/sparkguard/sparkguard/platform/webex"
)

func TestAdminRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	bot := e.sim.Bot()
	admin := func(want int, method, path string, body, out any) {
		t.Helper()
		// The admin API takes no token.
		resp, b := e.callWith(t, "", method, path, body)
		if resp.StatusCode != want {
			t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, want, b)
		}
		if out != nil {
			mustUnmarshal(t, b, out)
		}
	}

	var alice webex.Person
	admin(http.StatusOK, http.MethodPost, "/admin/people", webex.Person{Emails: []string{"alice@example.com"}, DisplayName: "Alice"}, &alice)
	if idKind(alice.ID) != kindPeople || alice.Type != webex.PersonTypePerson || alice.OrgID != bot.OrgID {
		t.Errorf("POST /admin/people = %+v", alice)
	}
	var viaAPI webex.Person
	e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/people/"+alice.ID, nil, &viaAPI)
	if !equalPerson(viaAPI, alice) {
		t.Errorf("GET /v1/people = %+v, want %+v", viaAPI, alice)
	}

	e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/webhooks", webex.WebhookRequest{
		Name: "w", TargetURL: rc.url("/h"), Resource: "messages", Event: "created", Secret: "s",
	}, nil)
	var hooks items[webex.Webhook]
	admin(http.StatusOK, http.MethodGet, "/admin/webhooks", nil, &hooks)
	if len(hooks.Items) != 1 || hooks.Items[0].Secret != "s" {
		t.Errorf("GET /admin/webhooks = %+v", hooks.Items)
	}

	room := e.sim.NewRoomID()
	var m webex.Message
	admin(http.StatusOK, http.MethodPost, "/admin/messages", map[string]any{
		"personId": alice.ID, "roomId": room, "roomType": "group", "text": "hello", "mentionBot": true, "mentionLabel": "Echo",
	}, &m)
	if m.Text != "Echo hello" || m.PersonID != alice.ID || m.RoomID != room {
		t.Errorf("POST /admin/messages = %+v", m)
	}
	var reply webex.Message
	admin(http.StatusOK, http.MethodPost, "/admin/messages", map[string]any{
		"personEmail": "ALICE@example.com", "roomId": room, "parentId": m.ID, "text": "again", "mentionBot": true,
	}, &reply)
	if reply.ParentID != m.ID || reply.PersonID != alice.ID {
		t.Errorf("reply by email = %+v", reply)
	}
	var msgs items[webex.Message]
	admin(http.StatusOK, http.MethodGet, "/admin/rooms/"+room+"/messages", nil, &msgs)
	if len(msgs.Items) != 2 || msgs.Items[0].ID != m.ID || msgs.Items[1].ID != reply.ID {
		t.Errorf("GET /admin/rooms/.../messages = %+v", msgs.Items)
	}

	admin(http.StatusOK, http.MethodPut, "/admin/faults/get_me", map[string]any{"status": 429, "retryAfter": 2, "times": 1, "latencyMs": 1}, nil)
	resp, body := e.call(t, http.MethodGet, "/v1/people/me", nil)
	checkError(t, resp, body, http.StatusTooManyRequests)
	if resp.Header.Get("Retry-After") != "2" {
		t.Errorf("Retry-After %q, want 2", resp.Header.Get("Retry-After"))
	}
	e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/people/me", nil, nil)
	admin(http.StatusOK, http.MethodPut, "/admin/faults/create_message", map[string]any{"status": 503}, nil)
	admin(http.StatusNoContent, http.MethodDelete, "/admin/faults", nil, nil)
	e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/messages", webex.MessageRequest{RoomID: room, Text: "hi"}, nil)

	var st stats
	admin(http.StatusOK, http.MethodGet, "/admin/stats", nil, &st)
	if st.Calls[OpGetMe] != 2 || st.Calls[OpCreateMessage] != 1 || st.Calls[OpCreateWebhook] != 1 || len(st.Calls) != len(ops) {
		t.Errorf("stats calls %v", st.Calls)
	}
	if st.Deliveries != 3 { // alice's two messages and the bot's
		t.Errorf("stats deliveries %d, want 3", st.Deliveries)
	}

	tests := []struct {
		name, method, path string
		body               any
		want               int
	}{
		{"person without email", http.MethodPost, "/admin/people", webex.Person{DisplayName: "x"}, http.StatusBadRequest},
		{"message by unknown email", http.MethodPost, "/admin/messages", map[string]any{"personEmail": "x@y.z", "text": "x"}, http.StatusNotFound},
		{"message by unknown id", http.MethodPost, "/admin/messages", map[string]any{"personId": newID(kindPeople), "text": "x"}, http.StatusNotFound},
		{"message without text", http.MethodPost, "/admin/messages", map[string]any{"personId": alice.ID}, http.StatusBadRequest},
		{"unknown room", http.MethodGet, "/admin/rooms/" + newID(kindRoom) + "/messages", nil, http.StatusNotFound},
		{"unknown op", http.MethodPut, "/admin/faults/get_rooms", map[string]any{"status": 500}, http.StatusNotFound},
		{"bad status", http.MethodPut, "/admin/faults/get_me", map[string]any{"status": 200}, http.StatusBadRequest},
		{"unknown path", http.MethodGet, "/admin/nothing", nil, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := e.callWith(t, "", tc.method, tc.path, tc.body)
			checkError(t, resp, body, tc.want)
		})
	}
}

func TestCloseWaitsForDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	release := make(chan struct{})
	var mu sync.Mutex
	done := 0
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		<-release
		mu.Lock()
		done++
		mu.Unlock()
	}))
	t.Cleanup(target.Close)
	alice := e.addPerson("alice@example.com")
	e.sim.AddWebhook(webex.Webhook{Name: "w", TargetURL: target.URL + "/h", Resource: "messages", Event: "created"})
	for range 3 {
		if _, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan struct{})
	go func() { e.sim.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while deliveries were in flight")
	default:
	}
	close(release)
	<-closed
	mu.Lock()
	defer mu.Unlock()
	if done != 3 {
		t.Errorf("%d deliveries finished before Close returned, want 3", done)
	}

	// After Close, messages are still stored but not delivered.
	if _, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "late"}); err != nil {
		t.Fatal(err)
	}
	if e.sim.Deliveries() != 3 {
		t.Errorf("Deliveries() = %d after Close, want 3", e.sim.Deliveries())
	}
}
