package webex

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testToken is the bearer token of every test client; no error may hold it.
const testToken = "tok-S3cr3t-9f8e7d6c5b4a3210"

// recorded is one request as the fake Webex server saw it.
type recorded struct {
	Method string
	Path   string // escaped, as sent
	Query  url.Values
	Header http.Header
	Body   []byte
}

// fakeWebex is a real HTTP server playing Webex under the /v1 prefix: it
// records every request and answers through handler.
type fakeWebex struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []recorded
}

func newFakeWebex(t *testing.T, handler http.HandlerFunc) *fakeWebex {
	t.Helper()
	f := &fakeWebex{}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("fake webex: read request body: %v", err)
		}
		f.mu.Lock()
		f.got = append(f.got, recorded{
			Method: r.Method,
			Path:   r.URL.EscapedPath(),
			Query:  r.URL.Query(),
			Header: r.Header.Clone(),
			Body:   body,
		})
		f.mu.Unlock()
		handler(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// baseURL is the fake's API root, as a Client is configured with it.
func (f *fakeWebex) baseURL() string { return f.srv.URL + "/v1" }

func (f *fakeWebex) requests() []recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]recorded(nil), f.got...)
}

// client returns a Client of the fake; opts may adjust its options.
func (f *fakeWebex) client(t *testing.T, opts ...func(*Options)) *Client {
	t.Helper()
	o := Options{BaseURL: f.baseURL(), Token: testToken}
	for _, fn := range opts {
		fn(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

// writeJSON answers with status and body as JSON, like Webex.
func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("TrackingID", "ROUTER_FAKE")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read testdata: %v", err)
	}
	return b
}

// openAPIOperation is what the tests read of one operation of
// testdata/openapi-messaging-subset.json: its request and 200/204 examples.
type openAPIOperation struct {
	RequestBody struct {
		Content map[string]struct {
			Example json.RawMessage `json:"example"`
		} `json:"content"`
	} `json:"requestBody"`
	Responses map[string]struct {
		Content map[string]struct {
			Example json.RawMessage `json:"example"`
		} `json:"content"`
	} `json:"responses"`
}

var loadOpenAPI = sync.OnceValues(func() (map[string]map[string]openAPIOperation, error) {
	raw, err := os.ReadFile(filepath.Join("testdata", "openapi-messaging-subset.json"))
	if err != nil {
		return nil, err
	}
	var doc struct {
		Paths map[string]map[string]openAPIOperation `json:"paths"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, err
	}
	return doc.Paths, nil
})

func openAPIOp(t *testing.T, path, method string) openAPIOperation {
	t.Helper()
	paths, err := loadOpenAPI()
	if err != nil {
		t.Fatalf("load OpenAPI: %v", err)
	}
	op, ok := paths[path][method]
	if !ok {
		t.Fatalf("OpenAPI has no %s %s", method, path)
	}
	return op
}

// responseExample is the JSON example of the 200 answer of method path.
func responseExample(t *testing.T, path, method string) []byte {
	t.Helper()
	ex := openAPIOp(t, path, method).Responses["200"].Content["application/json"].Example
	if len(ex) == 0 {
		t.Fatalf("OpenAPI has no 200 example for %s %s", method, path)
	}
	return ex
}

// requestExample is the JSON example of the request body of method path.
func requestExample(t *testing.T, path, method string) []byte {
	t.Helper()
	ex := openAPIOp(t, path, method).RequestBody.Content["application/json"].Example
	if len(ex) == 0 {
		t.Fatalf("OpenAPI has no request example for %s %s", method, path)
	}
	return ex
}

func decodeInto[T any](t *testing.T, raw []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("decode %T: %v", v, err)
	}
	return v
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(t *testing.T, a, b []byte) bool {
	t.Helper()
	return reflect.DeepEqual(decodeInto[any](t, a), decodeInto[any](t, b))
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return tm
}

// Ids of the OpenAPI examples.
const (
	exPersonID  = "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9mNWIzNjE4Ny1jOGRkLTQ3MjctOGIyZi1mOWM0NDdmMjkwNDY"
	exOrgID     = "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi85NmFiYzJhYS0zZGNjLTExZTUtYTE1Mi1mZTM0ODE5Y2RjOWE"
	exMessageID = "Y2lzY29zcGFyazovL3VzL01FU1NBR0UvOTJkYjNiZTAtNDNiZC0xMWU2LThhZTktZGQ1YjNkZmM1NjVk"
	exRoomID    = "Y2lzY29zcGFyazovL3VzL1JPT00vYmJjZWIxYWQtNDNmMS0zYjU4LTkxNDctZjE0YmIwYzRkMTU0"
	exWebhookID = "Y2lzY29zcGFyazovL3VzL1dFQkhPT0svOTZhYmMyYWEtM2RjYy0xMWU1LWExNTItZmUzNDgxOWNkYzlh"
)

var trackingIDPattern = regexp.MustCompile(`^sparkguard_[0-9a-f]{32}$`)

// checkExamplePerson asserts the OpenAPI example person landed in p.
func checkExamplePerson(t *testing.T, p *Person) {
	t.Helper()
	want := Person{
		ID:          exPersonID,
		Emails:      []string{"john.andersen@example.com"},
		DisplayName: "John Andersen",
		NickName:    "John",
		FirstName:   "John",
		LastName:    "Andersen",
		OrgID:       exOrgID,
		Type:        PersonTypePerson,
		Created:     mustTime(t, "2015-10-18T14:26:16Z"),
	}
	got := *p
	if !got.Created.Equal(want.Created) {
		t.Errorf("created = %v, want %v", got.Created, want.Created)
	}
	got.Created, want.Created = time.Time{}, time.Time{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("person = %+v\nwant     %+v", got, want)
	}
}

// checkExampleMessage asserts the OpenAPI example message landed in m.
func checkExampleMessage(t *testing.T, m *Message) {
	t.Helper()
	if m.ID != exMessageID || m.ParentID != exMessageID || m.RoomID != exRoomID {
		t.Errorf("ids: id %q parentId %q roomId %q", m.ID, m.ParentID, m.RoomID)
	}
	if m.RoomType != "group" {
		t.Errorf("roomType = %q", m.RoomType)
	}
	if !strings.HasPrefix(m.Text, "PROJECT UPDATE - A new project plan") {
		t.Errorf("text = %q", m.Text)
	}
	if !strings.HasPrefix(m.Markdown, "**PROJECT UPDATE**") {
		t.Errorf("markdown = %q", m.Markdown)
	}
	if !strings.HasPrefix(m.HTML, "<p><strong>PROJECT UPDATE</strong>") {
		t.Errorf("html = %q", m.HTML)
	}
	if m.PersonID != exPersonID || m.PersonEmail != "matt@example.com" {
		t.Errorf("author: %q %q", m.PersonID, m.PersonEmail)
	}
	if !reflect.DeepEqual(m.Files, []string{"http://www.example.com/images/media.png"}) {
		t.Errorf("files = %q", m.Files)
	}
	if len(m.MentionedPeople) != 1 || !strings.HasPrefix(m.MentionedPeople[0], "Y2lzY29zcGFyazovL3VzL1BFT1BMRS8y") {
		t.Errorf("mentionedPeople = %q", m.MentionedPeople)
	}
	if !reflect.DeepEqual(m.MentionedGroups, []string{"all"}) {
		t.Errorf("mentionedGroups = %q", m.MentionedGroups)
	}
	if !m.Created.Equal(mustTime(t, "2015-10-18T14:26:16Z")) || !m.Updated.Equal(mustTime(t, "2015-10-18T14:27:16Z")) {
		t.Errorf("created %v updated %v", m.Created, m.Updated)
	}
}

// exampleWebhook is the webhook of the OpenAPI examples.
func exampleWebhook(t *testing.T) Webhook {
	return Webhook{
		ID:        exWebhookID,
		Name:      "My Awesome Webhook",
		TargetURL: "https://example.com/mywebhook",
		Resource:  "messages",
		Event:     "created",
		Filter:    "roomId=" + exRoomID,
		Secret:    "86dacc007724d8ea666f88fc77d918dad9537a15",
		Status:    WebhookActive,
		OwnedBy:   "org",
		Created:   mustTime(t, "2015-10-18T14:26:16Z"),
	}
}

func checkExampleWebhook(t *testing.T, w *Webhook) {
	t.Helper()
	got, want := *w, exampleWebhook(t)
	if !got.Created.Equal(want.Created) {
		t.Errorf("created = %v, want %v", got.Created, want.Created)
	}
	got.Created, want.Created = time.Time{}, time.Time{} // "+00:00" and "Z" are one instant
	if !reflect.DeepEqual(got, want) {
		t.Errorf("webhook = %+v\nwant      %+v", got, want)
	}
}

// TestOperationsAgainstExamples serves the OpenAPI definition's examples (and
// the repo's sample objects) and checks each operation's request on the wire
// and what lands in the structs.
func TestOperationsAgainstExamples(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		answer     func(t *testing.T) (int, []byte)
		call       func(ctx context.Context, c *Client) (any, error)
		wantMethod string
		wantPath   string
		wantQuery  url.Values
		wantBody   func(t *testing.T) []byte // nil: no body
		check      func(t *testing.T, got any)
	}{
		{
			name:       "get_me OpenAPI example",
			answer:     func(t *testing.T) (int, []byte) { return 200, responseExample(t, "/people/me", "get") },
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Me(ctx) },
			wantMethod: "GET", wantPath: "/v1/people/me",
			check: func(t *testing.T, got any) { checkExamplePerson(t, got.(*Person)) },
		},
		{
			name:       "get_me sample bot",
			answer:     func(t *testing.T) (int, []byte) { return 200, readTestdata(t, "people-me.json") },
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Me(ctx) },
			wantMethod: "GET", wantPath: "/v1/people/me",
			check: func(t *testing.T, got any) {
				p := got.(*Person)
				if p.Type != PersonTypeBot || p.DisplayName != "EchoBot" || !reflect.DeepEqual(p.Emails, []string{"echobot@webex.bot"}) ||
					!strings.HasPrefix(p.ID, "Y2lzY29zcGFyazovL3VzL1BFT1BMRS85YzFm") || !p.Created.Equal(mustTime(t, "2024-01-02T03:04:05Z")) {
					t.Errorf("me = %+v", p)
				}
			},
		},
		{
			name:       "get_person OpenAPI example",
			answer:     func(t *testing.T) (int, []byte) { return 200, responseExample(t, "/people/{personId}", "get") },
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Person(ctx, exPersonID) },
			wantMethod: "GET", wantPath: "/v1/people/" + exPersonID,
			check: func(t *testing.T, got any) { checkExamplePerson(t, got.(*Person)) },
		},
		{
			name:       "get_person sample person",
			answer:     func(t *testing.T) (int, []byte) { return 200, readTestdata(t, "person.json") },
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Person(ctx, "some-id") },
			wantMethod: "GET", wantPath: "/v1/people/some-id",
			check: func(t *testing.T, got any) {
				p := got.(*Person)
				if p.Type != PersonTypePerson || p.OrgID != "Y2lzY29zcGFyazovL3VzL09SR0FOSVpBVElPTi9hNDQ4ZWIyMi0zOWFhLTRhNGMtOWYxMi0zMTViZWY0ZWVjODc" ||
					!reflect.DeepEqual(p.Emails, []string{"alice@example.com"}) || p.FirstName != "Alice" || p.LastName != "Example" {
					t.Errorf("person = %+v", p)
				}
			},
		},
		{
			name:       "get_message OpenAPI example",
			answer:     func(t *testing.T) (int, []byte) { return 200, responseExample(t, "/messages/{messageId}", "get") },
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Message(ctx, exMessageID) },
			wantMethod: "GET", wantPath: "/v1/messages/" + exMessageID,
			check: func(t *testing.T, got any) { checkExampleMessage(t, got.(*Message)) },
		},
		{
			name:       "get_message sample with mention",
			answer:     func(t *testing.T) (int, []byte) { return 200, readTestdata(t, "message.json") },
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Message(ctx, "m1") },
			wantMethod: "GET", wantPath: "/v1/messages/m1",
			check: func(t *testing.T, got any) {
				m := got.(*Message)
				if m.Text != "EchoBot Hello, World!" || m.RoomType != "group" || m.PersonEmail != "alice@example.com" || m.ParentID != "" ||
					!strings.Contains(m.HTML, `<spark-mention data-object-type="person"`) || len(m.MentionedPeople) != 1 {
					t.Errorf("message = %+v", m)
				}
			},
		},
		{
			name:   "create_message OpenAPI example",
			answer: func(t *testing.T) (int, []byte) { return 200, responseExample(t, "/messages", "post") },
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateMessage(ctx, MessageRequest{RoomID: exRoomID, ParentID: exMessageID, Text: "hello"})
			},
			wantMethod: "POST", wantPath: "/v1/messages",
			wantBody: func(*testing.T) []byte {
				return []byte(`{"roomId":"` + exRoomID + `","parentId":"` + exMessageID + `","text":"hello"}`)
			},
			check: func(t *testing.T, got any) { checkExampleMessage(t, got.(*Message)) },
		},
		{
			name:       "list_webhooks OpenAPI example",
			answer:     func(t *testing.T) (int, []byte) { return 200, responseExample(t, "/webhooks", "get") },
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Webhooks(ctx) },
			wantMethod: "GET", wantPath: "/v1/webhooks", wantQuery: url.Values{"max": {"100"}},
			check: func(t *testing.T, got any) {
				ws := got.([]Webhook)
				if len(ws) != 1 {
					t.Fatalf("got %d webhooks, want 1", len(ws))
				}
				checkExampleWebhook(t, &ws[0])
			},
		},
		{
			name:       "get_webhook OpenAPI example",
			answer:     func(t *testing.T) (int, []byte) { return 200, responseExample(t, "/webhooks/{webhookId}", "get") },
			call:       func(ctx context.Context, c *Client) (any, error) { return c.Webhook(ctx, exWebhookID) },
			wantMethod: "GET", wantPath: "/v1/webhooks/" + exWebhookID,
			check: func(t *testing.T, got any) { checkExampleWebhook(t, got.(*Webhook)) },
		},
		{
			name:   "create_webhook OpenAPI example",
			answer: func(t *testing.T) (int, []byte) { return 200, responseExample(t, "/webhooks", "post") },
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.CreateWebhook(ctx, decodeInto[WebhookRequest](t, requestExample(t, "/webhooks", "post")))
			},
			wantMethod: "POST", wantPath: "/v1/webhooks",
			// WebhookRequest holds every field of the example request.
			wantBody: func(t *testing.T) []byte { return requestExample(t, "/webhooks", "post") },
			check:    func(t *testing.T, got any) { checkExampleWebhook(t, got.(*Webhook)) },
		},
		{
			name:   "update_webhook OpenAPI example",
			answer: func(t *testing.T) (int, []byte) { return 200, responseExample(t, "/webhooks/{webhookId}", "put") },
			call: func(ctx context.Context, c *Client) (any, error) {
				return c.UpdateWebhook(ctx, exWebhookID, decodeInto[WebhookUpdate](t, requestExample(t, "/webhooks/{webhookId}", "put")))
			},
			wantMethod: "PUT", wantPath: "/v1/webhooks/" + exWebhookID,
			// The example's ownedBy is not something sparkguard changes, so
			// WebhookUpdate does not carry it.
			wantBody: func(*testing.T) []byte {
				return []byte(`{"name":"My Awesome Webhook","targetUrl":"https://example.com/mywebhook",
					"secret":"86dacc007724d8ea666f88fc77d918dad9537a15","status":"active"}`)
			},
			check: func(t *testing.T, got any) { checkExampleWebhook(t, got.(*Webhook)) },
		},
		{
			name:       "delete_webhook",
			answer:     func(*testing.T) (int, []byte) { return http.StatusNoContent, nil },
			call:       func(ctx context.Context, c *Client) (any, error) { return nil, c.DeleteWebhook(ctx, exWebhookID) },
			wantMethod: "DELETE", wantPath: "/v1/webhooks/" + exWebhookID,
			check: func(*testing.T, any) {},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			status, answer := tc.answer(t)
			f := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
				if status == http.StatusNoContent {
					w.WriteHeader(status)
					return
				}
				writeJSON(w, status, answer)
			})
			got, err := tc.call(t.Context(), f.client(t))
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			tc.check(t, got)

			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("server saw %d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tc.wantMethod || r.Path != tc.wantPath {
				t.Errorf("request %s %s, want %s %s", r.Method, r.Path, tc.wantMethod, tc.wantPath)
			}
			wantQuery := tc.wantQuery
			if wantQuery == nil {
				wantQuery = url.Values{}
			}
			if !reflect.DeepEqual(r.Query, wantQuery) {
				t.Errorf("query %v, want %v", r.Query, wantQuery)
			}
			checkRequestHeaders(t, r, tc.wantBody != nil)
			if tc.wantBody == nil {
				if len(r.Body) != 0 {
					t.Errorf("body %q, want none", r.Body)
				}
			} else if want := tc.wantBody(t); !sameJSON(t, r.Body, want) {
				t.Errorf("body %s\nwant %s", r.Body, want)
			}
		})
	}
}

// checkRequestHeaders asserts the headers every request carries.
func checkRequestHeaders(t *testing.T, r recorded, hasBody bool) {
	t.Helper()
	if got := r.Header.Get("Authorization"); got != "Bearer "+testToken {
		t.Errorf("Authorization = %q", got)
	}
	if got := r.Header.Get("Accept"); got != "application/json" {
		t.Errorf("Accept = %q", got)
	}
	if got := r.Header.Get("TrackingID"); !trackingIDPattern.MatchString(got) {
		t.Errorf("TrackingID = %q, want sparkguard_<32 hex digits>", got)
	}
	wantCT := ""
	if hasBody {
		wantCT = "application/json"
	}
	if got := r.Header.Get("Content-Type"); got != wantCT {
		t.Errorf("Content-Type = %q, want %q", got, wantCT)
	}
}

func TestTrackingIDsDiffer(t *testing.T) {
	t.Parallel()
	f := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, readTestdata(t, "people-me.json"))
	})
	c := f.client(t)
	seen := map[string]bool{}
	for range 5 {
		if _, err := c.Me(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range f.requests() {
		id := r.Header.Get("TrackingID")
		if seen[id] {
			t.Errorf("TrackingID %s sent twice", id)
		}
		seen[id] = true
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		opts     Options
		wantErr  string // substring; "" for success
		wantURL  string // endpoint("/people/me") on success
		wantTime time.Duration
	}{
		{name: "webex default", opts: Options{BaseURL: "https://webexapis.com/v1", Token: "t"},
			wantURL: "https://webexapis.com/v1/people/me", wantTime: DefaultTimeout},
		{name: "trailing slash", opts: Options{BaseURL: "https://webexapis.com/v1/", Token: "t", Timeout: time.Second},
			wantURL: "https://webexapis.com/v1/people/me", wantTime: time.Second},
		{name: "no path, port", opts: Options{BaseURL: "http://127.0.0.1:8080", Token: "t"},
			wantURL: "http://127.0.0.1:8080/people/me", wantTime: DefaultTimeout},
		{name: "escaped prefix", opts: Options{BaseURL: "http://emu.local/a%2Fb/v1//", Token: "t"},
			wantURL: "http://emu.local/a%2Fb/v1/people/me", wantTime: DefaultTimeout},
		{name: "empty base URL", opts: Options{Token: "t"}, wantErr: "base URL: empty"},
		{name: "blank base URL", opts: Options{BaseURL: "  ", Token: "t"}, wantErr: "base URL: empty"},
		{name: "relative base URL", opts: Options{BaseURL: "/v1", Token: "t"}, wantErr: "not an absolute http or https URL"},
		{name: "no scheme", opts: Options{BaseURL: "webexapis.com/v1", Token: "t"}, wantErr: "not an absolute http or https URL"},
		{name: "other scheme", opts: Options{BaseURL: "ftp://webexapis.com/v1", Token: "t"}, wantErr: "not an absolute http or https URL"},
		{name: "no host", opts: Options{BaseURL: "https:///v1", Token: "t"}, wantErr: "has no host"},
		{name: "query", opts: Options{BaseURL: "https://webexapis.com/v1?x=1", Token: "t"}, wantErr: "query or fragment"},
		{name: "unparsable", opts: Options{BaseURL: "https://web ex.com/v1", Token: "t"}, wantErr: "base URL"},
		{name: "empty token", opts: Options{BaseURL: "https://webexapis.com/v1"}, wantErr: "token is empty"},
		{name: "blank token", opts: Options{BaseURL: "https://webexapis.com/v1", Token: " \t"}, wantErr: "token is empty"},
		{name: "token with newline", opts: Options{BaseURL: "https://webexapis.com/v1", Token: testToken + "\nX-Evil: 1"}, wantErr: "control characters"},
		{name: "negative timeout", opts: Options{BaseURL: "https://webexapis.com/v1", Token: "t", Timeout: -time.Second}, wantErr: "timeout -1s is negative"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := New(tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("New error = %v, want one containing %q", err, tc.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "webex: new client: ") {
					t.Errorf("error %q does not name the step", err)
				}
				if strings.Contains(err.Error(), testToken) {
					t.Errorf("error %q holds the token", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if got := c.endpoint("/people/me").String(); got != tc.wantURL {
				t.Errorf("endpoint = %s, want %s", got, tc.wantURL)
			}
			if c.timeout != tc.wantTime {
				t.Errorf("timeout = %v, want %v", c.timeout, tc.wantTime)
			}
		})
	}
}

func TestPathIDs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		id       string
		wantPath string // "" when the client must refuse the id
	}{
		{"base64 id", exPersonID, "/v1/people/" + exPersonID},
		{"slash", "a/b", "/v1/people/a%2Fb"},
		{"query and fragment characters", "a b?c#d", "/v1/people/a%20b%3Fc%23d"},
		{"escaped dots", "..%2F..", "/v1/people/..%252F.."},
		{"raw uuid", "300c0973-dc35-4b40-ae1a-3664b3361dd5", "/v1/people/300c0973-dc35-4b40-ae1a-3664b3361dd5"},
		{"empty", "", ""},
		{"dot", ".", ""},
		{"dot dot", "..", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, 200, readTestdata(t, "person.json"))
			})
			_, err := f.client(t).Person(t.Context(), tc.id)
			reqs := f.requests()
			if tc.wantPath == "" {
				var perm interface{ Permanent() bool }
				if err == nil || !errors.As(err, &perm) || !perm.Permanent() || !strings.HasPrefix(err.Error(), "webex get_person: ") {
					t.Errorf("error = %v, want a permanent get_person error", err)
				}
				if len(reqs) != 0 {
					t.Errorf("sent %d requests for a refused id", len(reqs))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(reqs) != 1 || reqs[0].Path != tc.wantPath {
				t.Errorf("requests %+v, want one to %s", reqs, tc.wantPath)
			}
		})
	}
}

func TestEveryIDOperationRefusesEmptyID(t *testing.T) {
	t.Parallel()
	c, err := New(Options{BaseURL: "http://127.0.0.1:1/v1", Token: testToken})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"get_person", func(ctx context.Context) error { _, err := c.Person(ctx, ""); return err }},
		{"get_message", func(ctx context.Context) error { _, err := c.Message(ctx, ""); return err }},
		{"get_webhook", func(ctx context.Context) error { _, err := c.Webhook(ctx, ""); return err }},
		{"update_webhook", func(ctx context.Context) error { _, err := c.UpdateWebhook(ctx, "", WebhookUpdate{}); return err }},
		{"delete_webhook", func(ctx context.Context) error { return c.DeleteWebhook(ctx, "") }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call(t.Context())
			if want := "webex " + tc.name + ": id is empty"; err == nil || err.Error() != want {
				t.Errorf("error = %v, want %q", err, want)
			}
		})
	}
}

func TestCreateMessageSendsOnlySetFields(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		req  MessageRequest
		want string
	}{
		{"text to a room", MessageRequest{RoomID: "r1", Text: "hi"}, `{"roomId":"r1","text":"hi"}`},
		{"reply in a thread", MessageRequest{RoomID: "r1", ParentID: "p1", Text: "hi"}, `{"roomId":"r1","parentId":"p1","text":"hi"}`},
		{"direct by email", MessageRequest{ToPersonEmail: "a@example.com", Text: "hi"}, `{"toPersonEmail":"a@example.com","text":"hi"}`},
		{"direct by id, markdown", MessageRequest{ToPersonID: "p", Markdown: "**hi**"}, `{"toPersonId":"p","markdown":"**hi**"}`},
		{"text that looks like markup", MessageRequest{RoomID: "r1", Text: `<@personEmail:x@y> "q" <b>`}, `{"roomId":"r1","text":"<@personEmail:x@y> \"q\" <b>"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
				writeJSON(w, 200, readTestdata(t, "message.json"))
			})
			if _, err := f.client(t).CreateMessage(t.Context(), tc.req); err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			// Same keys and values, nothing more: an empty markdown must
			// not be sent.
			if !sameJSON(t, reqs[0].Body, []byte(tc.want)) {
				t.Errorf("body %s, want %s", reqs[0].Body, tc.want)
			}
		})
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	notFound := readTestdata(t, "error-404.json")
	cases := []struct {
		name          string
		status        int
		header        http.Header
		body          []byte
		wantMessage   string
		wantTracking  string
		wantWait      func(time.Duration) bool
		wantPermanent bool
		wantString    string // exact Error(), when set
	}{
		{
			name: "404 Webex body", status: 404, body: notFound,
			wantMessage:   "The requested resource could not be found.",
			wantTracking:  "ROUTER_5F1A2B3C-4D5E-6F70-8192-A3B4C5D6E7F8",
			wantPermanent: true,
			wantString:    "webex get_person: 404 The requested resource could not be found. (trackingId ROUTER_5F1A2B3C-4D5E-6F70-8192-A3B4C5D6E7F8)",
		},
		{
			name: "429 Retry-After seconds", status: 429, header: http.Header{"Retry-After": {"7"}},
			body:        []byte(`{"message":"Too many requests.","trackingId":"ROUTER_429"}`),
			wantMessage: "Too many requests.", wantTracking: "ROUTER_429",
			wantWait: func(d time.Duration) bool { return d == 7*time.Second },
		},
		{
			name: "429 Retry-After HTTP date", status: 429,
			header:      http.Header{"Retry-After": {time.Now().Add(30 * time.Second).UTC().Format(http.TimeFormat)}},
			wantMessage: "Too Many Requests", wantTracking: "ROUTER_HDR",
			wantWait: func(d time.Duration) bool { return d > 25*time.Second && d <= 30*time.Second },
		},
		{
			name: "429 Retry-After date in the past", status: 429,
			header:      http.Header{"Retry-After": {"Sun, 06 Nov 1994 08:49:37 GMT"}},
			wantMessage: "Too Many Requests", wantTracking: "ROUTER_HDR",
		},
		{
			name: "429 Retry-After garbage", status: 429, header: http.Header{"Retry-After": {"soon"}},
			wantMessage: "Too Many Requests", wantTracking: "ROUTER_HDR",
		},
		{
			name: "429 Retry-After negative", status: 429, header: http.Header{"Retry-After": {"-3"}},
			wantMessage: "Too Many Requests", wantTracking: "ROUTER_HDR",
		},
		{
			name: "429 Retry-After huge", status: 429, header: http.Header{"Retry-After": {"99999999999999999999"}},
			wantMessage: "Too Many Requests", wantTracking: "ROUTER_HDR",
			wantWait: func(d time.Duration) bool { return d == 0 }, // beyond uint64: ignored, not overflowed
		},
		{
			name: "423 Locked with Retry-After", status: 423, header: http.Header{"Retry-After": {"2"}},
			wantMessage: "Locked", wantTracking: "ROUTER_HDR",
			wantWait: func(d time.Duration) bool { return d == 2*time.Second },
		},
		{name: "408", status: 408, wantMessage: "Request Timeout", wantTracking: "ROUTER_HDR"},
		{name: "425", status: 425, wantMessage: "Too Early", wantTracking: "ROUTER_HDR"},
		{
			name: "503 without body", status: 503,
			wantMessage: "Service Unavailable", wantTracking: "ROUTER_HDR",
			wantString: "webex get_person: 503 Service Unavailable (trackingId ROUTER_HDR)",
		},
		{
			name: "502 HTML from a proxy", status: 502, body: []byte("<html><body>Bad Gateway</body></html>"),
			wantMessage: "Bad Gateway", wantTracking: "ROUTER_HDR",
		},
		{name: "500 empty JSON", status: 500, body: []byte(`{}`), wantMessage: "Internal Server Error", wantTracking: "ROUTER_HDR"},
		{
			name: "400 with details", status: 400,
			body:        []byte(`{"message":"Invalid email address.","errors":[{"description":"Invalid email address."}],"trackingId":"ROUTER_400"}`),
			wantMessage: "Invalid email address.", wantTracking: "ROUTER_400", wantPermanent: true,
		},
		{name: "401", status: 401, wantMessage: "Unauthorized", wantTracking: "ROUTER_HDR", wantPermanent: true},
		{name: "403", status: 403, wantMessage: "Forbidden", wantTracking: "ROUTER_HDR", wantPermanent: true},
		{name: "410", status: 410, wantMessage: "Gone", wantTracking: "ROUTER_HDR", wantPermanent: true},
		{
			name: "message echoing the token", status: 401,
			body:        []byte(`{"message":"bad token ` + testToken + `\nretry","trackingId":"ROUTER_401"}`),
			wantMessage: "bad token [redacted] retry", wantTracking: "ROUTER_401", wantPermanent: true,
		},
		{
			name: "long message", status: 400,
			body:        []byte(`{"message":"` + strings.Repeat("é", 600) + `"}`),
			wantMessage: strings.Repeat("é", 256) + "…", wantTracking: "ROUTER_HDR", wantPermanent: true,
		},
		{
			name: "503 larger than the cap", status: 503,
			body:        []byte(`{"message":"` + strings.Repeat("x", maxBodyBytes) + `"}`),
			wantMessage: "Service Unavailable", wantTracking: "ROUTER_HDR",
		},
		{
			name: "redirect not followed", status: 302, header: http.Header{"Location": {"https://elsewhere.example/v1/people/x"}},
			wantMessage: "Found", wantTracking: "ROUTER_HDR",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
				for k, vs := range tc.header {
					w.Header()[k] = vs
				}
				w.Header().Set("TrackingID", "ROUTER_HDR")
				if tc.body != nil {
					w.Header().Set("Content-Type", "application/json")
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write(tc.body)
			})
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			_, err := f.client(t, func(o *Options) { o.Metrics = m }).Person(t.Context(), "p1")
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q holds the token", err)
			}
			var apiErr *APIError
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T) is not an *APIError", err, err)
			}
			if apiErr.Operation != "get_person" || apiErr.Status != tc.status {
				t.Errorf("operation %q status %d", apiErr.Operation, apiErr.Status)
			}
			if apiErr.Message != tc.wantMessage {
				t.Errorf("Message = %q, want %q", apiErr.Message, tc.wantMessage)
			}
			if apiErr.TrackingID != tc.wantTracking {
				t.Errorf("TrackingID = %q, want %q", apiErr.TrackingID, tc.wantTracking)
			}
			wantWait := tc.wantWait
			if wantWait == nil {
				wantWait = func(d time.Duration) bool { return d == 0 }
			}
			if !wantWait(apiErr.Wait) || apiErr.RetryAfter() != apiErr.Wait {
				t.Errorf("Wait = %v, RetryAfter() = %v", apiErr.Wait, apiErr.RetryAfter())
			}
			if apiErr.Permanent() != tc.wantPermanent {
				t.Errorf("Permanent() = %v, want %v", apiErr.Permanent(), tc.wantPermanent)
			}
			if IsNotFound(err) != (tc.status == 404) {
				t.Errorf("IsNotFound = %v", IsNotFound(err))
			}
			if tc.wantString != "" && err.Error() != tc.wantString {
				t.Errorf("Error() = %q\nwant      %q", err.Error(), tc.wantString)
			}
			if got := testutil.ToFloat64(m.requests.WithLabelValues("get_person", fmt.Sprint(tc.status))); got != 1 {
				t.Errorf("requests{get_person,%d} = %v, want 1", tc.status, got)
			}
		})
	}
}

