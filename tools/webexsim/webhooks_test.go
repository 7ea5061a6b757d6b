package webexsim

import (
	"fmt"
	"net/http"
	"testing"

	"github.com/sparkguard/sparkguard/platform/webex"
)

func TestWebhookCRUD(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	bot := e.sim.Bot()

	var created webex.Webhook
	e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/webhooks", webex.WebhookRequest{
		Name: "w1", TargetURL: "https://bot.example.com/webhooks/webex", Resource: "messages",
		Event: "created", Filter: "mentionedPeople=me", Secret: "s1",
	}, &created)
	if created.ID == "" || idKind(created.ID) != kindWebhook || created.Status != webex.WebhookActive ||
		created.Created.IsZero() || created.Secret != "s1" || created.OwnedBy != "creator" ||
		created.CreatedBy != bot.ID || created.OrgID != bot.OrgID || idKind(created.AppID) != kindApplication {
		t.Errorf("created %+v", created)
	}

	var got webex.Webhook
	e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/webhooks/"+created.ID, nil, &got)
	if got != created {
		t.Errorf("GET = %+v, want %+v", got, created)
	}

	var list items[webex.Webhook]
	e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/webhooks", nil, &list)
	if len(list.Items) != 1 || list.Items[0] != created {
		t.Errorf("list = %+v", list.Items)
	}

	var updated webex.Webhook
	e.mustCall(t, http.StatusOK, http.MethodPut, "/v1/webhooks/"+created.ID, map[string]string{
		"name": "w2", "targetUrl": "https://bot.example.com/v2", "resource": "rooms", "filter": "roomType=direct",
	}, &updated)
	want := created
	want.Name, want.TargetURL = "w2", "https://bot.example.com/v2"
	if updated != want {
		t.Errorf("PUT without secret = %+v, want %+v (only name and targetUrl changed, secret kept)", updated, want)
	}

	e.mustCall(t, http.StatusOK, http.MethodPut, "/v1/webhooks/"+created.ID, webex.WebhookUpdate{
		Name: "w2", TargetURL: "https://bot.example.com/v2", Secret: "s2", Status: webex.WebhookInactive,
	}, &updated)
	if updated.Secret != "s2" || updated.Status != webex.WebhookInactive {
		t.Errorf("PUT with secret and status = %+v", updated)
	}
	if ws := e.sim.Webhooks(); len(ws) != 1 || ws[0] != updated {
		t.Errorf("Webhooks() = %+v, want [%+v]", ws, updated)
	}

	e.mustCall(t, http.StatusNoContent, http.MethodDelete, "/v1/webhooks/"+created.ID, nil, nil)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/v1/webhooks/" + created.ID},
		{http.MethodDelete, "/v1/webhooks/" + created.ID},
		{http.MethodPut, "/v1/webhooks/" + created.ID},
	} {
		resp, body := e.call(t, tc.method, tc.path, webex.WebhookUpdate{Name: "n", TargetURL: "https://x.example"})
		checkError(t, resp, body, http.StatusNotFound)
	}
	if ws := e.sim.Webhooks(); len(ws) != 0 {
		t.Errorf("Webhooks() after delete = %+v", ws)
	}
}

func TestWebhookValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	existing := e.sim.AddWebhook(webex.Webhook{Name: "w", TargetURL: "https://x.example", Resource: "messages", Event: "created"})
	ok := webex.WebhookRequest{Name: "n", TargetURL: "https://x.example/h", Resource: "messages", Event: "created"}
	with := func(f func(*webex.WebhookRequest)) webex.WebhookRequest { r := ok; f(&r); return r }
	tests := []struct {
		name   string
		method string
		path   string
		body   any
		want   int
	}{
		{"valid", http.MethodPost, "/v1/webhooks", ok, http.StatusOK},
		{"firehose", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.Resource, r.Event = "all", "all" }), http.StatusOK},
		{"all filters", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) {
			r.Filter = "roomId=X&roomType=group&mentionedPeople=me&personId=Y&personEmail=a%40b.c&hasFiles=true"
		}), http.StatusOK},
		{"org owned", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.OwnedBy = "org" }), http.StatusOK},
		{"missing name", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.Name = "" }), http.StatusBadRequest},
		{"missing targetUrl", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.TargetURL = "" }), http.StatusBadRequest},
		{"missing resource", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.Resource = "" }), http.StatusBadRequest},
		{"missing event", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.Event = "" }), http.StatusBadRequest},
		{"relative targetUrl", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.TargetURL = "/hook" }), http.StatusBadRequest},
		{"ftp targetUrl", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.TargetURL = "ftp://x.example" }), http.StatusBadRequest},
		{"unknown resource", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.Resource = "teams" }), http.StatusBadRequest},
		{"unknown event", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.Event = "exploded" }), http.StatusBadRequest},
		{"unknown filter key", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.Filter = "color=red" }), http.StatusBadRequest},
		{"bad roomType filter", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.Filter = "roomType=team" }), http.StatusBadRequest},
		{"bad ownedBy", http.MethodPost, "/v1/webhooks", with(func(r *webex.WebhookRequest) { r.OwnedBy = "me" }), http.StatusBadRequest},
		{"PUT without name", http.MethodPut, "/v1/webhooks/" + existing.ID, webex.WebhookUpdate{TargetURL: "https://x.example"}, http.StatusBadRequest},
		{"PUT without targetUrl", http.MethodPut, "/v1/webhooks/" + existing.ID, webex.WebhookUpdate{Name: "n"}, http.StatusBadRequest},
		{"PUT bad status", http.MethodPut, "/v1/webhooks/" + existing.ID, webex.WebhookUpdate{Name: "n", TargetURL: "https://x.example", Status: "paused"}, http.StatusBadRequest},
		{"list bad max", http.MethodGet, "/v1/webhooks?max=0", nil, http.StatusBadRequest},
		{"list bad cursor", http.MethodGet, "/v1/webhooks?cursor=!!", nil, http.StatusBadRequest},
		{"list bad ownedBy", http.MethodGet, "/v1/webhooks?ownedBy=me", nil, http.StatusBadRequest},
		{"unknown path", http.MethodGet, "/v1/rooms", nil, http.StatusNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := e.call(t, tc.method, tc.path, tc.body)
			if tc.want == http.StatusOK {
				if resp.StatusCode != http.StatusOK {
					t.Errorf("status %d, want 200; body %s", resp.StatusCode, body)
				}
				return
			}
			checkError(t, resp, body, tc.want)
		})
	}
}

func TestWebhookPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	want := map[string]bool{}
	for i := range 250 {
		w := e.sim.AddWebhook(webex.Webhook{
			Name: fmt.Sprintf("foreign %d", i), TargetURL: "https://other.example/h",
			Resource: "messages", Event: "created",
		})
		want[w.ID] = true
	}

	seen := map[string]bool{}
	var sizes []int
	path := "/v1/webhooks?max=100"
	for path != "" {
		if len(sizes) > 5 {
			t.Fatal("Link paging does not end")
		}
		var page items[webex.Webhook]
		resp := e.mustCall(t, http.StatusOK, http.MethodGet, path, nil, &page)
		sizes = append(sizes, len(page.Items))
		for _, w := range page.Items {
			if seen[w.ID] {
				t.Errorf("webhook %s listed twice", w.ID)
			}
			seen[w.ID] = true
		}
		path = nextLink(t, resp)
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Errorf("page sizes %v, want [100 100 50]", sizes)
	}
	if len(seen) != len(want) {
		t.Errorf("listed %d webhooks, want %d", len(seen), len(want))
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("webhook %s never listed", id)
		}
	}

	t.Run("default max is 100", func(t *testing.T) {
		t.Parallel()
		var page items[webex.Webhook]
		resp := e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/webhooks", nil, &page)
		if len(page.Items) != 100 || resp.Header.Get("Link") == "" {
			t.Errorf("got %d webhooks, Link %q", len(page.Items), resp.Header.Get("Link"))
		}
	})
}

func TestWebhookPutKeepsSecret(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	alice := e.addPerson("alice@example.com")
	var wh webex.Webhook
	e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/webhooks", webex.WebhookRequest{
		Name: "w", TargetURL: rc.url("/old"), Resource: "messages", Event: "created", Secret: "first",
	}, &wh)
	e.mustCall(t, http.StatusOK, http.MethodPut, "/v1/webhooks/"+wh.ID,
		webex.WebhookUpdate{Name: "w", TargetURL: rc.url("/new")}, &wh)
	if wh.Secret != "first" {
		t.Fatalf("secret after PUT without one = %q, want first", wh.Secret)
	}
	if _, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "1"}); err != nil {
		t.Fatal(err)
	}
	e.mustCall(t, http.StatusOK, http.MethodPut, "/v1/webhooks/"+wh.ID,
		webex.WebhookUpdate{Name: "w", TargetURL: rc.url("/new"), Secret: "second"}, nil)
	if _, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "2"}); err != nil {
		t.Fatal(err)
	}
	e.sim.Close()

	ds := rc.deliveries("/new")
	if len(ds) != 2 || len(rc.deliveries("/old")) != 0 {
		t.Fatalf("deliveries: %d to /new, %d to /old; want 2 and 0", len(ds), len(rc.deliveries("/old")))
	}
	secrets := map[string][][]byte{}
	for _, d := range ds {
		for _, s := range []string{"first", "second"} {
			if webex.VerifySignature(d.body, d.header.Get(webex.SignatureHeader), [][]byte{[]byte(s)}) {
				secrets[s] = append(secrets[s], d.body)
			}
		}
	}
	if len(secrets["first"]) != 1 || len(secrets["second"]) != 1 {
		t.Errorf("signed with first %d times, with second %d times; want once each", len(secrets["first"]), len(secrets["second"]))
	}
}

