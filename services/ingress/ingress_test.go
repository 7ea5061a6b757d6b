package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/protobuf/proto"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/bus/bustest"
	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
)

const (
	testSecret    = "s3cr3t-one"
	rotatedSecret = "the-next-secret"
)

func sampleBody(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "webhook-messages-created.json"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// harness is an ingress on a real HTTP server in front of a real embedded
// JetStream.
type harness struct {
	url  string
	srv  *server.Server
	js   jetstream.JetStream
	reg  *prometheus.Registry
	nc   *nats.Conn
	stop func()
}

func newHarness(t *testing.T, cfg Config, opts bustest.Options) *harness {
	t.Helper()
	srv := bustest.StartServer(t, opts)
	// The ingress's own connection, set up as the binary sets it up.
	nc, err := bus.Connect(bus.Config{URL: srv.ClientURL()}, "ingress-test", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Secrets == "" {
		cfg.Secrets = config.Secret(testSecret + "," + rotatedSecret)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = 65536
	}
	if cfg.PublishTimeout == 0 {
		cfg.PublishTimeout = 2 * time.Second
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	in := New(cfg, Deps{JS: js, NC: nc, Registry: reg, Log: slog.New(slog.DiscardHandler)})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, ln) }()
	stop := func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingress run: %v", err)
		}
	}
	t.Cleanup(func() {
		if ctx.Err() == nil {
			stop()
		}
	})
	h := &harness{url: "http://" + ln.Addr().String() + WebhookPath, srv: srv, js: js, reg: reg, nc: nc, stop: stop}
	h.waitStream(t)
	return h
}

func (h *harness) waitStream(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := h.js.Stream(context.Background(), bus.StreamWebhooks); err == nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("webhook stream not created")
}

type request struct {
	method      string
	body        []byte
	signature   string // "" with sign false: no header
	sign        string // secret to sign with
	contentType string
}

func (h *harness) do(t *testing.T, r request) (*http.Response, map[string]string) {
	t.Helper()
	if r.method == "" {
		r.method = http.MethodPost
	}
	req, err := http.NewRequest(r.method, h.url, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	if r.contentType == "" {
		r.contentType = "application/json"
	}
	req.Header.Set("Content-Type", r.contentType)
	switch {
	case r.signature != "":
		req.Header.Set(webex.SignatureHeader, r.signature)
	case r.sign != "":
		req.Header.Set(webex.SignatureHeader, webex.Sign([]byte(r.sign), r.body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body map[string]string
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("answer is not short JSON: %q", raw)
		}
	}
	return resp, body
}

func (h *harness) streamMsgs(t *testing.T) uint64 {
	t.Helper()
	s, err := h.js.Stream(context.Background(), bus.StreamWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func withField(t testing.TB, body []byte, mutate func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	mutate(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestAnswers drives every HTTP answer of DESIGN.md through the real
// handler, server and JetStream.
func TestAnswers(t *testing.T) {
	h := newHarness(t, Config{MaxBodyBytes: 4096}, bustest.Options{})
	body := sampleBody(t)
	other := withField(t, body, func(m map[string]any) { m["data"].(map[string]any)["id"] = "another-message" })
	tests := []struct {
		name    string
		req     request
		status  int
		outcome string
		stored  uint64 // messages in the stream after the request
	}{
		{"signed with the first secret", request{body: body, sign: testSecret}, 200, outcomeAccepted, 1},
		{"same event again is a duplicate", request{body: body, sign: testSecret}, 200, outcomeDuplicate, 1},
		{"signed with the rotated secret", request{body: other, sign: rotatedSecret}, 200, outcomeAccepted, 2},
		{"uppercase hex signature", request{body: other, signature: strings.ToUpper(webex.Sign([]byte(testSecret), other))}, 200, outcomeDuplicate, 2},
		{"missing signature", request{body: body}, 401, outcomeMissingSignature, 2},
		{"signed with an unknown secret", request{body: body, sign: "not-a-secret"}, 401, outcomeBadSignature, 2},
		{"signature not hex", request{body: body, signature: "zz"}, 401, outcomeBadSignature, 2},
		{"signature of other bytes", request{body: body, signature: webex.Sign([]byte(testSecret), other)}, 401, outcomeBadSignature, 2},
		{"content type with charset", request{body: withField(t, body, func(m map[string]any) { m["data"].(map[string]any)["id"] = "third" }), sign: testSecret, contentType: "application/json; charset=utf-8"}, 200, outcomeAccepted, 3},
		{"not json content type", request{body: body, sign: testSecret, contentType: "text/plain"}, 415, outcomeUnsupportedMedia, 3},
		{"form content type", request{body: body, sign: testSecret, contentType: "application/x-www-form-urlencoded"}, 415, outcomeUnsupportedMedia, 3},
		{"signed but not JSON", request{body: []byte("not json"), sign: testSecret}, 400, outcomeMalformed, 3},
		{"lacks resource", request{body: withField(t, body, func(m map[string]any) { delete(m, "resource") }), sign: testSecret}, 400, outcomeMalformed, 3},
		{"lacks event", request{body: withField(t, body, func(m map[string]any) { delete(m, "event") }), sign: testSecret}, 400, outcomeMalformed, 3},
		{"lacks data.id", request{body: withField(t, body, func(m map[string]any) { delete(m["data"].(map[string]any), "id") }), sign: testSecret}, 400, outcomeMalformed, 3},
		{"resource would inject a subject", request{body: withField(t, body, func(m map[string]any) { m["resource"] = "messages.>" }), sign: testSecret}, 400, outcomeMalformed, 3},
		{"event is a wildcard", request{body: withField(t, body, func(m map[string]any) { m["event"] = "*" }), sign: testSecret}, 400, outcomeMalformed, 3},
		{"body over the limit", request{body: bytes.Repeat([]byte("a"), 4097), sign: testSecret}, 413, outcomeTooLarge, 3},
		{"other method", request{method: http.MethodGet}, 405, "", 3},
		{"put method", request{method: http.MethodPut, body: body, sign: testSecret}, 405, "", 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := 0.0
			if tc.outcome != "" {
				before = testutil.ToFloat64(mustCounter(t, h.reg, tc.outcome))
			}
			resp, answer := h.do(t, tc.req)
			if resp.StatusCode != tc.status {
				t.Fatalf("status = %d, want %d (answer %v)", resp.StatusCode, tc.status, answer)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("content type = %q, want JSON", ct)
			}
			if tc.status != 200 && (answer["error"] == "" || len(answer) != 1) {
				t.Errorf("error answer = %v, want {\"error\": …} only", answer)
			}
			if tc.outcome != "" {
				if got := testutil.ToFloat64(mustCounter(t, h.reg, tc.outcome)); got != before+1 {
					t.Errorf("outcome %s counted %v times, want %v", tc.outcome, got, before+1)
				}
			}
			if got := h.streamMsgs(t); got != tc.stored {
				t.Errorf("stream holds %d messages, want %d", got, tc.stored)
			}
		})
	}
}

func mustCounter(t *testing.T, reg *prometheus.Registry, outcome string) prometheus.Collector {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "sparkguard_ingress_webhooks_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return counterValue(m.GetCounter().GetValue())
				}
			}
		}
	}
	t.Fatalf("no sparkguard_ingress_webhooks_total{outcome=%q}", outcome)
	return nil
}

// counterValue wraps a gathered value so testutil.ToFloat64 can read it.
func counterValue(v float64) prometheus.Collector {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "v"})
	c.Add(v)
	return c
}