func TestIsNotFound(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"404", &APIError{Status: 404}, true},
		{"wrapped 404", fmt.Errorf("fetch person p1: %w", &APIError{Status: 404}), true},
		{"410", &APIError{Status: 410}, false},
		{"other error", errors.New("not found"), false},
		{"nil", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := IsNotFound(tc.err); got != tc.want {
				t.Errorf("IsNotFound = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestTransportErrors(t *testing.T) {
	t.Parallel()
	// stall answers nothing until the client gives up or the test ends.
	stall := func(done <-chan struct{}) http.HandlerFunc {
		return func(_ http.ResponseWriter, r *http.Request) {
			select {
			case <-r.Context().Done():
			case <-done:
			}
		}
	}
	cases := []struct {
		name    string
		handler func(done <-chan struct{}) http.HandlerFunc
		timeout time.Duration
		ctx     func(t *testing.T) context.Context
		closed  bool // the server is gone before the call
		wantIs  error
	}{
		{
			name: "server slower than Timeout", handler: stall, timeout: 50 * time.Millisecond,
			wantIs: context.DeadlineExceeded,
		},
		{
			name: "caller's deadline shorter than Timeout", handler: stall, timeout: time.Minute,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
				t.Cleanup(cancel)
				return ctx
			},
			wantIs: context.DeadlineExceeded,
		},
		{
			name: "caller cancels", handler: stall, timeout: time.Minute,
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(50*time.Millisecond, cancel)
				return ctx
			},
			wantIs: context.Canceled,
		},
		{
			name: "body stalls past Timeout", timeout: 100 * time.Millisecond,
			handler: func(done <-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, r *http.Request) {
					w.Header().Set("Content-Type", "application/json")
					w.WriteHeader(200)
					_, _ = w.Write([]byte(`{"id":`))
					w.(http.Flusher).Flush()
					stall(done)(w, r)
				}
			},
			wantIs: context.DeadlineExceeded,
		},
		{
			name: "connection cut mid-body", timeout: time.Minute,
			handler: func(<-chan struct{}) http.HandlerFunc {
				return func(w http.ResponseWriter, _ *http.Request) {
					conn, buf, err := w.(http.Hijacker).Hijack()
					if err != nil {
						panic(err)
					}
					_, _ = buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"id\":")
					_ = buf.Flush()
					_ = conn.Close()
				}
			},
			wantIs: io.ErrUnexpectedEOF,
		},
		{name: "connection refused", closed: true, timeout: time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			handler := http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})
			if tc.handler != nil {
				handler = tc.handler(done)
			}
			f := newFakeWebex(t, handler)
			t.Cleanup(func() { close(done) }) // runs before the server closes
			reg := prometheus.NewRegistry()
			c := f.client(t, func(o *Options) { o.Timeout, o.Metrics = tc.timeout, NewMetrics(reg) })
			if tc.closed {
				f.srv.Close()
			}
			ctx := t.Context()
			if tc.ctx != nil {
				ctx = tc.ctx(t)
			}
			_, err := c.Me(ctx)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
				t.Errorf("error %v is not %v", err, tc.wantIs)
			}
			var apiErr *APIError
			if errors.As(err, &apiErr) {
				t.Errorf("transport error became an APIError: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "webex get_me: ") {
				t.Errorf("error %q does not name the operation", err)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q holds the token", err)
			}
			m := NewMetrics(reg) // the same collectors
			if got := testutil.ToFloat64(m.requests.WithLabelValues("get_me", "error")); got != 1 {
				t.Errorf(`requests{get_me,"error"} = %v, want 1`, got)
			}
			if n := testutil.CollectAndCount(reg, "sparkguard_webex_api_requests_total"); n != 1 {
				t.Errorf("%d request series, want only the error one", n)
			}
		})
	}
}

