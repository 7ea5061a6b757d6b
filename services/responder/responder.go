// Package responder is sparkguard's last stage: for every message authz
// allowed, it fetches the message from Webex (GET /messages/{id}), removes
// the bot's mention, and posts the rest back as plain text to the same room,
// in the same thread when the original was in one. A key-value record of
// answered messages keeps it from posting twice for one message; failures go
// through the shared bus.Worker (a 429 waits out Retry-After, transient
// failures back off, permanent ones are dead-lettered).
package responder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/webex"
)

// RepliesTTL is how long the record of an answered message is kept: a
// redelivery of the message within it is recognised and not answered again.
// It is far longer than the streams' duplicate windows and the redelivery
// schedule.
const RepliesTTL = 7 * 24 * time.Hour

// Deps are what the responder runs with.
type Deps struct {
	// JS is the bus.
	JS jetstream.JetStream
	// Webex calls the REST API as the bot.
	Webex *webex.Client
	// Registry receives the responder's and the consumer's metrics; the
	// Webex client's metrics are given to the client itself.
	Registry prometheus.Registerer
	// Log is the logger; nil logs nothing.
	Log *slog.Logger
}

// Responder is one replica of the responder stage.
type Responder struct {
	cfg      Config
	js       jetstream.JetStream
	webex    *webex.Client
	log      *slog.Logger
	metrics  *metrics
	worker   *bus.Worker
	ackWait  time.Duration
	claimTTL time.Duration

	kv      jetstream.KeyValue
	bot     atomic.Pointer[bot]
	running atomic.Bool
}

// New returns a responder for cfg, which must have passed Validate. Run
// starts it.
func New(cfg Config, deps Deps) *Responder {
	log := deps.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	reg := deps.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	r := &Responder{
		cfg:     cfg,
		js:      deps.JS,
		webex:   deps.Webex,
		log:     log,
		metrics: newMetrics(reg),
	}
	r.worker = bus.NewWorker(deps.JS, cfg.workerConfig(), r.handle, log, bus.NewWorkerMetrics(reg))
	r.worker.Retried = func(error) { r.metrics.replies.WithLabelValues(outcomeRetried).Inc() }
	r.worker.DeadLettered = func(string) { r.metrics.replies.WithLabelValues(outcomeDeadLettered).Inc() }
	r.ackWait = r.worker.ConsumerConfig().AckWait
	r.claimTTL = claimTTL(r.ackWait)
	return r
}

// claimTTL is how long a replica's claim on posting one reply lasts: twice
// the ack wait, so it outlives any one handling (bounded below the ack wait)
// and then frees the message for another try should the replica die. Key
// TTLs count in whole seconds, at least one.
func claimTTL(ackWait time.Duration) time.Duration {
	return max((2*ackWait + time.Second - 1).Truncate(time.Second), time.Second)
}

// Run sets the responder up and consumes until ctx ends: it ensures the
// authorized and dead-letter streams and the replies bucket, learns the bot
// (GET /people/me), ensures the shared durable consumer, then answers
// messages. Each set-up step is retried until it succeeds, so the responder
// may start before NATS or Webex answer. A context that ends is a clean stop
// (nil). Run is called once.
func (r *Responder) Run(ctx context.Context) error {
	err := r.run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (r *Responder) run(ctx context.Context) error {
	r.log.Info("responder starting", "webex_api_url", r.cfg.Webex.APIURL,
		"concurrency", r.cfg.Concurrency, "max_deliver", r.cfg.MaxDeliver, "claim_ttl", r.claimTTL)
	if err := bus.Retry(ctx, r.log, "ensure streams", func(ctx context.Context) error {
		return bus.EnsureStreams(ctx, r.js, bus.StreamAuthorized, bus.StreamDeadLetter)
	}); err != nil {
		return err
	}
	if err := bus.Retry(ctx, r.log, "ensure replies bucket", func(ctx context.Context) error {
		kv, err := bus.EnsureBucket(ctx, r.js, bus.BucketReplies, RepliesTTL)
		r.kv = kv
		return err
	}); err != nil {
		return err
	}
	if err := bus.Retry(ctx, r.log, "learn the bot (GET /people/me)", func(ctx context.Context) error {
		me, err := r.webex.Me(ctx)
		if err != nil {
			return err
		}
		r.bot.Store(newBot(me))
		r.log.Info("bot known", "bot_id", me.ID, "display_name", me.DisplayName)
		return nil
	}); err != nil {
		return err
	}
	var cons jetstream.Consumer
	if err := bus.Retry(ctx, r.log, "ensure consumer", func(ctx context.Context) error {
		var err error
		cons, err = r.worker.EnsureConsumer(ctx)
		return err
	}); err != nil {
		return err
	}
	r.running.Store(true)
	defer r.running.Store(false)
	r.log.Info("responder consuming", "stream", bus.StreamAuthorized, "consumer", bus.ConsumerResponder)
	return r.worker.Run(ctx, cons)
}

// Ready reports whether the responder answers messages: the bot is known
// and the consumer runs.
func (r *Responder) Ready(context.Context) error {
	if r.bot.Load() == nil {
		return errors.New("bot not known yet: GET /people/me has not succeeded")
	}
	if !r.running.Load() {
		return errors.New("consumer not running")
	}
	return nil
}

// Service runs the responder as a binary's service, with the runtime's bus,
// registry and logger; its readiness joins the runtime's /readyz.
func Service(cfg *Config) app.Service {
	return func(ctx context.Context, rt *app.Runtime) error {
		client, err := cfg.Webex.NewClient(webex.NewMetrics(rt.Registry))
		if err != nil {
			return fmt.Errorf("responder: %w", err)
		}
		r := New(*cfg, Deps{JS: rt.JS, Webex: client, Registry: rt.Registry, Log: rt.Log})
		rt.Obs.AddReadiness("responder", r.Ready)
		return r.Run(ctx)
	}
}
