package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
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

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
	"github.com/sparkguard/sparkguard/services/authz"
	"github.com/sparkguard/sparkguard/services/ingress"
	"github.com/sparkguard/sparkguard/services/responder"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

// passwords are the test's NATS passwords, by user.
var passwords = map[string]string{
	"ingress":   "test-ingress-password",
	"authz":     "test-authz-password",
	"responder": "test-responder-password",
}

// serverLog keeps what nats-server logs, to show the permission
// violations when a test fails.
type serverLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *serverLog) add(format string, v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, v...))
}
func (l *serverLog) Noticef(format string, v ...any) { l.add("[INF] "+format, v...) }
func (l *serverLog) Warnf(format string, v ...any)   { l.add("[WRN] "+format, v...) }
func (l *serverLog) Fatalf(format string, v ...any)  { l.add("[FTL] "+format, v...) }
func (l *serverLog) Errorf(format string, v ...any)  { l.add("[ERR] "+format, v...) }
func (l *serverLog) Debugf(format string, v ...any)  { l.add("[DBG] "+format, v...) }
func (l *serverLog) Tracef(format string, v ...any)  {}

// violations are the logged permission violations.
func (l *serverLog) violations() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, line := range l.lines {
		if strings.Contains(line, "Violation") {
			out = append(out, line)
		}
	}
	return out
}

// startConfiguredNATS runs nats-server with deploy/nats/nats.conf, as the
// compose file does, on a random local port and a temporary store.
func startConfiguredNATS(t *testing.T) (*server.Server, *serverLog) {
	t.Helper()
	t.Setenv("NATS_INGRESS_PASSWORD", passwords["ingress"])
	t.Setenv("NATS_AUTHZ_PASSWORD", passwords["authz"])
	t.Setenv("NATS_RESPONDER_PASSWORD", passwords["responder"])
	opts, err := server.ProcessConfigFile("nats/nats.conf")
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	if !opts.JetStream || opts.SyncAlways != true {
		t.Errorf("nats.conf: jetstream %v, sync_interval always %v: want both", opts.JetStream, opts.SyncAlways)
	}
	if opts.NoAuthUser != "" || len(opts.Users) != 3 {
		t.Errorf("nats.conf: no_auth_user %q, %d users: want no anonymous user and the three services", opts.NoAuthUser, len(opts.Users))
	}
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	opts.StoreDir = t.TempDir()
	opts.NoSigs = true
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	log := &serverLog{}
	srv.SetLogger(log, true, false)
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	t.Cleanup(func() {
		if t.Failed() {
			for _, v := range log.violations() {
				t.Logf("nats: %s", v)
			}
		}
	})
	return srv, log
}

