package webexsim

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sparkguard/sparkguard/platform/webex"
)

func TestAuth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	tests := []struct {
		name string
		auth string
		want int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token prefix", "Bearer " + testToken[:4], http.StatusUnauthorized},
		{"basic scheme", "Basic " + testToken, http.StatusUnauthorized},
		{"no scheme", testToken, http.StatusUnauthorized},
		{"right token", "Bearer " + testToken, http.StatusOK},
		{"lowercase scheme", "bearer " + testToken, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, path := range []string{"/v1/people/me", "/v1/webhooks"} {
				resp, body := e.callWith(t, tc.auth, http.MethodGet, path, nil)
				if tc.want != http.StatusOK {
					checkError(t, resp, body, tc.want)
				} else if resp.StatusCode != tc.want {
					t.Errorf("GET %s: status %d, want %d", path, resp.StatusCode, tc.want)
				}
			}
		})
	}
}

func TestDefaultToken(t *testing.T) {
	t.Parallel()
	sim := New(Options{})
	defer sim.Close()
	req, _ := http.NewRequest(http.MethodGet, "/v1/people/me", nil)
	req.Header.Set("Authorization", "Bearer "+DefaultToken)
	rec := httptest.NewRecorder()
	sim.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("default token: status %d, want 200", rec.Code)
	}
}

func TestPeople(t *testing.T) {
	t.Parallel()
	org := newID(kindOrganization)
	e := newEnv(t, Options{OrgID: org, Bot: webex.Person{DisplayName: "Echo Bot"}})
	alice := e.sim.AddPerson(webex.Person{Emails: []string{"alice@example.com"}, DisplayName: "Alice Example"})
	bob := e.sim.AddPerson(webex.Person{Emails: []string{"bob@other.example"}, OrgID: "other-org", Type: webex.PersonTypeBot})

	var me webex.Person
	e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/people/me", nil, &me)
	if want := e.sim.Bot(); !equalPerson(me, want) {
		t.Errorf("GET /people/me = %+v, want %+v", me, want)
	}
	if me.DisplayName != "Echo Bot" || me.Type != webex.PersonTypeBot || me.OrgID != org ||
		!slices.Equal(me.Emails, []string{DefaultBotEmail}) || me.Created.IsZero() {
		t.Errorf("bot defaults not filled: %+v", me)
	}

	tests := []struct {
		name string
		id   string
		want webex.Person
	}{
		{"person with defaults", alice.ID, alice},
		{"person with own org and type", bob.ID, bob},
		{"the bot by id", me.ID, me},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var got webex.Person
			e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/people/"+tc.id, nil, &got)
			if !equalPerson(got, tc.want) {
				t.Errorf("GET /people/%s = %+v, want %+v", tc.id, got, tc.want)
			}
		})
	}
	if alice.OrgID != org || alice.Type != webex.PersonTypePerson || alice.Created.IsZero() {
		t.Errorf("AddPerson did not fill defaults: %+v", alice)
	}
	if bob.OrgID != "other-org" || bob.Type != webex.PersonTypeBot {
		t.Errorf("AddPerson overwrote given fields: %+v", bob)
	}

	resp, body := e.call(t, http.MethodGet, "/v1/people/"+newID(kindPeople), nil)
	checkError(t, resp, body, http.StatusNotFound)
}

func equalPerson(a, b webex.Person) bool {
	return a.ID == b.ID && slices.Equal(a.Emails, b.Emails) && a.DisplayName == b.DisplayName &&
		a.OrgID == b.OrgID && a.Type == b.Type && a.Created.Equal(b.Created)
}

func TestIDsHaveTheRealFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	alice := e.addPerson("alice@example.com")
	room := e.sim.NewRoomID()
	m, err := e.sim.Post(Post{PersonID: alice.ID, RoomID: room, Text: "hi", MentionBot: true})
	if err != nil {
		t.Fatal(err)
	}
	wh := e.sim.AddWebhook(webex.Webhook{Name: "w", TargetURL: "http://127.0.0.1:1/", Resource: "messages", Event: "created"})
	uuid := `[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}`
	tests := []struct {
		name, id, kind string
	}{
		{"bot", e.sim.Bot().ID, kindPeople},
		{"person", alice.ID, kindPeople},
		{"org", alice.OrgID, kindOrganization},
		{"room", room, kindRoom},
		{"message", m.ID, kindMessage},
		{"webhook", wh.ID, kindWebhook},
		{"app", wh.AppID, kindApplication},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			raw, err := base64.RawStdEncoding.DecodeString(tc.id)
			if err != nil {
				t.Fatalf("%q is not unpadded base64: %v", tc.id, err)
			}
			re := regexp.MustCompile(`^ciscospark://us/` + tc.kind + `/` + uuid + `$`)
			if !re.Match(raw) {
				t.Errorf("%q decodes to %q, want ciscospark://us/%s/<uuid>", tc.id, raw, tc.kind)
			}
		})
	}
}

