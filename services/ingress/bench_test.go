package ingress

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/bus/bustest"
	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
)

// BenchmarkVerify measures the signature check with one secret and with
// three (a rotation in progress, the right one last), against a plain
// HMAC-SHA1 of the body as the baseline.
func BenchmarkVerify(b *testing.B) {
	body := sampleBody(b)
	sig := webex.Sign([]byte(testSecret), body)
	b.Run("baseline_hmac", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = webex.Sign([]byte(testSecret), body)
		}
	})
	for _, n := range []int{1, 3} {
		secrets := make([][]byte, 0, n)
		for i := range n - 1 {
			secrets = append(secrets, fmt.Appendf(nil, "old-%d", i))
		}
		secrets = append(secrets, []byte(testSecret))
		b.Run(fmt.Sprintf("secrets=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if !webex.VerifySignature(body, sig, secrets) {
					b.Fatal("refused")
				}
			}
		})
	}
}

// BenchmarkIngest compares a whole webhook request through the ingress
// handler (read, verify, parse, publish, wait for the PubAck, answer) with
// the baseline of publishing the same bytes to JetStream directly, on the
// same embedded server in the same run. Each iteration is a new event, so
// nothing is a duplicate.
func BenchmarkIngest(b *testing.B) {
	srv := bustest.StartServer(b, bustest.Options{})
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	if err := bus.EnsureStreams(context.Background(), js, bus.StreamWebhooks); err != nil {
		b.Fatal(err)
	}
	body := sampleBody(b)
	b.Run("baseline_publish", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			msg := nats.NewMsg("sparkguard.webhooks.messages.created")
			msg.Data = body
			msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("baseline-%d", i))
			if _, err := js.PublishMsg(context.Background(), msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	in := New(Config{Secrets: config.Secret(testSecret), MaxBodyBytes: 65536, PublishTimeout: 5 * time.Second},
		Deps{JS: js, NC: nc, Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	h := in.Handler()
	b.Run("ingress_handler", func(b *testing.B) {
		// The requests are built before the clock starts: only the
		// ingress's own work is timed.
		reqs := make([]*http.Request, b.N)
		for i := range reqs {
			ev := withField(b, body, func(m map[string]any) { m["data"].(map[string]any)["id"] = fmt.Sprintf("bench-%d", i) })
			req := httptest.NewRequest(http.MethodPost, WebhookPath, bytes.NewReader(ev))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(webex.SignatureHeader, webex.Sign([]byte(testSecret), ev))
			reqs[i] = req
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, req := range reqs {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