// connectAs connects a plain client as user; async errors (permission
// violations) arrive on the returned channel.
func connectAs(t *testing.T, srv *server.Server, user string) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	nc, err := nats.Connect(srv.ClientURL(), nats.UserInfo(user, passwords[user]),
		nats.CustomInboxPrefix(bus.InboxPrefix(user)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func TestNATSRefusesAnonymousAndWrongPasswords(t *testing.T) {
	srv, _ := startConfiguredNATS(t)
	for _, tc := range []struct {
		name string
		opts []nats.Option
	}{
		{"anonymous", nil},
		{"wrong password", []nats.Option{nats.UserInfo("ingress", "guess")}},
		{"another user's password", []nats.Option{nats.UserInfo("responder", passwords["ingress"])}},
		{"unknown user", []nats.Option{nats.UserInfo("admin", "admin")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nc, err := nats.Connect(srv.ClientURL(), append(tc.opts, nats.NoReconnect())...)
			if err == nil {
				nc.Close()
				t.Fatal("connected; want an authorization error")
			}
			if !errors.Is(err, nats.ErrAuthorization) && !strings.Contains(strings.ToLower(err.Error()), "authorization") {
				t.Errorf("err = %v, want an authorization error", err)
			}
		})
	}
}

// TestNATSDeniesWhatAServiceDoesNotNeed: each user is refused the subjects
// that belong to another stage.
func TestNATSDeniesWhatAServiceDoesNotNeed(t *testing.T) {
	srv, _ := startConfiguredNATS(t)
	for _, tc := range []struct {
		user, subject string
	}{
		{"ingress", "sparkguard.authorized.messages"},
		{"ingress", "sparkguard.deadletter.ingress"},
		{"ingress", "sparkguard.deadletter.authz"},
		{"ingress", "$KV.sparkguard_people.x"},
		{"ingress", "$JS.API.STREAM.DELETE.SPARKGUARD_WEBHOOKS"},
		{"ingress", "$JS.API.STREAM.CREATE.SPARKGUARD_AUTHORIZED"},
		{"ingress", "$JS.API.CONSUMER.MSG.NEXT.SPARKGUARD_WEBHOOKS.authz"},
		{"authz", "sparkguard.webhooks.messages.created"},
		{"authz", "sparkguard.deadletter.responder"},
		{"authz", "$KV.sparkguard_replies.x"},
		{"authz", "$JS.API.STREAM.PURGE.SPARKGUARD_WEBHOOKS"},
		{"authz", "$JS.API.CONSUMER.MSG.NEXT.SPARKGUARD_AUTHORIZED.responder"},
		{"responder", "sparkguard.webhooks.messages.created"},
		{"responder", "sparkguard.authorized.messages"},
		{"responder", "sparkguard.deadletter.authz"},
		{"responder", "$KV.sparkguard_people.x"},
		{"responder", "$JS.API.STREAM.DELETE.SPARKGUARD_DEADLETTER"},
	} {
		t.Run(tc.user+" publishes "+tc.subject, func(t *testing.T) {
			nc, errs := connectAs(t, srv, tc.user)
			if err := nc.Publish(tc.subject, []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errs:
				if !errors.Is(err, nats.ErrPermissionViolation) {
					t.Errorf("async error %v, want a permissions violation", err)
				}
			case <-time.After(2 * time.Second):
				t.Error("no permissions violation within 2s: the publish was allowed")
			}
		})
	}
	for _, tc := range []struct{ user, subject string }{
		{"ingress", "sparkguard.>"},
		{"authz", "sparkguard.>"},
		{"responder", "sparkguard.>"},
		{"authz", "_INBOX_ingress.>"},
		{"responder", "_INBOX_authz.>"},
		{"ingress", "_INBOX.>"},
	} {
		user := tc.user
		t.Run(user+" subscribes to "+tc.subject, func(t *testing.T) {
			nc, errs := connectAs(t, srv, user)
			if _, err := nc.SubscribeSync(tc.subject); err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-errs:
				if !errors.Is(err, nats.ErrPermissionViolation) {
					t.Errorf("async error %v, want a permissions violation", err)
				}
			case <-time.After(2 * time.Second):
				t.Error("no permissions violation within 2s: the subscription was allowed")
			}
		})
	}
	// Through JetStream too: the ingress user cannot store an authorized
	// message (it would skip authz).
	nc, _ := connectAs(t, srv, "ingress")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "sparkguard.authorized.messages", []byte("x")); err == nil {
		t.Error("ingress stored a message on sparkguard.authorized.messages")
	}
}