func TestAnswersThatCannotBeRead(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		body    []byte
		wantErr string
	}{
		{"larger than the cap", []byte(`{"id":"` + strings.Repeat("x", maxBodyBytes) + `"}`), "webex get_me: read answer (status 200): larger than 1048576 bytes"},
		{"not JSON", []byte("<html>hello</html>"), "webex get_me: decode answer (status 200): "},
		{"empty", nil, "webex get_me: decode answer (status 200): "},
		{"wrong shape", []byte(`{"id":42}`), "webex get_me: decode answer (status 200): "},
		{"null", []byte(`null`), "webex get_me: decode answer: no id in it"},
		{"no id", []byte(`{"displayName":"EchoBot","type":"bot"}`), "webex get_me: decode answer: no id in it"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, tc.body) })
			_, err := f.client(t).Me(t.Context())
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Errorf("error = %v, want %q…", err, tc.wantErr)
			}
		})
	}
}

// webhookPages serves GET /v1/webhooks as pages chosen by the "cursor"
// query parameter (none for the first page), each with its Link fields.
type webhookPage struct {
	ids   []string
	links []string // Link header fields; "{base}" becomes the server's URL
}

func servePages(t *testing.T, pages map[string]webhookPage) *fakeWebex {
	t.Helper()
	var f *fakeWebex
	f = newFakeWebex(t, func(w http.ResponseWriter, r *http.Request) {
		page, ok := pages[r.URL.Query().Get("cursor")]
		if !ok || r.URL.Path != "/v1/webhooks" {
			writeJSON(w, 404, readTestdata(t, "error-404.json"))
			return
		}
		items := make([]Webhook, 0, len(page.ids))
		for _, id := range page.ids {
			items = append(items, Webhook{ID: id, Name: "hook " + id, TargetURL: "https://bot.example.com/webhooks/webex", Resource: "messages", Event: "created"})
		}
		body, _ := json.Marshal(map[string]any{"items": items})
		for _, l := range page.links {
			w.Header().Add("Link", strings.ReplaceAll(l, "{base}", f.srv.URL))
		}
		writeJSON(w, 200, body)
	})
	return f
}

