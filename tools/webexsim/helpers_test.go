package webexsim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
)

const testToken = "test-token"

// env is a Sim served by a real HTTP server.
type env struct {
	sim *Sim
	srv *httptest.Server
}

// newEnv serves a Sim made from opts (Token defaults to testToken) until
// the test ends; the Sim is closed first, so deliveries finish.
func newEnv(t *testing.T, opts Options) *env {
	t.Helper()
	if opts.Token == "" {
		opts.Token = testToken
	}
	sim := New(opts)
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(srv.Close)
	t.Cleanup(sim.Close)
	return &env{sim: sim, srv: srv}
}

// call sends an API request with the test token; body, when not nil, is
// sent as JSON.
func (e *env) call(t *testing.T, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	return e.callWith(t, "Bearer "+testToken, method, path, body)
}

// callWith sends a request with the given Authorization header ("" for
// none).
func (e *env) callWith(t *testing.T, auth, method, path string, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = e.srv.URL + path
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer of %s %s: %v", method, path, err)
	}
	return resp, b
}

// callRaw sends body as is, with Content-Type ct.
func (e *env) callRaw(t *testing.T, method, path, ct, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer of %s %s: %v", method, path, err)
	}
	return resp, b
}

// mustCall is call that fails the test unless the answer has status want,
// and decodes the answer into out (when not nil).
func (e *env) mustCall(t *testing.T, want int, method, path string, body, out any) *http.Response {
	t.Helper()
	resp, b := e.call(t, method, path, body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d; body %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
	return resp
}

func mustUnmarshal(t *testing.T, b []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// checkError checks that an answer is a Webex-shaped error with status.
func checkError(t *testing.T, resp *http.Response, body []byte, status int) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d, want %d; body %s", resp.StatusCode, status, body)
	}
	var eb webex.ErrorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		t.Fatalf("error body %s: %v", body, err)
	}
	if eb.Message == "" || len(eb.Errors) != 1 || eb.Errors[0].Description == "" || eb.TrackingID == "" {
		t.Errorf("error body %s lacks message, errors[0].description or trackingId", body)
	}
	if got := resp.Header.Get("TrackingID"); got != eb.TrackingID {
		t.Errorf("TrackingID header %q, body trackingId %q", got, eb.TrackingID)
	}
}

// delivery is one webhook delivery a receiver got.
type delivery struct {
	path   string
	header http.Header
	body   []byte
}

// receiver is a webhook target: it records deliveries and answers status.
type receiver struct {
	srv *httptest.Server

	mu     sync.Mutex
	got    []delivery
	status int
}

func newReceiver(t *testing.T) *receiver {
	t.Helper()
	rc := &receiver{status: http.StatusOK}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, delivery{path: r.URL.Path, header: r.Header.Clone(), body: b})
		status := rc.status
		rc.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

// url is the target URL for path.
func (rc *receiver) url(path string) string { return rc.srv.URL + path }

func (rc *receiver) answer(status int) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.status = status
}

// deliveries returns what was delivered to path ("" for every path).
func (rc *receiver) deliveries(path string) []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	var out []delivery
	for _, d := range rc.got {
		if path == "" || d.path == path {
			out = append(out, d)
		}
	}
	return out
}

// events decodes the deliveries to path.
func (rc *receiver) events(t *testing.T, path string) []webex.Event {
	t.Helper()
	var out []webex.Event
	for _, d := range rc.deliveries(path) {
		var ev webex.Event
		if err := json.Unmarshal(d.body, &ev); err != nil {
			t.Fatalf("decode delivery %s: %v", d.body, err)
		}
		out = append(out, ev)
	}
	return out
}

// waitFor polls cond until it holds, failing the test after a while.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// addPerson adds a person with email to the Sim.
func (e *env) addPerson(email string) webex.Person {
	return e.sim.AddPerson(webex.Person{Emails: []string{email}})
}

// webhookStatus returns the status of webhook id.
func (e *env) webhookStatus(id string) string {
	for _, w := range e.sim.Webhooks() {
		if w.ID == id {
			return w.Status
		}
	}
	return ""
}