// TestNATSServicesWorkUnderTheirOwnUsers runs the real ingress, two authz
// and two responders, each with its own NATS user of nats.conf, against the
// Webex emulator, and drives every bus path they have: signed webhooks of
// allowed people are echoed (streams, consumers, acks, both key-value
// buckets, the person-cache watches of concurrent look-ups), a message Webex
// refuses is dead-lettered by the responder, and an undecodable event by
// authz. nats-server must log no permission violation on the way.
func TestNATSServicesWorkUnderTheirOwnUsers(t *testing.T) {
	srv, nlog := startConfiguredNATS(t)
	sim := webexsim.New(webexsim.Options{})
	api := httptest.NewServer(sim.Handler())
	t.Cleanup(api.Close)
	t.Cleanup(sim.Close)
	people := []webex.Person{
		sim.AddPerson(webex.Person{Emails: []string{"alice@example.com"}}),
		sim.AddPerson(webex.Person{Emails: []string{"bob@example.com"}}),
	}

	p := startPipeline(t, srv.ClientURL(), api.URL+"/v1", 2, 2)

	const perPerson = 5
	var rooms []string
	var wg sync.WaitGroup
	for _, who := range people {
		for i := range perPerson {
			room := sim.NewRoomID()
			rooms = append(rooms, room)
			msg, err := sim.Post(webexsim.Post{PersonID: who.ID, RoomID: room, Text: fmt.Sprintf("hello %d", i), MentionBot: true})
			if err != nil {
				t.Fatal(err)
			}
			// At once, so that replicas look the same person up together.
			wg.Go(func() {
				if code, err := postSignedWebhook(p.webhookURL, msg, sim.Bot().ID); code != http.StatusOK {
					t.Errorf("ingress answered %d (%v), want 200", code, err)
				}
			})
		}
	}
	wg.Wait()
	for _, room := range rooms {
		waitForReply(t, sim, room, 30*time.Second)
	}

	// Webex refuses to show a message (404): the responder dead-letters it.
	sim.SetFault(webexsim.OpGetMessage, webexsim.Fault{Status: http.StatusNotFound})
	msg, err := sim.Post(webexsim.Post{PersonID: people[0].ID, RoomID: sim.NewRoomID(), Text: "gone", MentionBot: true})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := postSignedWebhook(p.webhookURL, msg, sim.Bot().ID); code != http.StatusOK {
		t.Fatalf("ingress answered %d (%v), want 200", code, err)
	}
	// An event authz cannot decode: authz dead-letters it.
	nc, _ := connectAs(t, srv, "ingress")
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := js.Publish(ctx, "sparkguard.webhooks.messages.created", []byte("not protobuf")); err != nil {
		t.Fatalf("ingress user stores a webhook event: %v", err)
	}
	waitFor(t, 30*time.Second, "a dead letter from each stage", func() bool {
		return streamMsgs(t, srv, "SPARKGUARD_DEADLETTER") >= 2
	})

	if v := nlog.violations(); len(v) > 0 {
		t.Errorf("nats-server logged permission violations:\n%s", strings.Join(v, "\n"))
	}
}

