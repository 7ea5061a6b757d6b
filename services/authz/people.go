package authz

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/singleflight"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// Sources of a person look-up, the values of the source label.
const (
	sourceMemory = "memory"
	sourceShared = "shared"
	sourceAPI    = "api"
)

// notFoundTTL is how long a person Webex does not know is remembered as
// such: short, since a new account may appear.
const notFoundTTL = time.Minute

// cached is a look-up result, as kept in memory and in the shared bucket.
type cached struct {
	Person    *webex.Person `json:"person,omitempty"`
	NotFound  bool          `json:"notFound,omitempty"`
	FetchedAt time.Time     `json:"fetchedAt"`
}

// PersonCache finds people through three layers: an in-process LRU with
// TTL, the JetStream key-value bucket every replica shares, and the Webex
// API. Concurrent look-ups of one person in a replica are coalesced, and
// replicas coordinate through a short-lived lock key in the bucket, so that
// one unknown person costs one API call however many replicas ask at once.
type PersonCache struct {
	api     func(ctx context.Context, id string) (*webex.Person, error)
	kv      jetstream.KeyValue
	mem     *expirable.LRU[string, cached]
	flight  singleflight.Group
	ttl     time.Duration
	lockTTL time.Duration
	lookups *prometheus.CounterVec
	log     *slog.Logger
}

// NewPersonCache returns a cache over api and the shared bucket kv. lockTTL
// bounds how long a replica waits for another's look-up (a little longer
// than one API call may take).
func NewPersonCache(api func(ctx context.Context, id string) (*webex.Person, error), kv jetstream.KeyValue,
	size int, ttl, lockTTL time.Duration, lookups *prometheus.CounterVec, log *slog.Logger) *PersonCache {
	return &PersonCache{
		api:     api,
		kv:      kv,
		mem:     expirable.NewLRU[string, cached](size, nil, ttl),
		ttl:     ttl,
		lockTTL: max(lockTTL, time.Second),
		lookups: lookups,
		log:     log,
	}
}

// Get returns the person with id, or ErrPersonNotFound.
func (c *PersonCache) Get(ctx context.Context, id string) (*webex.Person, error) {
	if e, ok := c.mem.Get(id); ok && c.fresh(e) {
		c.lookups.WithLabelValues(sourceMemory).Inc()
		return e.result()
	}
	v, err, _ := c.flight.Do(id, func() (any, error) {
		e, source, err := c.shared(ctx, id)
		if err != nil {
			return nil, err
		}
		c.mem.Add(id, e)
		c.lookups.WithLabelValues(source).Inc()
		return e, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(cached).result()
}

func (e cached) result() (*webex.Person, error) {
	if e.NotFound {
		return nil, ErrPersonNotFound
	}
	return e.Person, nil
}

func (c *PersonCache) fresh(e cached) bool {
	ttl := c.ttl
	if e.NotFound {
		ttl = min(ttl, notFoundTTL)
	}
	return time.Since(e.FetchedAt) < ttl
}

// keys of one person in the bucket: ids are hashed, since Webex ids hold
// characters (+) that keys may not.
func keys(id string) (value, lock string) {
	sum := sha256.Sum256([]byte(id))
	h := hex.EncodeToString(sum[:16])
	return "person." + h, "lock." + h
}

// shared finds the person in the bucket, or takes the bucket's lock for
// it and asks the API, or waits for the replica holding the lock.
func (c *PersonCache) shared(ctx context.Context, id string) (cached, string, error) {
	valueKey, lockKey := keys(id)
	for {
		if e, ok := c.fromBucket(ctx, valueKey); ok {
			return e, sourceShared, nil
		}
		_, err := c.kv.Create(ctx, lockKey, nil, jetstream.KeyTTL(c.lockTTL))
		switch {
		case err == nil:
			// Another replica may have stored the person and let the lock go
			// between our miss and our taking it: look again before asking.
			e, found := c.fromBucket(ctx, valueKey)
			source := sourceShared
			if !found {
				source = sourceAPI
				e, err = c.fromAPI(ctx, id, valueKey)
			}
			// Release the lock at once, found or not, so waiters move on.
			if derr := c.kv.Delete(context.WithoutCancel(ctx), lockKey); derr != nil {
				c.log.Warn("release person lock", "error", derr)
			}
			return e, source, err
		case errors.Is(err, jetstream.ErrKeyExists):
			if err := c.await(ctx, valueKey, lockKey); err != nil {
				return cached{}, "", err
			}
		default:
			// The bucket is only an optimisation: without it, ask the API.
			c.log.Warn("person bucket unavailable, asking Webex directly", "error", err)
			e, err := c.fromAPI(ctx, id, "")
			return e, sourceAPI, err
		}
	}
}

// fromBucket reads a fresh entry from the bucket.
func (c *PersonCache) fromBucket(ctx context.Context, key string) (cached, bool) {
	entry, err := c.kv.Get(ctx, key)
	if err != nil {
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			c.log.Warn("read person bucket", "error", err)
		}
		return cached{}, false
	}
	var e cached
	if err := json.Unmarshal(entry.Value(), &e); err != nil || !c.fresh(e) {
		return cached{}, false
	}
	return e, true
}

// fromAPI asks Webex and stores the answer in the bucket (unless key is
// empty). A 404 is an answer: the person does not exist.
func (c *PersonCache) fromAPI(ctx context.Context, id, key string) (cached, error) {
	p, err := c.api(ctx, id)
	e := cached{Person: p, FetchedAt: time.Now()}
	switch {
	case webex.IsNotFound(err):
		e = cached{NotFound: true, FetchedAt: e.FetchedAt}
	case err != nil:
		return cached{}, fmt.Errorf("look up person: %w", err)
	}
	if key != "" {
		if b, err := json.Marshal(e); err == nil {
			if _, err := c.kv.Put(ctx, key, b); err != nil {
				c.log.Warn("store person in bucket", "error", err)
			}
		}
	}
	return e, nil
}

// await waits until the replica holding lockKey stores valueKey or lets
// the lock go (released, or expired after lockTTL).
func (c *PersonCache) await(ctx context.Context, valueKey, lockKey string) error {
	ctx, cancel := context.WithTimeout(ctx, c.lockTTL+time.Second)
	defer cancel()
	w, err := c.kv.WatchFiltered(ctx, []string{valueKey, lockKey})
	if err != nil {
		return fmt.Errorf("watch person bucket: %w", err)
	}
	defer func() { _ = w.Stop() }()
	// A value already there was just judged stale by the caller: only a
	// value stored from now on ends the wait.
	caughtUp := false
	for {
		select {
		case <-ctx.Done():
			if ctx.Err() == context.DeadlineExceeded {
				// The lock outlived its TTL: try again from the top.
				return nil
			}
			return ctx.Err()
		case entry, ok := <-w.Updates():
			if !ok {
				return nil
			}
			if entry == nil { // the current values have all been seen
				caughtUp = true
				continue
			}
			if caughtUp && entry.Key() == valueKey && entry.Operation() == jetstream.KeyValuePut {
				return nil
			}
			if entry.Key() == lockKey && entry.Operation() != jetstream.KeyValuePut {
				return nil
			}
		}
	}
}