// sample reads the webhook sample payload into a generic map.
func sample(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("testdata/webhook-messages-created.json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestPostMentionDeliversSignedWebhook(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	alice := e.addPerson("alice@example.com")
	bot := e.sim.Bot()
	secret := "s3cr3t-one"

	var wh webex.Webhook
	e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/webhooks", webex.WebhookRequest{
		Name: "sparkguard messages", TargetURL: rc.url("/webhooks/webex"),
		Resource: "messages", Event: "created", Filter: "mentionedPeople=me", Secret: secret,
	}, &wh)

	room := e.sim.NewRoomID()
	m, err := e.sim.Post(Post{PersonID: alice.ID, RoomID: room, Text: "Hello, <World>!", MentionBot: true, MentionLabel: "Echo"})
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	if m.Text != "Echo Hello, <World>!" || m.RoomType != RoomGroup || !slices.Equal(m.MentionedPeople, []string{bot.ID}) {
		t.Errorf("posted message %+v", m)
	}
	wantHTML := `<p><spark-mention data-object-type="person" data-object-id="` + bot.ID + `">Echo</spark-mention> Hello, &lt;World&gt;!</p>`
	if m.HTML != wantHTML {
		t.Errorf("html %q, want %q", m.HTML, wantHTML)
	}
	_, raw := e.call(t, http.MethodGet, "/v1/messages/"+m.ID, nil)
	if !strings.Contains(string(raw), `"html":"<p><spark-mention data-object-type=\"person\"`) {
		t.Errorf("GET /messages escapes the html: %s", raw)
	}
	e.sim.Close()

	ds := rc.deliveries("/webhooks/webex")
	if len(ds) != 1 {
		t.Fatalf("got %d deliveries, want 1", len(ds))
	}
	d := ds[0]
	if ct := d.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	sig := d.header.Get(webex.SignatureHeader)
	if !webex.VerifySignature(d.body, sig, [][]byte{[]byte(secret)}) {
		t.Errorf("signature %q does not verify", sig)
	}
	if webex.VerifySignature(d.body, sig, [][]byte{[]byte("other")}) {
		t.Errorf("signature %q verifies under the wrong secret", sig)
	}

	var got map[string]any
	if err := json.Unmarshal(d.body, &got); err != nil {
		t.Fatal(err)
	}
	want := sample(t)
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Errorf("top-level keys %v, want the sample's %v", g, w)
	}
	gotData, _ := got["data"].(map[string]any)
	wantData := want["data"].(map[string]any)
	if g, w := slices.Sorted(maps.Keys(gotData)), slices.Sorted(maps.Keys(wantData)); !slices.Equal(g, w) {
		t.Errorf("data keys %v, want the sample's %v", g, w)
	}
	if !strings.Contains(string(d.body), `"filter":"mentionedPeople=me"`) {
		t.Errorf("delivery body is not plain JSON: %s", d.body)
	}
	if strings.Contains(string(d.body), "Hello") || gotData["text"] != nil {
		t.Errorf("delivery carries the message text: %s", d.body)
	}

	var ev webex.Event
	if err := json.Unmarshal(d.body, &ev); err != nil {
		t.Fatal(err)
	}
	wantEv := webex.Event{
		ID: wh.ID, Name: wh.Name, TargetURL: wh.TargetURL, Resource: "messages", Event: "created",
		Filter: "mentionedPeople=me", OrgID: bot.OrgID, CreatedBy: bot.ID, AppID: wh.AppID,
		OwnedBy: "creator", Status: "active", Created: wh.Created, ActorID: alice.ID,
		Data: webex.EventData{
			ID: m.ID, RoomID: room, RoomType: "group", PersonID: alice.ID, PersonEmail: "alice@example.com",
			MentionedPeople: []string{bot.ID}, Created: m.Created,
		},
	}
	if !equalEvent(ev, wantEv) {
		t.Errorf("event\n %+v\nwant\n %+v", ev, wantEv)
	}
	if e.sim.Deliveries() != 1 {
		t.Errorf("Deliveries() = %d, want 1", e.sim.Deliveries())
	}
}