func TestWebhooksFollowsLinks(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		pages       map[string]webhookPage
		wantIDs     []string
		wantCursors []string
	}{
		{
			name: "three pages, one link each",
			pages: map[string]webhookPage{
				"":   {ids: []string{"w1", "w2", "w3"}, links: []string{`<{base}/v1/webhooks?max=100&cursor=c2>; rel="next"`}},
				"c2": {ids: []string{"w4", "w5", "w6"}, links: []string{`<{base}/v1/webhooks?max=100&cursor=c3>; rel="next"`}},
				"c3": {ids: []string{"w7"}},
			},
			wantIDs:     []string{"w1", "w2", "w3", "w4", "w5", "w6", "w7"},
			wantCursors: []string{"", "c2", "c3"},
		},
		{
			name: "several rels in one field",
			pages: map[string]webhookPage{
				"": {ids: []string{"w1", "w2"}, links: []string{
					`<{base}/v1/webhooks?max=100>; rel="first", <{base}/v1/webhooks?max=100&cursor=c2>; rel="next", <{base}/v1/webhooks?max=100&cursor=c3>; rel="last"`,
				}},
				"c2": {ids: []string{"w3"}, links: []string{
					`<{base}/v1/webhooks?max=100&cursor=c1>; rel="prev"; title="back, one", <{base}/v1/webhooks?max=100&cursor=c3>; rel=next`,
				}},
				"c3": {ids: []string{"w4"}, links: []string{
					`<{base}/v1/webhooks?max=100>; rel="first", <{base}/v1/webhooks?max=100&cursor=c2>; rel="prev"`,
				}},
			},
			wantIDs:     []string{"w1", "w2", "w3", "w4"},
			wantCursors: []string{"", "c2", "c3"},
		},
		{
			name: "several fields, relative links",
			pages: map[string]webhookPage{
				"": {ids: []string{"w1"}, links: []string{
					`<{base}/v1/webhooks?max=100>; rel="first"`,
					`</v1/webhooks?max=100&cursor=a%2Cb>; rel="next"`,
				}},
				"a,b": {ids: []string{"w2"}, links: []string{`<?max=100&cursor=c3>; rel="last next"`}},
				"c3":  {ids: []string{"w3"}, links: []string{`<webhooks?max=100>; rel="first"`}},
			},
			wantIDs:     []string{"w1", "w2", "w3"},
			wantCursors: []string{"", "a,b", "c3"},
		},
		{
			name:        "no webhooks",
			pages:       map[string]webhookPage{"": {}},
			wantIDs:     []string{},
			wantCursors: []string{""},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := servePages(t, tc.pages)
			got, err := f.client(t).Webhooks(t.Context())
			if err != nil {
				t.Fatalf("Webhooks: %v", err)
			}
			ids := []string{}
			for _, w := range got {
				ids = append(ids, w.ID)
			}
			if !reflect.DeepEqual(ids, tc.wantIDs) {
				t.Errorf("ids %v, want %v", ids, tc.wantIDs)
			}
			var cursors []string
			for i, r := range f.requests() {
				cursors = append(cursors, r.Query.Get("cursor"))
				if r.Query.Get("max") != "100" {
					t.Errorf("request %d: max = %q", i, r.Query.Get("max"))
				}
				checkRequestHeaders(t, r, false)
			}
			if !reflect.DeepEqual(cursors, tc.wantCursors) {
				t.Errorf("pages asked %q, want %q", cursors, tc.wantCursors)
			}
		})
	}
}

