package authz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/bus/bustest"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

// world is one test's real parts: an embedded JetStream, the Webex
// emulator behind a real HTTP server, and a record of the person look-ups
// that reached it.
type world struct {
	srv *server.Server
	js  jetstream.JetStream
	sim *webexsim.Sim
	api string
	reg *prometheus.Registry
	log *syncBuffer

	mu          sync.Mutex
	personCalls []time.Time
}

func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{
		srv: bustest.StartServer(t, bustest.Options{}),
		sim: webexsim.New(webexsim.Options{}),
		reg: prometheus.NewRegistry(),
		log: &syncBuffer{},
	}
	_, w.js = bustest.Connect(t, w.srv)
	inner := w.sim.Handler()
	httpSrv := httptest.NewServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/v1/people/") && r.URL.Path != "/v1/people/me" {
			w.mu.Lock()
			w.personCalls = append(w.personCalls, time.Now())
			w.mu.Unlock()
		}
		inner.ServeHTTP(rw, r)
	}))
	t.Cleanup(func() { httpSrv.Close(); w.sim.Close() })
	w.api = httpSrv.URL + "/v1"
	return w
}

func (w *world) config() Config {
	return Config{
		Webex:           webex.Config{APIURL: w.api, Token: webexsim.DefaultToken, Timeout: 2 * time.Second},
		AllowedDomains:  "example.com",
		PersonCacheTTL:  time.Minute,
		PersonCacheSize: 100,
		Concurrency:     4,
		MaxDeliver:      20,
		Worker: bus.WorkerConfig{
			AckWait:    3 * time.Second,
			MinBackoff: 50 * time.Millisecond,
			MaxBackoff: 300 * time.Millisecond,
		},
	}
}

// replica is one running authz, with its own NATS connection (as a
// separate process would have).
type replica struct {
	a    *Authz
	nc   *nats.Conn
	stop func()
	kill func()
}

func (w *world) start(t *testing.T, cfg Config) *replica {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	nc, err := bus.Connect(bus.Config{URL: w.srv.ClientURL()}, "authz-test", log)
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	client, err := cfg.Webex.NewClient(webex.NewMetrics(w.reg))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(cfg, Deps{JS: js, Webex: client, Registry: w.reg, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	r := &replica{a: a, nc: nc, stop: func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("authz run: %v", err)
			}
			nc.Close()
		})
	}, kill: func() {
		once.Do(func() {
			// Its connection goes at once: nothing it does later reaches
			// the bus. Run ends, with the connection's error or not,
			// whichever it sees first.
			nc.Close()
			cancel()
			<-done
		})
	}}
	t.Cleanup(r.stop)
	waitFor(t, "replica ready", func() bool { return a.Ready(context.Background()) == nil })
	return r
}

// send publishes the webhook event Webex would deliver for m, as the
// ingress stores it. orgID is the payload's top-level orgId (the webhook
// creator's org).
func (w *world) send(t *testing.T, m webex.Message, orgID string) {
	t.Helper()
	body, err := json.Marshal(webex.Event{
		ID: "webhook-1", Resource: "messages", Event: "created", OrgID: orgID,
		Data: webex.EventData{ID: m.ID, RoomID: m.RoomID, RoomType: m.RoomType, PersonID: m.PersonID, PersonEmail: m.PersonEmail},
	})
	if err != nil {
		t.Fatal(err)
	}
	w.publish(t, "messages", "created", m.ID, body)
}

func (w *world) publish(t *testing.T, resource, event, id string, body []byte) {
	t.Helper()
	data, err := proto.Marshal(&sparkguardv1.WebhookEvent{
		RawBody: body, ReceivedAt: timestamppb.Now(), Resource: resource, Event: event, DataId: id, RequestId: "req-" + id,
	})
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(bus.WebhookSubject(resource, event))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, resource+":"+event+":"+id)
	if _, err := w.js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