// equalEvent compares events by their JSON, which is what receivers see.
func equalEvent(a, b webex.Event) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && string(ja) == string(jb)
}

func TestDeliveryFilters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	alice := e.addPerson("alice@example.com")
	bob := e.addPerson("bob@example.com")
	bot := e.sim.Bot()
	roomA, roomB := e.sim.NewRoomID(), e.sim.NewRoomID()

	hooks := map[string]string{ // target path → filter
		"all":        "",
		"roomA":      "roomId=" + roomA,
		"roomB":      "roomId=" + roomB,
		"direct":     "roomType=direct",
		"group":      "roomType=group",
		"mentioned":  "mentionedPeople=me",
		"aliceGroup": "personId=" + alice.ID + "&roomType=group",
		"aliceEmail": "personEmail=ALICE%40example.com",
		"roomAbot":   "roomId=" + roomA + "&personId=" + bot.ID,
	}
	for path, filter := range hooks {
		e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/webhooks", webex.WebhookRequest{
			Name: path, TargetURL: rc.url("/" + path), Resource: "messages", Event: "created", Filter: filter,
		}, nil)
	}
	// Foreign resources and events never get message deliveries; the
	// firehose does.
	e.sim.AddWebhook(webex.Webhook{Name: "rooms", TargetURL: rc.url("/rooms"), Resource: "rooms", Event: "created"})
	e.sim.AddWebhook(webex.Webhook{Name: "deleted", TargetURL: rc.url("/deleted"), Resource: "messages", Event: "deleted"})
	e.sim.AddWebhook(webex.Webhook{Name: "firehose", TargetURL: rc.url("/firehose"), Resource: "all", Event: "all"})

	tests := []struct {
		name string
		post Post
		bot  *webex.MessageRequest // the bot posts this instead
		want []string              // paths that get the event
	}{
		{
			name: "group mention in room A",
			post: Post{PersonID: alice.ID, RoomID: roomA, Text: "a", MentionBot: true},
			want: []string{"all", "roomA", "group", "mentioned", "aliceGroup", "aliceEmail", "firehose"},
		},
		{
			name: "group mention by bob in room B",
			post: Post{PersonID: bob.ID, RoomID: roomB, Text: "b", MentionBot: true},
			want: []string{"all", "roomB", "group", "mentioned", "firehose"},
		},
		{
			name: "group message without mention",
			post: Post{PersonID: alice.ID, RoomID: roomA, Text: "no mention"},
			want: nil,
		},
		{
			name: "direct message",
			post: Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "d"},
			want: []string{"all", "direct", "aliceEmail", "firehose"},
		},
		{
			name: "mention ignored in direct room",
			post: Post{PersonID: bob.ID, RoomType: RoomDirect, Text: "d", MentionBot: true},
			want: []string{"all", "direct", "firehose"},
		},
		{
			name: "the bot's own message in room A",
			bot:  &webex.MessageRequest{RoomID: roomA, Text: "echo"},
			want: []string{"all", "roomA", "group", "roomAbot", "firehose"},
		},
	}
	for _, tc := range tests {
		// Sequential: each case counts the deliveries it causes.
		before := map[string]int{}
		for _, d := range rc.deliveries("") {
			before[d.path]++
		}
		var msgID string
		if tc.bot != nil {
			var m webex.Message
			e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/messages", tc.bot, &m)
			msgID = m.ID
		} else {
			m, err := e.sim.Post(tc.post)
			if err != nil {
				t.Fatalf("%s: Post: %v", tc.name, err)
			}
			msgID = m.ID
		}
		waitFor(t, tc.name+" deliveries", func() bool { return len(rc.deliveries("")) == sum(before)+len(tc.want) })

		var got []string
		for _, d := range rc.deliveries("") {
			if before[d.path] > 0 {
				before[d.path]--
				continue
			}
			var ev webex.Event
			if err := json.Unmarshal(d.body, &ev); err != nil || ev.Data.ID != msgID {
				t.Errorf("%s: delivery to %s is %s, not of message %s", tc.name, d.path, d.body, msgID)
			}
			got = append(got, strings.TrimPrefix(d.path, "/"))
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tc.want))
		if !slices.Equal(got, want) {
			t.Errorf("%s: delivered to %v, want %v", tc.name, got, want)
		}
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func TestBotMessageIsStoredRetrievableAndDelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	rc := newReceiver(t)
	alice := e.addPerson("alice@example.com")
	bot := e.sim.Bot()
	room := e.sim.NewRoomID()
	e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/webhooks", webex.WebhookRequest{
		Name: "room", TargetURL: rc.url("/hook"), Resource: "messages", Event: "created",
		Filter: "roomId=" + room, Secret: "k",
	}, nil)

	in, err := e.sim.Post(Post{PersonID: alice.ID, RoomID: room, Text: "hi", MentionBot: true})
	if err != nil {
		t.Fatal(err)
	}
	var out webex.Message
	e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/messages",
		webex.MessageRequest{RoomID: room, ParentID: in.ID, Text: "hi"}, &out)
	if out.ID == "" || out.PersonID != bot.ID || out.PersonEmail != bot.Emails[0] || out.RoomID != room ||
		out.RoomType != RoomGroup || out.ParentID != in.ID || out.Text != "hi" || out.Created.IsZero() {
		t.Errorf("POST /messages answered %+v", out)
	}

	var got webex.Message
	e.mustCall(t, http.StatusOK, http.MethodGet, "/v1/messages/"+out.ID, nil, &got)
	if got.ID != out.ID || got.Text != "hi" || got.ParentID != in.ID || got.PersonID != bot.ID {
		t.Errorf("GET /messages/%s = %+v", out.ID, got)
	}
	msgs := e.sim.Messages(room)
	if len(msgs) != 2 || msgs[0].ID != in.ID || msgs[1].ID != out.ID {
		t.Errorf("Messages(room) = %+v, want [alice's, bot's]", msgs)
	}

	e.sim.Close()
	evs := rc.events(t, "/hook")
	if len(evs) != 2 {
		t.Fatalf("got %d deliveries, want 2", len(evs))
	}
	ids := []string{evs[0].Data.ID, evs[1].Data.ID}
	if !slices.Contains(ids, out.ID) {
		t.Errorf("no delivery of the bot's message %s: %v", out.ID, ids)
	}
	for _, ev := range evs {
		if ev.Data.ID == out.ID && (ev.Data.PersonID != bot.ID || ev.ActorID != bot.ID) {
			t.Errorf("bot's event names the sender %s/%s, want %s", ev.Data.PersonID, ev.ActorID, bot.ID)
		}
	}

	resp, body := e.call(t, http.MethodGet, "/v1/messages/"+newID(kindMessage), nil)
	checkError(t, resp, body, http.StatusNotFound)
}

func TestCreateMessageValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	alice := e.addPerson("alice@example.com")
	room, other := e.sim.NewRoomID(), e.sim.NewRoomID()
	parent, err := e.sim.Post(Post{PersonID: alice.ID, RoomID: room, Text: "hi", MentionBot: true})
	if err != nil {
		t.Fatal(err)
	}
	elsewhere, err := e.sim.Post(Post{PersonID: alice.ID, RoomID: other, Text: "hi", MentionBot: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		req  any
		want int
	}{
		{"text", webex.MessageRequest{RoomID: room, Text: "ok"}, http.StatusOK},
		{"markdown only", webex.MessageRequest{RoomID: room, Markdown: "**ok**"}, http.StatusOK},
		{"files only", map[string]any{"roomId": room, "files": []string{"https://example.com/a.png"}}, http.StatusOK},
		{"text of the limit", webex.MessageRequest{RoomID: room, Text: strings.Repeat("a", webex.MaxMessageBytes)}, http.StatusOK},
		{"text over the limit", webex.MessageRequest{RoomID: room, Text: strings.Repeat("a", webex.MaxMessageBytes+1)}, http.StatusBadRequest},
		{"multibyte text over the limit", webex.MessageRequest{RoomID: room, Text: strings.Repeat("é", webex.MaxMessageBytes/2+1)}, http.StatusBadRequest},
		{"markdown over the limit", webex.MessageRequest{RoomID: room, Markdown: strings.Repeat("a", webex.MaxMessageBytes+1)}, http.StatusBadRequest},
		{"no destination", webex.MessageRequest{Text: "x"}, http.StatusBadRequest},
		{"two destinations", webex.MessageRequest{RoomID: room, ToPersonID: alice.ID, Text: "x"}, http.StatusBadRequest},
		{"no content", webex.MessageRequest{RoomID: room}, http.StatusBadRequest},
		{"unknown room", webex.MessageRequest{RoomID: newID(kindRoom), Text: "x"}, http.StatusNotFound},
		{"thread reply", webex.MessageRequest{RoomID: room, ParentID: parent.ID, Text: "x"}, http.StatusOK},
		{"unknown parent", webex.MessageRequest{RoomID: room, ParentID: newID(kindMessage), Text: "x"}, http.StatusBadRequest},
		{"parent in another room", webex.MessageRequest{RoomID: room, ParentID: elsewhere.ID, Text: "x"}, http.StatusBadRequest},
		{"to person id", webex.MessageRequest{ToPersonID: alice.ID, Text: "x"}, http.StatusOK},
		{"to person email", webex.MessageRequest{ToPersonEmail: "Alice@Example.com", Text: "x"}, http.StatusOK},
		{"to unknown email", webex.MessageRequest{ToPersonEmail: "nobody@example.com", Text: "x"}, http.StatusNotFound},
		{"to itself", webex.MessageRequest{ToPersonID: e.sim.Bot().ID, Text: "x"}, http.StatusBadRequest},
		{"not JSON", "{", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var resp *http.Response
			var body []byte
			if s, ok := tc.req.(string); ok {
				resp, body = e.callRaw(t, http.MethodPost, "/v1/messages", "application/json", s)
			} else {
				resp, body = e.call(t, http.MethodPost, "/v1/messages", tc.req)
			}
			if tc.want != http.StatusOK {
				checkError(t, resp, body, tc.want)
				return
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200; body %s", resp.StatusCode, body)
			}
		})
	}

	t.Run("direct room is shared by id and email", func(t *testing.T) {
		t.Parallel()
		var a, b webex.Message
		e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/messages", webex.MessageRequest{ToPersonID: alice.ID, Text: "1"}, &a)
		e.mustCall(t, http.StatusOK, http.MethodPost, "/v1/messages", webex.MessageRequest{ToPersonEmail: "alice@example.com", Text: "2"}, &b)
		if a.RoomID != b.RoomID || a.RoomType != RoomDirect {
			t.Errorf("direct messages in rooms %s (%s) and %s", a.RoomID, a.RoomType, b.RoomID)
		}
		in, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "3"})
		if err != nil || in.RoomID != a.RoomID {
			t.Errorf("alice's direct Post went to %s (%v), want %s", in.RoomID, err, a.RoomID)
		}
	})
	t.Run("unsupported media type", func(t *testing.T) {
		t.Parallel()
		resp, body := e.callRaw(t, http.MethodPost, "/v1/messages", "text/plain", `{"roomId":"`+room+`","text":"x"}`)
		checkError(t, resp, body, http.StatusUnsupportedMediaType)
	})
}