func TestWebhooksRefusesBadLinks(t *testing.T) {
	t.Parallel()
	elsewhere := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, []byte(`{"items":[]}`))
	})
	elsewhereHost := strings.TrimPrefix(elsewhere.srv.URL, "http://")
	cases := []struct {
		name     string
		link     string // first page's Link; "{base}" is the server's URL, "{host}" its host
		wantErr  string
		wantReqs int // requests the real server sees
	}{
		{name: "another host", link: `<` + elsewhere.srv.URL + `/v1/webhooks?cursor=c2>; rel="next"`,
			wantErr: "webex list_webhooks: follow Link header of page 1: refusing next page at http://" + elsewhereHost, wantReqs: 1},
		{name: "another host, protocol-relative", link: `<//` + elsewhereHost + `/v1/webhooks?cursor=c2>; rel="next"`,
			wantErr: "refusing next page at http://" + elsewhereHost, wantReqs: 1},
		{name: "another scheme", link: `<https://{host}/v1/webhooks?cursor=c2>; rel="next"`,
			wantErr: "refusing next page at https://", wantReqs: 1},
		{name: "next is the same page", link: `<{base}/v1/webhooks?max=100>; rel="next"`,
			wantErr: "webex list_webhooks: follow Link header of page 1: next page repeats an earlier one", wantReqs: 1},
		{name: "malformed Link", link: `{base}/v1/webhooks?cursor=c2; rel="next"`,
			wantErr: "webex list_webhooks: parse Link header of page 1: link 1: want '<'", wantReqs: 1},
		{name: "unterminated quote", link: `<{base}/v1/webhooks?cursor=c2>; rel="next`,
			wantErr: "parse Link header of page 1: link 1: parameter \"rel\": unterminated quoted string", wantReqs: 1},
		{name: "unparsable next URL", link: `<http://[::1/v1>; rel="next"`,
			wantErr: "webex list_webhooks: parse next page URL of page 1: ", wantReqs: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var f *fakeWebex
			f = newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
				l := strings.ReplaceAll(tc.link, "{base}", f.srv.URL)
				w.Header().Set("Link", strings.ReplaceAll(l, "{host}", strings.TrimPrefix(f.srv.URL, "http://")))
				writeJSON(w, 200, []byte(`{"items":[{"id":"w1"}]}`))
			})
			got, err := f.client(t).Webhooks(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want one containing %q", err, tc.wantErr)
			}
			if got != nil {
				t.Errorf("partial list returned: %v", got)
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error %q holds the token", err)
			}
			if n := len(f.requests()); n != tc.wantReqs {
				t.Errorf("server saw %d requests, want %d", n, tc.wantReqs)
			}
		})
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Errorf("the other host got %d requests; the token went there", n)
	}
}