func TestWebhookWithoutSecretIsUnsigned(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	alice := e.addPerson("alice@example.com")
	e.sim.AddWebhook(webex.Webhook{Name: "w", TargetURL: rc.url("/h"), Resource: "messages", Event: "created"})
	if _, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	e.sim.Close()
	ds := rc.deliveries("/h")
	if len(ds) != 1 || ds[0].header.Get(webex.SignatureHeader) != "" {
		t.Errorf("want one unsigned delivery, got %d (%v)", len(ds), ds)
	}
}

func TestWebhookInactiveAfterFailures(t *testing.T) {
	t.Parallel()
	const limit = 3
	e := newEnv(t, Options{DeliveryFailuresBeforeInactive: limit})
	rc := newReceiver(t)
	alice := e.addPerson("alice@example.com")
	var wh webex.Webhook
	e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/webhooks", webex.WebhookRequest{
		Name: "w", TargetURL: rc.url("/h"), Resource: "messages", Event: "created", Secret: "s",
	}, &wh)

	// post sends one message and waits until its delivery is done.
	post := func() {
		t.Helper()
		n := len(rc.deliveries("/h"))
		if _, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "x"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "a delivery", func() bool { return len(rc.deliveries("/h")) == n+1 })
	}
	// A success resets the count of consecutive failures.
	rc.answer(http.StatusInternalServerError)
	for range limit - 1 {
		post()
	}
	rc.answer(http.StatusOK)
	post()
	rc.answer(http.StatusServiceUnavailable)
	for range limit - 1 {
		post()
	}
	// The receiver has the deliveries before the Sim has their outcome;
	// give it the time to record them.
	waitFor(t, "the outcomes", func() bool { e.sim.mu.Lock(); defer e.sim.mu.Unlock(); return e.sim.hooks[wh.ID].failures == limit-1 })
	if s := e.webhookStatus(wh.ID); s != webex.WebhookActive {
		t.Fatalf("status %q after %d failures, a success and %d failures; want active", s, limit-1, limit-1)
	}

	post() // the limit-th consecutive failure
	waitFor(t, "the webhook to go inactive", func() bool { return e.webhookStatus(wh.ID) == webex.WebhookInactive })
	var got webex.Webhook
	e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/webhooks/"+wh.ID, nil, &got)
	if got.Status != webex.WebhookInactive {
		t.Errorf("GET status %q, want inactive", got.Status)
	}

	before, hits := e.sim.Deliveries(), len(rc.deliveries("/h"))
	if _, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	if e.sim.Deliveries() != before {
		t.Errorf("an inactive webhook got a delivery: Deliveries() %d → %d", before, e.sim.Deliveries())
	}

	rc.answer(http.StatusOK)
	e.mustCall(t, http.StatusOK, http.MethodPut, "/v1/webhooks/"+wh.ID,
		webex.WebhookUpdate{Name: "w", TargetURL: rc.url("/h"), Status: webex.WebhookActive}, &got)
	if got.Status != webex.WebhookActive || got.Secret != "s" {
		t.Errorf("after PUT status active: %+v", got)
	}
	post()
	if n := len(rc.deliveries("/h")); n != hits+1 {
		t.Errorf("receiver got %d deliveries, want %d", n, hits+1)
	}
	if e.sim.Deliveries() != before+1 {
		t.Errorf("Deliveries() = %d, want %d", e.sim.Deliveries(), before+1)
	}
}

func TestDeliveryTransportErrorCountsAsFailure(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{DeliveryFailuresBeforeInactive: 1})
	rc := newReceiver(t)
	target := rc.url("/h")
	rc.srv.Close() // nothing listens there any more
	alice := e.addPerson("alice@example.com")
	wh := e.sim.AddWebhook(webex.Webhook{Name: "w", TargetURL: target, Resource: "messages", Event: "created"})
	if _, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "x"}); err != nil {
		t.Fatal(err)
	}
	e.sim.Close()
	if s := e.webhookStatus(wh.ID); s != webex.WebhookInactive {
		t.Errorf("status %q, want inactive", s)
	}
}
