package obs

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestServer(t *testing.T) {
	t.Parallel()
	reg := NewRegistry("ingress", "v1.2.3")
	srv := NewServer(reg, slog.New(slog.DiscardHandler))
	var down atomic.Bool
	srv.AddReadiness("nats", func(context.Context) error {
		if down.Load() {
			return errors.New("disconnected")
		}
		return nil
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	base := "http://" + ln.Addr().String()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("/readyz = %d while ready", code)
	}
	down.Store(true)
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "nats: disconnected") {
		t.Errorf("/readyz = %d %q while not ready", code, body)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("/healthz = %d while not ready; liveness must not follow readiness", code)
	}
	code, body := get("/metrics")
	for _, want := range []string{`sparkguard_build_info{service="ingress",version="v1.2.3"} 1`, "go_goroutines", "process_start_time_seconds"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if err := Healthcheck(context.Background(), ln.Addr().String()); err != nil {
		t.Errorf("healthcheck: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
	if err := Healthcheck(context.Background(), ln.Addr().String()); err == nil {
		t.Error("healthcheck passed with the server down")
	}
}

func TestRegisterShares(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	newCounter := func() *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"l"})
	}
	a := Register(reg, newCounter())
	b := Register(reg, newCounter())
	a.WithLabelValues("v").Inc()
	b.WithLabelValues("v").Inc()
	if got := testutil.ToFloat64(a.WithLabelValues("v")); got != 2 {
		t.Fatalf("shared counter = %v, want 2", got)
	}
}

// TestServeHTTPDrains: a request in flight when the context ends is
// answered before the server stops; new connections are refused after.
func TestServeHTTPDrains(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	srv := NewHTTPServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		time.Sleep(300 * time.Millisecond)
		_, _ = w.Write([]byte("done"))
	}))
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.WriteTimeout == 0 || srv.IdleTimeout == 0 {
		t.Fatalf("a timeout is unset: %+v", srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ServeHTTP(ctx, ln, srv) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String())
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- string(b)
	}()
	<-started
	cancel()
	if body := <-got; body != "done" {
		t.Fatalf("in-flight request got %q, want it answered", body)
	}
	if err := <-done; err != nil {
		t.Fatalf("ServeHTTP: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String()); err == nil {
		t.Fatal("server still answering after shutdown")
	}
}