// authorized returns the records on the authorized stream.
func (w *world) authorized(t *testing.T) []*sparkguardv1.AuthorizedMessage {
	t.Helper()
	var out []*sparkguardv1.AuthorizedMessage
	for _, raw := range bustest.Stored(t, w.js, bus.StreamAuthorized) {
		var m sparkguardv1.AuthorizedMessage
		if err := proto.Unmarshal(raw.Data, &m); err != nil {
			t.Fatal(err)
		}
		out = append(out, &m)
	}
	return out
}

func (w *world) deadLetters(t *testing.T) []*sparkguardv1.DeadLetter {
	t.Helper()
	var out []*sparkguardv1.DeadLetter
	for _, raw := range bustest.Stored(t, w.js, bus.StreamDeadLetter) {
		var dl sparkguardv1.DeadLetter
		if err := proto.Unmarshal(raw.Data, &dl); err != nil {
			t.Fatal(err)
		}
		out = append(out, &dl)
	}
	return out
}

func (w *world) decisions(decision, reason string) float64 {
	return testutil.ToFloat64(newMetrics(w.reg).decisions.WithLabelValues(decision, reason))
}

func (w *world) lookups(source string) float64 {
	return testutil.ToFloat64(newMetrics(w.reg).lookups.WithLabelValues(source))
}

func (w *world) person(email, orgID, kind string) webex.Person {
	return w.sim.AddPerson(webex.Person{Emails: []string{email}, OrgID: orgID, Type: kind})
}

func (w *world) post(t *testing.T, p webex.Person, text string) webex.Message {
	t.Helper()
	m, err := w.sim.Post(webexsim.Post{PersonID: p.ID, RoomType: webexsim.RoomDirect, Text: text})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

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

// TestTwoReplicasOneLookupPerPerson: two replicas share the consumer, every
// allowed message is forwarded exactly once, and however the events of one
// person spread over the replicas, Webex is asked about each person once.
func TestTwoReplicasOneLookupPerPerson(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	// Slow look-ups, so both replicas ask about one person at once.
	w.sim.SetFault(webexsim.OpGetPerson, webexsim.Fault{Latency: 300 * time.Millisecond})
	cfg := w.config()
	w.start(t, cfg)
	w.start(t, cfg)
	const people, each = 5, 6
	var want []string
	var sent []webex.Message
	var senders []webex.Person
	for i := range people {
		senders = append(senders, w.person(fmt.Sprintf("user%d@example.com", i), "", "person"))
	}
	// Interleaved, so both replicas get events of each person at once.
	for j := range each {
		for _, p := range senders {
			m := w.post(t, p, fmt.Sprintf("hello %d", j))
			want = append(want, m.ID)
			sent = append(sent, m)
		}
	}
	for _, m := range sent {
		w.send(t, m, "")
	}
	waitFor(t, "every message forwarded", func() bool { return len(w.authorized(t)) == len(want) })
	seen := map[string]int{}
	for _, rec := range w.authorized(t) {
		seen[rec.GetMessageId()]++
		if rec.GetReason() != sparkguardv1.AllowReason_ALLOW_REASON_DOMAIN || rec.GetPersonEmail() == "" || rec.GetReceivedAt() == nil {
			t.Errorf("record = %v", rec)
		}
	}
	for _, id := range want {
		if seen[id] != 1 {
			t.Errorf("message %s forwarded %d times", id, seen[id])
		}
	}
	if got := w.sim.Calls(webexsim.OpGetPerson); got > people {
		t.Errorf("Webex was asked %d times about %d people", got, people)
	}
	if got := w.lookups(sourceAPI); got != people {
		t.Errorf("api look-ups = %v, want %d", got, people)
	}
	// A decision is counted just after its message is forwarded.
	waitFor(t, "every decision counted", func() bool { return w.decisions(decisionAllow, reasonDomain) == float64(len(want)) })
}