// streamMsgs is the number of messages in a stream, read from the server.
func streamMsgs(t *testing.T, srv *server.Server, stream string) uint64 {
	t.Helper()
	info, err := srv.Jsz(&server.JSzOptions{Accounts: true, Streams: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, acc := range info.AccountDetails {
		for _, s := range acc.Streams {
			if s.Name == stream {
				return s.State.Msgs
			}
		}
	}
	return 0
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pipeline is one in-process replica of each stage.
type pipeline struct {
	webhookURL string
}

const testWebhookSecret = "test-webhook-secret"

func startPipeline(t *testing.T, natsURL, webexAPI string, authzReplicas, responderReplicas int) *pipeline {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var conns []*nats.Conn
	tw := &testWriter{t: t}
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		for _, nc := range conns {
			nc.Close()
		}
		tw.stop()
	})
	log := slog.New(slog.NewTextHandler(tw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	connect := func(user string) (*nats.Conn, jetstream.JetStream) {
		nc, err := bus.Connect(bus.Config{URL: natsURL, User: user, Password: config.Secret(passwords[user])}, "test-"+user, log.With("service", user))
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, nc)
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return nc, js
	}
	run := func(name string, f func() error) {
		wg.Go(func() {
			if err := f(); err != nil && ctx.Err() == nil {
				t.Errorf("%s stopped: %v", name, err)
			}
		})
	}
	wx := webex.Config{APIURL: webexAPI, Token: config.Secret(webexsim.DefaultToken), Timeout: 5 * time.Second}
	worker := bus.WorkerConfig{AckWait: 5 * time.Second, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}

	// ingress
	icfg := ingress.Config{Addr: "127.0.0.1:0", Secrets: config.Secret(testWebhookSecret), MaxBodyBytes: 65536, PublishTimeout: 5 * time.Second}
	if err := icfg.Validate(); err != nil {
		t.Fatal(err)
	}
	nc, js := connect("ingress")
	in := ingress.New(icfg, ingress.Deps{JS: js, NC: nc, Registry: prometheus.NewRegistry(), Log: log.With("service", "ingress")})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	run("ingress", func() error { return in.Run(ctx, ln) })

	// authz
	acfg := authz.Config{Webex: wx, AllowedDomains: "example.com", PersonCacheTTL: time.Minute,
		PersonCacheSize: 100, Concurrency: 4, MaxDeliver: 5, Worker: worker}
	if err := acfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for i := range authzReplicas {
		_, js := connect("authz")
		reg := prometheus.NewRegistry()
		client, err := acfg.Webex.NewClient(webex.NewMetrics(reg))
		if err != nil {
			t.Fatal(err)
		}
		a, err := authz.New(acfg, authz.Deps{JS: js, Webex: client, Registry: reg, Log: log.With("service", "authz", "replica", i)})
		if err != nil {
			t.Fatal(err)
		}
		run("authz", func() error { return a.Run(ctx) })
	}

	// responder
	rcfg := responder.Config{Webex: wx, Concurrency: 4, MaxDeliver: 5, Worker: worker}
	if err := rcfg.Validate(); err != nil {
		t.Fatal(err)
	}
	for i := range responderReplicas {
		_, js := connect("responder")
		reg := prometheus.NewRegistry()
		client, err := rcfg.Webex.NewClient(webex.NewMetrics(reg))
		if err != nil {
			t.Fatal(err)
		}
		r := responder.New(rcfg, responder.Deps{JS: js, Webex: client, Registry: reg, Log: log.With("service", "responder", "replica", i)})
		run("responder", func() error { return r.Run(ctx) })
	}

	return &pipeline{webhookURL: "http://" + ln.Addr().String() + ingress.WebhookPath}
}

// postSignedWebhook delivers the messages/created event of msg to the
// ingress at url, signed as Webex signs it, and returns the answer's status.
// It may run on any goroutine; it retries while the ingress is still
// starting (503, or not listening) for up to 20s.
func postSignedWebhook(url string, msg webex.Message, botID string) (int, error) {
	body, err := json.Marshal(webex.Event{
		ID: "webhook-1", Name: "sparkguard", TargetURL: url, Resource: "messages", Event: "created",
		CreatedBy: botID, OwnedBy: "creator", Status: "active",
		Created: time.Now().UTC(), ActorID: msg.PersonID,
		Data: webex.EventData{
			ID: msg.ID, RoomID: msg.RoomID, RoomType: msg.RoomType, PersonID: msg.PersonID,
			PersonEmail: msg.PersonEmail, MentionedPeople: msg.MentionedPeople, Created: msg.Created,
		},
	})
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Spark-Signature", webex.Sign([]byte(testWebhookSecret), body))
		resp, err := http.DefaultClient.Do(req)
		status := 0
		if err == nil {
			resp.Body.Close()
			status = resp.StatusCode
			if status != http.StatusServiceUnavailable {
				return status, nil
			}
		}
		if time.Now().After(deadline) {
			return status, fmt.Errorf("ingress not accepting within 20s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitForReply waits for the bot's first message in room.
func waitForReply(t *testing.T, sim *webexsim.Sim, room string, within time.Duration) webex.Message {
	t.Helper()
	bot := sim.Bot().ID
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		for _, m := range sim.Messages(room) {
			if m.PersonID == bot {
				return m
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no reply in room within %s", within)
	return webex.Message{}
}

// testWriter sends log lines to t.Log until stop: callbacks of closed
// connections may still log after the test.
type testWriter struct {
	t       *testing.T
	mu      sync.Mutex
	stopped bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.stopped {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
}