func TestWebhooksStopsEndlessPaging(t *testing.T) {
	t.Parallel()
	var f *fakeWebex
	n := 0
	var mu sync.Mutex
	f = newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		n++
		next := n
		mu.Unlock()
		w.Header().Set("Link", fmt.Sprintf(`<%s/v1/webhooks?max=100&cursor=%d>; rel="next"`, f.srv.URL, next))
		writeJSON(w, 200, []byte(`{"items":[]}`))
	})
	_, err := f.client(t).Webhooks(t.Context())
	if want := "webex list_webhooks: follow Link header: more than 1000 pages"; err == nil || err.Error() != want {
		t.Errorf("error = %v, want %q", err, want)
	}
	if got := len(f.requests()); got != maxPages {
		t.Errorf("server saw %d requests, want %d", got, maxPages)
	}
}

// A page that fails ends the listing with that page's error, not a partial
// list.
func TestWebhooksPageError(t *testing.T) {
	t.Parallel()
	f := servePages(t, map[string]webhookPage{
		"": {ids: []string{"w1"}, links: []string{`<{base}/v1/webhooks?max=100&cursor=gone>; rel="next"`}},
	})
	got, err := f.client(t).Webhooks(t.Context())
	if !IsNotFound(err) || got != nil {
		t.Errorf("Webhooks = %v, %v; want nil and a 404", got, err)
	}
}