func TestPostValidation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	alice := e.addPerson("alice@example.com")
	bob := e.addPerson("bob@example.com")
	room := e.sim.NewRoomID()
	direct, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "hi"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		post    Post
		wantErr bool
	}{
		{"known person", Post{PersonID: alice.ID, RoomID: room, Text: "x"}, false},
		{"the bot", Post{PersonID: e.sim.Bot().ID, RoomID: room, Text: "x"}, false},
		{"new group room", Post{PersonID: alice.ID, Text: "x"}, false},
		{"unknown person", Post{PersonID: newID(kindPeople), RoomID: room, Text: "x"}, true},
		{"empty text", Post{PersonID: alice.ID, RoomID: room}, true},
		{"bad room type", Post{PersonID: alice.ID, RoomID: room, RoomType: "team", Text: "x"}, true},
		{"room type mismatch", Post{PersonID: alice.ID, RoomID: room, RoomType: RoomDirect, Text: "x"}, true},
		{"someone else's direct room", Post{PersonID: bob.ID, RoomID: direct.RoomID, Text: "x"}, true},
		{"not a room id", Post{PersonID: alice.ID, RoomID: "room-1", Text: "x"}, true},
		{"unknown parent", Post{PersonID: alice.ID, RoomID: room, ParentID: newID(kindMessage), Text: "x"}, true},
		{"too long with mention", Post{PersonID: alice.ID, RoomID: room, Text: strings.Repeat("a", webex.MaxMessageBytes), MentionBot: true}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := e.sim.Post(tc.post)
			if (err != nil) != tc.wantErr {
				t.Errorf("Post(%+v) error = %v, want error %v", tc.post, err, tc.wantErr)
			}
		})
	}
}

func TestListMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	alice := e.addPerson("alice@example.com")
	room := e.sim.NewRoomID()
	var mentioned []string // oldest first
	for i := range 7 {
		m, err := e.sim.Post(Post{PersonID: alice.ID, RoomID: room, Text: "m", MentionBot: i%2 == 0})
		if err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			mentioned = append(mentioned, m.ID)
		}
	}
	direct, err := e.sim.Post(Post{PersonID: alice.ID, RoomType: RoomDirect, Text: "d"})
	if err != nil {
		t.Fatal(err)
	}

	// Page through the mentions two at a time, newest first.
	var got []string
	path := "/v1/messages?roomId=" + room + "&mentionedPeople=me&max=2"
	for pages := 0; path != ""; pages++ {
		if pages > 10 {
			t.Fatal("Link paging does not end")
		}
		var page items[webex.Message]
		resp := e.mustCall(t, http.StatusOK, http.MethodGet, path, nil, &page)
		for _, m := range page.Items {
			got = append(got, m.ID)
		}
		path = nextLink(t, resp)
	}
	want := slices.Clone(mentioned)
	slices.Reverse(want)
	if !slices.Equal(got, want) {
		t.Errorf("listed %v, want %v", got, want)
	}

	tests := []struct {
		name  string
		query string
		want  int
		n     int
	}{
		{"group room without mentionedPeople", "roomId=" + room, http.StatusForbidden, 0},
		{"direct room", "roomId=" + direct.RoomID, http.StatusOK, 1},
		{"mentioned by id", "roomId=" + room + "&mentionedPeople=" + e.sim.Bot().ID, http.StatusOK, 4},
		{"mentioning someone else", "roomId=" + room + "&mentionedPeople=" + alice.ID, http.StatusBadRequest, 0},
		{"max over 100 with mentions", "roomId=" + room + "&mentionedPeople=me&max=101", http.StatusBadRequest, 0},
		{"bad max", "roomId=" + room + "&mentionedPeople=me&max=x", http.StatusBadRequest, 0},
		{"no room", "mentionedPeople=me", http.StatusBadRequest, 0},
		{"unknown room", "roomId=" + newID(kindRoom) + "&mentionedPeople=me", http.StatusNotFound, 0},
		{"before the oldest", "roomId=" + room + "&mentionedPeople=me&beforeMessage=" + mentioned[0], http.StatusOK, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, body := e.call(t, http.MethodGet, "/v1/messages?"+tc.query, nil)
			if tc.want != http.StatusOK {
				checkError(t, resp, body, tc.want)
				return
			}
			var page items[webex.Message]
			if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body %s", resp.StatusCode, body)
			}
			if len(page.Items) != tc.n {
				t.Errorf("listed %d messages, want %d", len(page.Items), tc.n)
			}
		})
	}
}

// nextLink returns the path and query of resp's rel="next" Link, or "".
func nextLink(t *testing.T, resp *http.Response) string {
	t.Helper()
	link := resp.Header.Get("Link")
	if link == "" {
		return ""
	}
	m := regexp.MustCompile(`^<(http://[^>]+)>; rel="next"$`).FindStringSubmatch(link)
	if m == nil {
		t.Fatalf("Link header %q is not <url>; rel=\"next\"", link)
	}
	host := "http://" + resp.Request.URL.Host + "/"
	if !strings.HasPrefix(m[1], host) {
		t.Fatalf("Link %q is not on the request's host %s", m[1], host)
	}
	return "/" + strings.TrimPrefix(m[1], host)
}
