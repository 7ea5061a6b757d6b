package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/bus/bustest"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
)

// retryAfter is an error that asks to be retried no sooner than after.
type retryAfter struct{ after time.Duration }

func (e retryAfter) Error() string             { return "slow down" }
func (e retryAfter) RetryAfter() time.Duration { return e.after }

func setUp(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv := bustest.StartServer(t, bustest.Options{})
	_, js := bustest.Connect(t, srv)
	if err := bus.EnsureStreams(context.Background(), js, bus.StreamAuthorized, bus.StreamDeadLetter); err != nil {
		t.Fatal(err)
	}
	return js
}

func publish(t *testing.T, js jetstream.JetStream, n int) {
	t.Helper()
	for i := range n {
		msg := nats.NewMsg(bus.SubjectAuthorized)
		msg.Data = fmt.Appendf(nil, "m%d", i)
		msg.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("m%d", i))
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
}

func runWorker(t *testing.T, js jetstream.JetStream, cfg bus.WorkerConfig, h bus.Handler) (*bus.Worker, func()) {
	t.Helper()
	cfg.Stage, cfg.Stream = "test", bus.StreamAuthorized
	w := bus.NewWorker(js, cfg, h, slog.New(slog.DiscardHandler), nil)
	cons, err := w.EnsureConsumer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx, cons) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return w, stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

func streamMsgs(t *testing.T, js jetstream.JetStream, name string) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestWorkerSettlesEachMessageOnce: success acks, a transient error is
// retried (no sooner than its RetryAfter), a permanent one is dead-lettered
// at once, and one that keeps failing is dead-lettered at the limit.
func TestWorkerSettlesEachMessageOnce(t *testing.T) {
	t.Parallel()
	js := setUp(t)
	var mu sync.Mutex
	seen := map[string][]time.Time{}
	_, _ = runWorker(t, js, bus.WorkerConfig{Concurrency: 4, MaxDeliver: 3, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
		func(_ context.Context, msg jetstream.Msg) error {
			mu.Lock()
			seen[string(msg.Data())] = append(seen[string(msg.Data())], time.Now())
			n := len(seen[string(msg.Data())])
			mu.Unlock()
			switch string(msg.Data()) {
			case "m1": // transient, then fine
				if n == 1 {
					return retryAfter{after: 500 * time.Millisecond}
				}
			case "m2":
				return bus.Permanent(errors.New("404 gone"))
			case "m3":
				return errors.New("503 always")
			}
			return nil
		})
	publish(t, js, 4)
	waitFor(t, "work queue drained", func() bool { return streamMsgs(t, js, bus.StreamAuthorized) == 0 })
	waitFor(t, "two dead letters", func() bool { return streamMsgs(t, js, bus.StreamDeadLetter) == 2 })
	mu.Lock()
	defer mu.Unlock()
	for msg, want := range map[string]int{"m0": 1, "m1": 2, "m2": 1, "m3": 3} {
		if got := len(seen[msg]); got != want {
			t.Errorf("%s handled %d times, want %d", msg, got, want)
		}
	}
	if gap := seen["m1"][1].Sub(seen["m1"][0]); gap < 500*time.Millisecond {
		t.Errorf("retried after %v, sooner than its RetryAfter", gap)
	}
	s, _ := js.Stream(context.Background(), bus.StreamDeadLetter)
	reasons := map[string]bool{}
	for seq := uint64(1); seq <= 2; seq++ {
		raw, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			t.Fatal(err)
		}
		var dl sparkguardv1.DeadLetter
		if err := proto.Unmarshal(raw.Data, &dl); err != nil {
			t.Fatal(err)
		}
		reasons[string(dl.GetPayload())+": "+dl.GetReason()] = true
		if raw.Subject != bus.DeadLetterSubject("test") || dl.GetStage() != "test" || dl.GetSubject() != bus.SubjectAuthorized {
			t.Errorf("dead letter on %s: %v", raw.Subject, &dl)
		}
	}
	if !reasons["m2: permanent: 404 gone"] || !reasons["m3: gave up after 3 deliveries: 503 always"] {
		t.Errorf("dead letters = %v", reasons)
	}
}

// TestWorkerShutdown: on shutdown the message in hand finishes and is
// acked, and those prefetched but not started are given back at once, so
// another replica takes them without waiting out the ack wait.
func TestWorkerShutdown(t *testing.T) {
	t.Parallel()
	js := setUp(t)
	started := make(chan struct{}, 10)
	release := make(chan struct{})
	var firstDone atomic.Int32
	_, stop := runWorker(t, js, bus.WorkerConfig{Concurrency: 1, AckWait: time.Minute},
		func(ctx context.Context, msg jetstream.Msg) error {
			started <- struct{}{}
			<-release
			firstDone.Add(1)
			return nil
		})
	publish(t, js, 5)
	<-started
	stopped := make(chan struct{})
	go func() { stop(); close(stopped) }()
	time.Sleep(100 * time.Millisecond) // let shutdown begin with the message in hand
	close(release)
	<-stopped
	if firstDone.Load() != 1 {
		t.Fatalf("%d messages finished during shutdown, want the one in hand", firstDone.Load())
	}
	var handled atomic.Int32
	runWorker(t, js, bus.WorkerConfig{Concurrency: 4, AckWait: time.Minute},
		func(context.Context, jetstream.Msg) error { handled.Add(1); return nil })
	// With a one-minute ack wait, only messages given back reach the new
	// replica inside the wait below.
	waitFor(t, "the other four handled by the next replica", func() bool { return handled.Load() == 4 })
	if n := streamMsgs(t, js, bus.StreamAuthorized); n != 0 {
		t.Fatalf("%d messages left", n)
	}
}

// TestWorkerStopsWhenConsumerGoes: a worker whose consumer is deleted
// under it returns an error instead of idling forever as if ready.
func TestWorkerStopsWhenConsumerGoes(t *testing.T) {
	t.Parallel()
	js := setUp(t)
	w := bus.NewWorker(js, bus.WorkerConfig{Stage: "gone", Stream: bus.StreamAuthorized}, func(context.Context, jetstream.Msg) error { return nil },
		slog.New(slog.DiscardHandler), bus.NewWorkerMetrics(prometheus.NewRegistry()))
	cons, err := w.EnsureConsumer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(context.Background(), cons) }()
	time.Sleep(200 * time.Millisecond)
	if err := js.DeleteConsumer(context.Background(), bus.StreamAuthorized, "gone"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Run returned nil with its consumer gone")
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run still running with its consumer gone")
	}
}
