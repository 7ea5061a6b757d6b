package ingress

import (
	"errors"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
)

// FuzzVerify feeds untrusted bytes through the verify-and-parse path. When
// sign is true the body carries a valid signature, so the fuzzer reaches the
// JSON parsing; otherwise the signature is the fuzzer's too. Whatever comes
// in, the path must not panic, must refuse every body whose signature is
// wrong, and may only accept what can safely become a subject and a
// Nats-Msg-Id.
func FuzzVerify(f *testing.F) {
	in := New(Config{Secrets: config.Secret(testSecret), MaxBodyBytes: 1 << 16, PublishTimeout: time.Second},
		Deps{Registry: prometheus.NewRegistry(), Log: slog.New(slog.DiscardHandler)})
	f.Add(sampleBody(f), "", true, "application/json")
	f.Add([]byte(`{"resource":"messages","event":"created","data":{"id":"x"}}`), "", true, "application/json; charset=utf-8")
	f.Add([]byte(`{"resource":"a.b","event":">","data":{"id":"x"}}`), "", true, "application/json")
	f.Add([]byte(`not json`), "00", false, "text/plain")
	f.Fuzz(func(t *testing.T, body []byte, signature string, sign bool, contentType string) {
		if sign {
			signature = webex.Sign([]byte(testSecret), body)
		}
		p, err := in.verify(body, signature, contentType)
		valid := webex.VerifySignature(body, signature, [][]byte{[]byte(testSecret)})
		if err != nil {
			var answer *errorAnswer
			if !errors.As(err, &answer) {
				t.Fatalf("error %v is not an HTTP answer", err)
			}
			if !valid && answer.status != http.StatusUnauthorized {
				t.Fatalf("wrong signature answered %d, want 401", answer.status)
			}
			return
		}
		if !valid {
			t.Fatal("accepted a body whose signature does not verify")
		}
		if !subjectToken.MatchString(p.Resource) || !subjectToken.MatchString(p.Event) {
			t.Fatalf("accepted subject tokens %q %q", p.Resource, p.Event)
		}
		if p.Data.ID == "" || len(p.Data.ID) > maxDataIDLength {
			t.Fatalf("accepted data.id of length %d", len(p.Data.ID))
		}
	})
}