// TestStoredEvent checks what lands on the bus: the exact body, the
// fields, the subject and the dedup id.
func TestStoredEvent(t *testing.T) {
	h := newHarness(t, Config{}, bustest.Options{})
	body := sampleBody(t)
	for range 3 {
		if resp, _ := h.do(t, request{body: body, sign: testSecret}); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	}
	if got := h.streamMsgs(t); got != 1 {
		t.Fatalf("three deliveries of one event stored %d times, want once", got)
	}
	s, err := h.js.Stream(context.Background(), bus.StreamWebhooks)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := s.GetMsg(context.Background(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Subject != "sparkguard.webhooks.messages.created" {
		t.Errorf("subject = %q", raw.Subject)
	}
	var p payload
	_ = json.Unmarshal(body, &p)
	if id := raw.Header.Get(jetstream.MsgIDHeader); id != "messages:created:"+p.Data.ID {
		t.Errorf("Nats-Msg-Id = %q", id)
	}
	var ev sparkguardv1.WebhookEvent
	if err := proto.Unmarshal(raw.Data, &ev); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ev.GetRawBody(), body) {
		t.Error("stored body differs from the bytes received")
	}
	if ev.GetResource() != "messages" || ev.GetEvent() != "created" || ev.GetDataId() != p.Data.ID || ev.GetWebhookId() != p.ID {
		t.Errorf("event fields = %v", &ev)
	}
	if ev.GetRequestId() == "" || ev.GetRequestId() != raw.Header.Get(bus.HeaderRequestID) {
		t.Errorf("request id %q, header %q", ev.GetRequestId(), raw.Header.Get(bus.HeaderRequestID))
	}
	if age := time.Since(ev.GetReceivedAt().AsTime()); age < 0 || age > time.Minute {
		t.Errorf("received_at %v is not the receive time", ev.GetReceivedAt().AsTime())
	}
}

// TestSignatureVectors runs the known-good signatures through the real
// handler: each one is accepted.
func TestSignatureVectors(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "signature-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var vectors []struct {
		Secret    string  `json:"secret"`
		BodyFile  string  `json:"body_file"`
		Body      *string `json:"body"`
		Signature string  `json:"x_spark_signature"`
	}
	if err := json.Unmarshal(raw, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range vectors {
		var body []byte
		if v.BodyFile != "" {
			body, err = os.ReadFile(filepath.Join("testdata", v.BodyFile))
			if err != nil {
				t.Fatal(err)
			}
		} else {
			body = []byte(*v.Body)
		}
		t.Run(v.Secret+"/"+v.Signature[:8], func(t *testing.T) {
			in := New(Config{Secrets: config.Secret("unrelated," + v.Secret), MaxBodyBytes: 65536, PublishTimeout: time.Second},
				Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
			_, err := in.verify(body, v.Signature, "application/json")
			if v.BodyFile != "" && err != nil {
				t.Fatalf("known-good signature refused: %v", err)
			}
			// Bodies that are not webhooks pass the signature and then fail
			// on content, never on the signature.
			if answer, ok := err.(*errorAnswer); ok && answer.status == http.StatusUnauthorized {
				t.Fatalf("known-good signature refused: %v", err)
			}
			if _, err := in.verify(body, v.Signature, "application/json"); err == nil && v.BodyFile == "" {
				t.Fatal("a body that is not a webhook was accepted")
			}
			wrong := New(Config{Secrets: "unrelated", MaxBodyBytes: 65536, PublishTimeout: time.Second},
				Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
			if _, err := wrong.verify(body, v.Signature, "application/json"); err == nil || err.(*errorAnswer).status != http.StatusUnauthorized {
				t.Fatalf("signature accepted without its secret: %v", err)
			}
		})
	}
}

// TestNATSOutage: with the server down the ingress answers 503 with
// Retry-After within the timeout, is not ready, and after a restart on the
// same store answers 200 again with nothing stored before lost.
func TestNATSOutage(t *testing.T) {
	store := t.TempDir()
	port := freePort(t)
	h := newHarness(t, Config{PublishTimeout: time.Second}, bustest.Options{StoreDir: store, Port: port})
	body := sampleBody(t)
	if resp, _ := h.do(t, request{body: body, sign: testSecret}); resp.StatusCode != 200 {
		t.Fatalf("before the outage: %d", resp.StatusCode)
	}
	ready := bus.Ready(h.nc)

	h.srv.Shutdown()
	h.srv.WaitForShutdown()
	waitFor(t, "not ready", func() bool { return ready(context.Background()) != nil })
	second := withField(t, body, func(m map[string]any) { m["data"].(map[string]any)["id"] = "during-outage" })
	start := time.Now()
	resp, answer := h.do(t, request{body: second, sign: testSecret})
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("during the outage: %d %v", resp.StatusCode, answer)
	}
	if resp.Header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("503 took %v, longer than the publish timeout allows", elapsed)
	}
	if strings.Contains(answer["error"], "nats") {
		t.Errorf("error answer reveals internals: %q", answer["error"])
	}

	bustest.StartServer(t, bustest.Options{StoreDir: store, Port: port})
	waitFor(t, "ready again", func() bool { return ready(context.Background()) == nil })
	if resp, _ := h.do(t, request{body: second, sign: testSecret}); resp.StatusCode != 200 {
		t.Fatalf("after the restart: %d", resp.StatusCode)
	}
	if got := h.streamMsgs(t); got != 2 {
		t.Fatalf("stream holds %d messages after the restart, want 2 (one from before, one after)", got)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("timed out waiting until %s", what)
}

// TestHandlerWithoutBus: the answers that need no bus come from the
// handler alone, through httptest.
func TestConfigRefusesNoSecret(t *testing.T) {
	t.Parallel()
	env := map[string]string{"WEBEX_WEBHOOK_SECRETS": " , "}
	var cfg Config
	err := config.Load(func(k string) (string, bool) { v, ok := env[k]; return v, ok }, &cfg)
	if err == nil || !strings.Contains(err.Error(), "WEBEX_WEBHOOK_SECRETS") {
		t.Fatalf("err = %v, want one naming WEBEX_WEBHOOK_SECRETS", err)
	}
	var empty Config
	if err := config.Load(func(string) (string, bool) { return "", false }, &empty); err == nil {
		t.Fatal("no secret accepted")
	}
}

func TestSecretsNeverLogged(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	cfg := Config{Secrets: config.Secret(testSecret), MaxBodyBytes: 1 << 16, PublishTimeout: time.Second}
	in := New(cfg, Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	srv := httptest.NewServer(in.Handler())
	defer srv.Close()
	body := sampleBody(t)
	sig := webex.Sign([]byte("wrong"), body)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+WebhookPath, bytes.NewReader(body))
	req.Header.Set(webex.SignatureHeader, sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	in.log.Info("config", "config", cfg)
	if strings.Contains(logs.String(), testSecret) || strings.Contains(logs.String(), sig) {
		t.Fatalf("logs hold a secret or a signature: %s", logs.String())
	}
}

// TestReadyOnlyWithStream: the ingress is not ready until its stream is
// there.
func TestReadyOnlyWithStream(t *testing.T) {
	t.Parallel()
	srv := bustest.StartServer(t, bustest.Options{})
	nc, js := bustest.Connect(t, srv)
	in := New(Config{Secrets: "s", MaxBodyBytes: 1024, PublishTimeout: time.Second},
		Deps{JS: js, NC: nc, Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	if in.Ready(context.Background()) == nil {
		t.Fatal("ready before set-up")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = in.Run(ctx, ln) }()
	waitFor(t, "ready", func() bool { return in.Ready(context.Background()) == nil })
	if _, err := js.Stream(context.Background(), bus.StreamWebhooks); err != nil {
		t.Fatalf("ready without the stream: %v", err)
	}
}
