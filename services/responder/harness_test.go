package responder

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/bus/bustest"
	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

// testToken is the bot's token in the emulator; distinctive, so that a test
// can tell it never reached a log.
const testToken = "tok-responder-test-7f3a9c"

// waitTimeout bounds every wait for something asynchronous.
const waitTimeout = 20 * time.Second

// apiRecorder sits between the Webex client and the emulator: it records
// when each POST /messages starts and how many run at once, and can rewrite
// the message a GET /messages/{id} answers (for shapes the emulator cannot
// post, such as a mention by raw uuid or an over-long text).
type apiRecorder struct {
	next http.Handler

	mu          sync.Mutex
	createTimes []time.Time
	inFlight    int
	maxInFlight int
	rewrites    map[string]func(*webex.Message)
}

func (a *apiRecorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/v1/messages":
		a.mu.Lock()
		a.createTimes = append(a.createTimes, time.Now())
		a.inFlight++
		a.maxInFlight = max(a.maxInFlight, a.inFlight)
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			a.inFlight--
			a.mu.Unlock()
		}()
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/messages/"):
		a.mu.Lock()
		rewrite := a.rewrites[strings.TrimPrefix(r.URL.Path, "/v1/messages/")]
		a.mu.Unlock()
		if rewrite != nil {
			a.serveRewritten(w, r, rewrite)
			return
		}
	}
	a.next.ServeHTTP(w, r)
}

func (a *apiRecorder) serveRewritten(w http.ResponseWriter, r *http.Request, rewrite func(*webex.Message)) {
	rec := httptest.NewRecorder()
	a.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code == http.StatusOK {
		var m webex.Message
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		rewrite(&m)
		body, _ = json.Marshal(m)
	}
	for k, v := range rec.Header() {
		if k != "Content-Length" {
			w.Header()[k] = v
		}
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(body)
}

// rewrite makes GET /messages/{id} answer the message as fn changes it.
func (a *apiRecorder) rewrite(id string, fn func(*webex.Message)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rewrites == nil {
		a.rewrites = map[string]func(*webex.Message){}
	}
	a.rewrites[id] = fn
}

func (a *apiRecorder) creates() []time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]time.Time(nil), a.createTimes...)
}

func (a *apiRecorder) maxConcurrentCreates() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.maxInFlight
}

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// harness is one responder replica on a real embedded JetStream, calling
// the Webex emulator through an apiRecorder.
type harness struct {
	sim   *webexsim.Sim
	api   *apiRecorder
	js    jetstream.JetStream
	reg   *prometheus.Registry
	resp  *Responder
	cfg   Config
	logs  *syncBuffer
	alice webex.Person
	done  chan error
	stop  func() error
}

type harnessOptions struct {
	// configure changes the test configuration before the responder is
	// built.
	configure func(*Config)
	// noWait starts the responder without waiting for it to be ready.
	noWait bool
	// beforeStart prepares the emulator before the responder starts.
	beforeStart func(*webexsim.Sim)
}

// testConfig is a configuration with short backoffs and ack wait, so that
// retries take milliseconds.
func testConfig(apiURL string) Config {
	return Config{
		Webex:       webex.Config{APIURL: apiURL, Token: config.Secret(testToken), Timeout: 2 * time.Second},
		Concurrency: 16,
		MaxDeliver:  10,
		Worker: bus.WorkerConfig{
			AckWait:    3 * time.Second,
			MinBackoff: 50 * time.Millisecond,
			MaxBackoff: 250 * time.Millisecond,
		},
	}
}

func newHarness(t *testing.T, opts harnessOptions) *harness {
	t.Helper()
	srv := bustest.StartServer(t, bustest.Options{})
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	nc, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, "responder-test", log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}

	sim := webexsim.New(webexsim.Options{Token: testToken})
	api := &apiRecorder{next: sim.Handler()}
	hs := httptest.NewServer(api)
	t.Cleanup(hs.Close)
	t.Cleanup(sim.Close)

	cfg := testConfig(hs.URL + "/v1")
	if opts.configure != nil {
		opts.configure(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	client, err := cfg.Webex.NewClient(webex.NewMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	if opts.beforeStart != nil {
		opts.beforeStart(sim)
	}
	r := New(cfg, Deps{JS: js, Webex: client, Registry: reg, Log: log})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(waitTimeout):
				t.Error("responder did not stop")
			}
		})
		return runErr
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("responder run: %v", err)
		}
	})
	h := &harness{
		sim: sim, api: api, js: js, reg: reg, resp: r, cfg: cfg, logs: logs, done: done, stop: stop,
		alice: sim.AddPerson(webex.Person{Emails: []string{"alice@example.com"}, DisplayName: "Alice"}),
	}
	if !opts.noWait {
		waitFor(t, "responder ready", func() bool { return r.Ready(context.Background()) == nil })
	}
	return h
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// post makes Alice (unless p names someone) post a message in the emulator.
func (h *harness) post(t *testing.T, p webexsim.Post) webex.Message {
	t.Helper()
	if p.PersonID == "" {
		p.PersonID = h.alice.ID
	}
	m, err := h.sim.Post(p)
	if err != nil {
		t.Fatalf("post %+v: %v", p, err)
	}
	return m
}

