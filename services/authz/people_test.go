package authz

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/bus/bustest"
	"github.com/sparkguard/sparkguard/platform/webex"
)

// interleavedKV is the real bucket, with a hook run just before the next
// Create: it lets a test place another replica's whole look-up between this
// replica's bucket miss and its taking of the lock.
type interleavedKV struct {
	jetstream.KeyValue
	beforeCreate func()
}

func (k *interleavedKV) Create(ctx context.Context, key string, value []byte, opts ...jetstream.KVCreateOpt) (uint64, error) {
	if f := k.beforeCreate; f != nil {
		k.beforeCreate = nil
		f()
	}
	return k.KeyValue.Create(ctx, key, value, opts...)
}

// TestLookupAfterAnotherReplicaFinished: a replica that missed the bucket
// just before another replica stored the person, and then finds the lock
// free, uses the stored answer instead of asking Webex again.
func TestLookupAfterAnotherReplicaFinished(t *testing.T) {
	t.Parallel()
	srv := bustest.StartServer(t, bustest.Options{})
	_, js := bustest.Connect(t, srv)
	kv, err := bus.EnsureBucket(context.Background(), js, bus.BucketPeople, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	api := func(context.Context, string) (*webex.Person, error) {
		calls.Add(1)
		return &webex.Person{ID: "p1", Type: "person"}, nil
	}
	log := slog.New(slog.DiscardHandler)
	newCache := func(kv jetstream.KeyValue) *PersonCache {
		return NewPersonCache(api, kv, 10, time.Minute, time.Second, newMetrics(prometheus.NewRegistry()).lookups, log)
	}
	a := newCache(kv)
	b := newCache(&interleavedKV{KeyValue: kv, beforeCreate: func() {
		if _, err := a.Get(context.Background(), "p1"); err != nil {
			t.Error(err)
		}
	}})
	p, err := b.Get(context.Background(), "p1")
	if err != nil || p.ID != "p1" {
		t.Fatalf("Get = %v, %v", p, err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("Webex asked %d times about one person", n)
	}
}
