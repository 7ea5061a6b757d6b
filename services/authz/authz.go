// Package authz is sparkguard's authorization stage. It reads verified
// webhook events from JetStream, drops what the bot must not answer (not a
// new message, the bot's own messages, other bots), and applies the policy:
// an email list, a domain list, and the sender's own Webex org, looked up
// with cached GET /people/{id} calls. Allowed messages go on to the
// responder; denials are acked, counted and written as one audit line each.
// A failed look-up decides nothing: the event is retried later.
package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"

	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
)

// Deps are what authz runs with.
type Deps struct {
	JS       jetstream.JetStream
	Webex    *webex.Client
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Authz is one replica of the authz stage.
type Authz struct {
	cfg     Config
	policy  *Policy
	js      jetstream.JetStream
	webex   *webex.Client
	log     *slog.Logger
	metrics *metrics
	worker  *bus.Worker
	people  *PersonCache // set up by Run

	bot   atomic.Pointer[webex.Person] // learned once at start
	ready atomic.Bool
}

// New returns a replica for cfg; cfg must have passed Validate.
func New(cfg Config, deps Deps) (*Authz, error) {
	policy, err := NewPolicy(&cfg)
	if err != nil {
		return nil, err
	}
	a := &Authz{
		cfg:     cfg,
		policy:  policy,
		js:      deps.JS,
		webex:   deps.Webex,
		log:     deps.Log,
		metrics: newMetrics(deps.Registry),
	}
	a.worker = bus.NewWorker(deps.JS, cfg.workerConfig(), a.handle, deps.Log, bus.NewWorkerMetrics(deps.Registry))
	return a, nil
}

// Ready reports whether the replica is consuming: the bot is known and the
// consumer is set up.
func (a *Authz) Ready(context.Context) error {
	if !a.ready.Load() {
		return errors.New("authz is starting")
	}
	return nil
}

// Run sets up the streams, the shared person bucket and the consumer,
// learns the bot's own id, and consumes until ctx ends. Set-up steps are
// retried until they succeed, so authz rides out a bus or Webex that comes
// up after it.
func (a *Authz) Run(ctx context.Context) error {
	a.log.Info("authz policy", a.policy.Summary()...)
	var people jetstream.KeyValue
	if err := bus.Retry(ctx, a.log, "set up streams and person bucket", func(ctx context.Context) error {
		if err := bus.EnsureStreams(ctx, a.js, bus.StreamWebhooks, bus.StreamAuthorized, bus.StreamDeadLetter); err != nil {
			return err
		}
		kv, err := bus.EnsureBucket(ctx, a.js, bus.BucketPeople, a.cfg.PersonCacheTTL)
		people = kv
		return err
	}); err != nil {
		return err
	}
	if err := bus.Retry(ctx, a.log, "learn the bot's identity (GET /people/me)", func(ctx context.Context) error {
		me, err := a.webex.Me(ctx)
		if err == nil {
			a.bot.Store(me)
		}
		return err
	}); err != nil {
		return err
	}
	a.people = NewPersonCache(a.webex.Person, people, a.cfg.PersonCacheSize, a.cfg.PersonCacheTTL,
		a.cfg.Webex.Timeout, a.metrics.lookups, a.log)
	var cons jetstream.Consumer
	if err := bus.Retry(ctx, a.log, "set up consumer", func(ctx context.Context) error {
		c, err := a.worker.EnsureConsumer(ctx)
		cons = c
		return err
	}); err != nil {
		return err
	}
	a.log.Info("authz consuming", "bot_id", a.bot.Load().ID, "concurrency", a.cfg.Concurrency)
	a.ready.Store(true)
	defer a.ready.Store(false)
	return a.worker.Run(ctx, cons)
}

// Service runs authz as a binary's service on the runtime's bus and
// registry.
func Service(cfg *Config) app.Service {
	return func(ctx context.Context, rt *app.Runtime) error {
		client, err := cfg.Webex.NewClient(webex.NewMetrics(rt.Registry))
		if err != nil {
			return err
		}
		a, err := New(*cfg, Deps{JS: rt.JS, Webex: client, Registry: rt.Registry, Log: rt.Log})
		if err != nil {
			return err
		}
		rt.Obs.AddReadiness("authz", a.Ready)
		return a.Run(ctx)
	}
}

// handle decides one webhook event. It returns nil once the decision is
// carried out (an allowed message is stored for the responder first), and
// an error when nothing could be decided.
func (a *Authz) handle(ctx context.Context, msg jetstream.Msg) error {
	var ev sparkguardv1.WebhookEvent
	if err := proto.Unmarshal(msg.Data(), &ev); err != nil {
		return bus.Permanent(fmt.Errorf("decode webhook event: %w", err))
	}
	if ev.GetResource() != "messages" || ev.GetEvent() != "created" {
		a.metrics.decided(ignoreOther)
		return nil
	}
	var payload webex.Event
	if err := json.Unmarshal(ev.GetRawBody(), &payload); err != nil {
		return bus.Permanent(fmt.Errorf("decode webhook body: %w", err))
	}
	data := payload.Data
	d, err := a.policy.Decide(ctx, a.people, a.bot.Load().ID, data)
	if err != nil {
		return fmt.Errorf("decide on message %s: %w", data.ID, err)
	}
	log := a.log.With("request_id", ev.GetRequestId(), "message_id", data.ID)
	switch d.Decision {
	case decisionAllow:
		if err := a.forward(ctx, &ev, data, d); err != nil {
			return err
		}
		log.Debug("allowed", "reason", d.Reason)
	case decisionDeny:
		log.Info("authz denied", "audit", true, "sender_email", data.PersonEmail,
			"sender_id", data.PersonID, "room_id", data.RoomID, "reason", d.Reason)
	default:
		log.Debug("ignored", "reason", d.Reason)
	}
	a.metrics.decided(d)
	return nil
}

// forward stores an allowed message for the responder, deduplicated on the
// message id, and returns once JetStream has it.
func (a *Authz) forward(ctx context.Context, ev *sparkguardv1.WebhookEvent, data webex.EventData, d Decision) error {
	rec := &sparkguardv1.AuthorizedMessage{
		MessageId:   data.ID,
		RoomId:      data.RoomID,
		RoomType:    data.RoomType,
		PersonId:    data.PersonID,
		PersonEmail: data.PersonEmail,
		Reason:      d.Allow,
		ReceivedAt:  ev.GetReceivedAt(),
		RequestId:   ev.GetRequestId(),
	}
	b, err := proto.Marshal(rec)
	if err != nil {
		return bus.Permanent(fmt.Errorf("encode authorized message: %w", err))
	}
	out := nats.NewMsg(bus.SubjectAuthorized)
	out.Data = b
	out.Header.Set(jetstream.MsgIDHeader, data.ID)
	out.Header.Set(bus.HeaderRequestID, ev.GetRequestId())
	if _, err := a.js.PublishMsg(ctx, out); err != nil {
		return fmt.Errorf("publish authorized message: %w", err)
	}
	return nil
}