// authorized is the record authz would publish for m.
func (h *harness) authorized(m webex.Message) *sparkguardv1.AuthorizedMessage {
	return &sparkguardv1.AuthorizedMessage{
		MessageId:   m.ID,
		RoomId:      m.RoomID,
		RoomType:    m.RoomType,
		PersonId:    m.PersonID,
		PersonEmail: m.PersonEmail,
		Reason:      sparkguardv1.AllowReason_ALLOW_REASON_EMAIL,
		ReceivedAt:  timestamppb.Now(),
		RequestId:   "req-" + m.ID[len(m.ID)-8:],
	}
}

// publish stores rec on the authorized subject as authz does, with msgID
// as its Nats-Msg-Id.
func (h *harness) publish(t *testing.T, rec *sparkguardv1.AuthorizedMessage, msgID string) []byte {
	t.Helper()
	data, err := proto.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	h.publishRaw(t, data, msgID, rec.GetRequestId())
	return data
}

func (h *harness) publishRaw(t *testing.T, data []byte, msgID, requestID string) {
	t.Helper()
	msg := nats.NewMsg(bus.SubjectAuthorized)
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, msgID)
	if requestID != "" {
		msg.Header.Set(bus.HeaderRequestID, requestID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := h.js.PublishMsg(ctx, msg); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// botReplies returns the bot's messages in room.
func (h *harness) botReplies(room string) []webex.Message {
	var out []webex.Message
	for _, m := range h.sim.Messages(room) {
		if m.PersonID == h.sim.Bot().ID {
			out = append(out, m)
		}
	}
	return out
}

// waitReply waits for the bot's first reply in room.
func (h *harness) waitReply(t *testing.T, room string) webex.Message {
	t.Helper()
	waitFor(t, "the bot's reply", func() bool { return len(h.botReplies(room)) > 0 })
	return h.botReplies(room)[0]
}

// outcome is the value of sparkguard_responder_replies_total{outcome}.
func (h *harness) outcome(t *testing.T, outcome string) float64 {
	t.Helper()
	return metricValue(t, h.reg, "sparkguard_responder_replies_total", map[string]string{"outcome": outcome})
}

// metricValue reads one counter or gauge series from reg, by name and
// labels; it fails the test when there is no such series.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	m := findMetric(t, reg, name, labels)
	if m == nil {
		t.Fatalf("no metric %s%v", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("metric %s is neither counter nor gauge", name)
	return 0
}

// findMetric returns the series of name with exactly labels, or nil.
func findMetric(t *testing.T, reg prometheus.Gatherer, name string, labels map[string]string) *dto.Metric {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					continue series
				}
			}
			return m
		}
	}
	return nil
}

// deadLetters returns every record on the responder's dead-letter subject.
func (h *harness) deadLetters(t *testing.T) []*sparkguardv1.DeadLetter {
	t.Helper()
	var out []*sparkguardv1.DeadLetter
	for _, raw := range bustest.Stored(t, h.js, bus.StreamDeadLetter) {
		if raw.Subject != bus.DeadLetterSubject(bus.ConsumerResponder) {
			continue
		}
		var dl sparkguardv1.DeadLetter
		if err := proto.Unmarshal(raw.Data, &dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, &dl)
	}
	return out
}

// replyRecord returns the replies bucket's value for a message id, "" when
// there is none.
func (h *harness) replyRecord(t *testing.T, messageID string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	kv, err := h.js.KeyValue(ctx, bus.BucketReplies)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := kv.Get(ctx, replyKey(messageID))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(entry.Value())
}

// unknownMessageID is a message id in the real format that the emulator
// does not know.
func unknownMessageID() string {
	return base64.RawStdEncoding.EncodeToString([]byte("ciscospark://us/MESSAGE/00000000-0000-4000-8000-000000000000"))
}