func TestParseLinkHeader(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name    string
		value   string
		want    []link
		wantErr string
	}{
		{"one", `<https://x/v1/webhooks?cursor=a>; rel="next"`, []link{{"https://x/v1/webhooks?cursor=a", "next"}}, ""},
		{"empty", ``, nil, ""},
		{"no params", `<https://x/a>`, []link{{"https://x/a", ""}}, ""},
		{"several", `<a>; rel="first", <b>;rel=next ,<c> ; rel="last"`, []link{{"a", "first"}, {"b", "next"}, {"c", "last"}}, ""},
		{"comma in target", `<https://x/?c=a,b>; rel="next"`, []link{{"https://x/?c=a,b", "next"}}, ""},
		{"comma and semicolon in quoted param", `<a>; title="x, y; z"; rel="next", <b>; rel="prev"`, []link{{"a", "next"}, {"b", "prev"}}, ""},
		{"escaped quote", `<a>; title="say \"hi\""; rel=next`, []link{{"a", "next"}}, ""},
		{"first rel wins", `<a>; rel="prev"; rel="next"`, []link{{"a", "prev"}}, ""},
		{"REL upper case", `<a>; REL="next"`, []link{{"a", "next"}}, ""},
		{"valueless param", `<a>; crossorigin; rel="next"`, []link{{"a", "next"}}, ""},
		{"empty list elements", `, <a>; rel="next",,`, []link{{"a", "next"}}, ""},
		{"no angle brackets", `https://x/a; rel="next"`, nil, "link 1: want '<', found 'h'"},
		{"unterminated target", `<https://x/a; rel="next"`, nil, "link 1: unterminated '<'"},
		{"junk after target", `<a> rel="next"`, nil, "link 1: want ';' or ',', found 'r'"},
		{"unterminated quote", `<a>; rel="next`, nil, `link 1: parameter "rel": unterminated quoted string`},
		{"dangling escape", `<a>; rel="next\`, nil, `link 1: parameter "rel": unterminated quoted string`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := parseLinkHeader(tc.value)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Errorf("error = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("links = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestNextLink(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		fields []string
		want   string
	}{
		{"none", nil, ""},
		{"no next", []string{`<a>; rel="prev"`}, ""},
		{"next in second field", []string{`<a>; rel="prev"`, `<b>; rel="next"`}, "b"},
		{"first next wins", []string{`<a>; rel="next", <b>; rel="next"`}, "a"},
		{"next among rel types", []string{`<a>; rel="last NEXT"`}, "a"},
		{"nextish is not next", []string{`<a>; rel="next-archive"`}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := http.Header{}
			for _, f := range tc.fields {
				h.Add("Link", f)
			}
			got, err := nextLink(h)
			if err != nil || got != tc.want {
				t.Errorf("nextLink = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// FuzzParseLinkHeader feeds the parser what a server may send: it must not
// panic, and a target it returns never spans a '>'.
func FuzzParseLinkHeader(f *testing.F) {
	f.Add(`<https://webexapis.com/v1/webhooks?max=100&cursor=abc>; rel="next"`)
	f.Add(`<a>; rel="first", <b>; rel=next; title="x, \"y\""`)
	f.Add(`<`)
	f.Add(`<a>; rel="`)
	f.Fuzz(func(t *testing.T, v string) {
		links, err := parseLinkHeader(v)
		if err != nil {
			return
		}
		for _, l := range links {
			if strings.Contains(l.target, ">") {
				t.Errorf("target %q holds '>'", l.target)
			}
		}
	})
}

func TestMetricsSharedAcrossNewMetrics(t *testing.T) {
	t.Parallel()
	f := newFakeWebex(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/people/me" {
			writeJSON(w, 200, readTestdata(t, "people-me.json"))
			return
		}
		writeJSON(w, 404, readTestdata(t, "error-404.json"))
	})
	reg := prometheus.NewRegistry()
	first := NewMetrics(reg)
	second := NewMetrics(reg) // the all-in-one: a second service, same registry
	if first.requests != second.requests || first.duration != second.duration {
		t.Fatal("the second NewMetrics did not reuse the registered collectors")
	}
	authz := f.client(t, func(o *Options) { o.Metrics = first })
	responder := f.client(t, func(o *Options) { o.Metrics = second })
	for _, c := range []*Client{authz, authz, responder} {
		if _, err := c.Me(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := responder.Person(t.Context(), "nobody"); !IsNotFound(err) {
		t.Fatalf("Person: %v, want a 404", err)
	}

	if got := testutil.ToFloat64(first.requests.WithLabelValues("get_me", "200")); got != 3 {
		t.Errorf("requests{get_me,200} = %v, want 3", got)
	}
	want := `
# HELP sparkguard_webex_api_requests_total Webex REST API calls, by operation and HTTP status code ("error" when no complete answer came).
# TYPE sparkguard_webex_api_requests_total counter
sparkguard_webex_api_requests_total{code="200",operation="get_me"} 3
sparkguard_webex_api_requests_total{code="404",operation="get_person"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "sparkguard_webex_api_requests_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "sparkguard_webex_api_request_duration_seconds"); n != 2 {
		t.Errorf("%d duration series, want 2 (get_me, get_person)", n)
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]uint64{}
	for _, mf := range families {
		if mf.GetName() != "sparkguard_webex_api_request_duration_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetHistogram().GetSampleCount()
		}
	}
	if want := map[string]uint64{"get_me": 3, "get_person": 1}; !reflect.DeepEqual(counts, want) {
		t.Errorf("duration sample counts %v, want %v", counts, want)
	}
}

func TestNewMetricsWithoutRegistry(t *testing.T) {
	t.Parallel()
	m := NewMetrics(nil)
	m.observe("get_me", 200, time.Millisecond)
	if got := testutil.ToFloat64(m.requests.WithLabelValues("get_me", "200")); got != 1 {
		t.Errorf("count = %v", got)
	}
	var none *Metrics
	none.observe("get_me", 200, time.Millisecond) // no metrics: no panic
}

func TestNewMetricsNameClashPanics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "sparkguard_webex_api_requests_total", Help: "something else",
	}, []string{"endpoint"}))
	defer func() {
		if recover() == nil {
			t.Error("NewMetrics accepted a clashing metric")
		}
	}()
	NewMetrics(reg)
}

// The default client does not follow redirects, so neither the token nor a
// body travels on; the redirect is reported as it came.
func TestDefaultClientDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	elsewhere := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, readTestdata(t, "message.json"))
	})
	f := newFakeWebex(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, elsewhere.srv.URL+"/v1/messages", http.StatusTemporaryRedirect)
	})
	_, err := f.client(t).CreateMessage(t.Context(), MessageRequest{RoomID: "r", Text: "hi"})
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Status != http.StatusTemporaryRedirect {
		t.Errorf("error = %v, want a 307 APIError", err)
	}
	if n := len(elsewhere.requests()); n != 0 {
		t.Errorf("redirect followed: %d requests elsewhere", n)
	}
}

// A caller's own HTTP client is used as given.
func TestOwnHTTPClient(t *testing.T) {
	t.Parallel()
	f := newFakeWebex(t, func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, 200, readTestdata(t, "people-me.json"))
	})
	var used bool
	var mu sync.Mutex
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		used = true
		mu.Unlock()
		return http.DefaultTransport.RoundTrip(r)
	})}
	if _, err := f.client(t, func(o *Options) { o.HTTPClient = hc }).Me(t.Context()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !used {
		t.Error("Options.HTTPClient not used")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
