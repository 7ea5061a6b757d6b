package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sparkguard/sparkguard/platform/obs"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
)

// Handler does a stage's work for one message. It returns nil when the work
// is done (the message is then acked), or an error that says whether trying
// again can help: see Permanent and the RetryAfter convention on Worker.
type Handler func(ctx context.Context, msg jetstream.Msg) error

// Permanent marks err as one that no retry can fix: the message goes to the
// dead-letter stream at once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

type permanentError struct{ err error }

func (e permanentError) Error() string   { return e.err.Error() }
func (e permanentError) Unwrap() error   { return e.err }
func (e permanentError) Permanent() bool { return true }

// classify is the one place that maps an error to what happens to the
// message. An error is permanent when something in its chain says so with a
// `Permanent() bool` method (Permanent, webex.APIError for most 4xx);
// anything else is transient and retried after at least the RetryAfter()
// any error in the chain asks for (a Webex 429).
func classify(err error) (permanent bool, retryAfter time.Duration) {
	var p interface{ Permanent() bool }
	if errors.As(err, &p) {
		permanent = p.Permanent()
	}
	var r interface{ RetryAfter() time.Duration }
	if errors.As(err, &r) {
		retryAfter = r.RetryAfter()
	}
	return permanent, retryAfter
}

// WorkerConfig tunes a stage's consumer.
type WorkerConfig struct {
	// Stage names the stage ("authz", "responder"): its consumer, its
	// dead-letter subject and its logs.
	Stage string
	// Stream is the stream the stage consumes.
	Stream string
	// Concurrency is how many messages one replica handles at once.
	Concurrency int
	// MaxDeliver is how many deliveries a failing message gets before it
	// is dead-lettered.
	MaxDeliver int
	// AckWait is how long JetStream waits for an ack before it hands the
	// message to another replica; HandleTimeout must be shorter.
	AckWait time.Duration
	// HandleTimeout bounds one handling of one message.
	HandleTimeout time.Duration
	// MinBackoff and MaxBackoff bound the growing delay before a failed
	// message is redelivered.
	MinBackoff, MaxBackoff time.Duration
}

func (c *WorkerConfig) defaults() {
	if c.Concurrency <= 0 {
		c.Concurrency = 16
	}
	if c.MaxDeliver <= 0 {
		c.MaxDeliver = 10
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.HandleTimeout <= 0 || c.HandleTimeout >= c.AckWait {
		c.HandleTimeout = c.AckWait * 2 / 3
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = time.Second
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(5*time.Minute, c.MinBackoff)
	}
}

// WorkerMetrics are the metrics every stage's consumer shares.
type WorkerMetrics struct {
	pending *prometheus.GaugeVec
}

// NewWorkerMetrics registers the consumer metrics with reg (or reuses them
// when another stage in the process already did).
func NewWorkerMetrics(reg prometheus.Registerer) *WorkerMetrics {
	return &WorkerMetrics{
		pending: obs.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sparkguard_consumer_pending_messages",
			Help: "Messages the consumer has not acknowledged yet: waiting for delivery or in flight.",
		}, []string{"consumer"})),
	}
}

// maxRetryAfter is the longest Retry-After a message waits out.
const maxRetryAfter = time.Hour

// settleTimeout bounds an ack, nak or dead letter.
const settleTimeout = 5 * time.Second

// Worker runs one replica of a stage: it shares the stage's durable pull
// consumer with every other replica, hands each message to the Handler with
// bounded concurrency, and settles it exactly once: ack on success, a
// delayed nak on a transient failure, and on a permanent failure or past
// MaxDeliver a dead letter followed by a term. Nothing is dropped silently:
// if the dead letter cannot be stored, the message is nak'd instead.
type Worker struct {
	js      jetstream.JetStream
	cfg     WorkerConfig
	handle  Handler
	log     *slog.Logger
	metrics *WorkerMetrics
	// DeadLettered is called after a message was dead-lettered, for the
	// stage's own metrics; it may be nil.
	DeadLettered func(reason string)
	// Retried is called after a message was nak'd for a retry; it may be
	// nil.
	Retried func(err error)
}

// NewWorker returns a worker for cfg.Stage; Run starts it.
func NewWorker(js jetstream.JetStream, cfg WorkerConfig, handle Handler, log *slog.Logger, metrics *WorkerMetrics) *Worker {
	cfg.defaults()
	return &Worker{js: js, cfg: cfg, handle: handle, log: log.With("stage", cfg.Stage), metrics: metrics}
}

// ConsumerConfig is the durable consumer shared by the stage's replicas.
// MaxDeliver is one more than the worker's limit: the worker dead-letters a
// message on its last allowed delivery, and the extra delivery catches a
// message whose handler crashed on that one.
func (w *Worker) ConsumerConfig() jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       w.cfg.Stage,
		Description:   "sparkguard " + w.cfg.Stage + " stage, shared by its replicas",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       w.cfg.AckWait,
		MaxDeliver:    w.cfg.MaxDeliver + 1,
		MaxAckPending: 1000,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
}

// EnsureConsumer creates or updates the stage's durable consumer.
func (w *Worker) EnsureConsumer(ctx context.Context) (jetstream.Consumer, error) {
	cons, err := w.js.CreateOrUpdateConsumer(ctx, w.cfg.Stream, w.ConsumerConfig())
	if err != nil {
		return nil, fmt.Errorf("ensure consumer %s on %s: %w", w.cfg.Stage, w.cfg.Stream, err)
	}
	return cons, nil
}

// Run consumes until ctx ends. Then it stops pulling, lets the messages in
// hand finish, and naks those it had prefetched but not started, so another
// replica takes them at once.
func (w *Worker) Run(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(w.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("consume %s: %w", w.cfg.Stage, err)
	}
	var wg sync.WaitGroup
	pendingCtx, stopPending := context.WithCancel(ctx)
	wg.Go(func() { w.reportPending(pendingCtx, cons) })
	slots := make(chan struct{}, w.cfg.Concurrency)
	var runErr error
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) || errors.Is(err, jetstream.ErrConsumerDeleted) ||
				errors.Is(err, jetstream.ErrConsumerNotFound) {
				// Nothing more will come: stop, so the process fails and
				// is restarted rather than idling as if it were consuming.
				runErr = fmt.Errorf("consume %s: %w", w.cfg.Stage, err)
				break
			}
			// Heartbeat and connection errors: the iterator goes on by
			// itself once the connection is back.
			w.log.Warn("consume", "error", err)
			continue
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			w.release(msg)
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			w.process(ctx, msg)
		})
	}
	stopPending()
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			break
		}
		w.release(msg)
	}
	wg.Wait()
	return runErr
}

// release gives a message back without waiting for its ack timeout.
func (w *Worker) release(msg jetstream.Msg) {
	if err := msg.Nak(); err != nil {
		w.log.Warn("release message", "error", err)
	}
}

func (w *Worker) process(ctx context.Context, msg jetstream.Msg) {
	// The handling is not cancelled by shutdown: a message in hand finishes
	// (bounded by HandleTimeout) rather than being abandoned half-done.
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.HandleTimeout)
	defer cancel()
	meta, err := msg.Metadata()
	if err != nil {
		w.log.Error("message without metadata", "error", err)
		w.release(msg)
		return
	}
	log := w.log.With("stream_seq", meta.Sequence.Stream, "deliveries", meta.NumDelivered,
		"request_id", msg.Headers().Get(HeaderRequestID))
	// The message may have waited in the prefetch buffer for a free slot:
	// restart its ack wait, so it is not handed to another replica while
	// this one handles it.
	if err := msg.InProgress(); err != nil {
		log.Warn("mark in progress", "error", err)
	}
	// Settling gets its own time: a handler that used up its own must
	// still be able to ack, nak or dead-letter.
	sctx, scancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer scancel()
	if meta.NumDelivered > uint64(w.cfg.MaxDeliver) {
		w.deadLetter(sctx, log, msg, meta, "delivery limit reached without an answer from the handler")
		return
	}
	herr := w.handle(hctx, msg)
	if herr == nil {
		if err := msg.DoubleAck(sctx); err != nil {
			// The work is done; the message may come again and the
			// handlers are idempotent.
			log.Warn("ack", "error", err)
		}
		return
	}
	permanent, retryAfter := classify(herr)
	switch {
	case permanent:
		w.deadLetter(sctx, log, msg, meta, "permanent: "+herr.Error())
	case meta.NumDelivered >= uint64(w.cfg.MaxDeliver):
		w.deadLetter(sctx, log, msg, meta, fmt.Sprintf("gave up after %d deliveries: %v", meta.NumDelivered, herr))
	default:
		// A Retry-After is honoured up to an hour, so an absurd one cannot
		// park a message for years.
		delay := max(w.backoff(meta.NumDelivered), min(retryAfter, maxRetryAfter))
		log.Warn("handling failed, will retry", "error", herr, "retry_in", delay)
		if err := msg.NakWithDelay(delay); err != nil {
			log.Warn("nak", "error", err)
		}
		if w.Retried != nil {
			w.Retried(herr)
		}
	}
}

// backoff is the delay before delivery n+1: doubling from MinBackoff, capped
// at MaxBackoff, with jitter so that retries of many messages spread out.
func (w *Worker) backoff(n uint64) time.Duration {
	d := w.cfg.MinBackoff
	for i := uint64(1); i < n && d < w.cfg.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.cfg.MaxBackoff)
	return d + rand.N(d/4+1)
}

// deadLetter stores msg on the stage's dead-letter subject, then terms it.
func (w *Worker) deadLetter(ctx context.Context, log *slog.Logger, msg jetstream.Msg, meta *jetstream.MsgMetadata, reason string) {
	dl := &sparkguardv1.DeadLetter{
		Stage:          w.cfg.Stage,
		Reason:         reason,
		Subject:        msg.Subject(),
		Payload:        msg.Data(),
		Deliveries:     meta.NumDelivered,
		FailedAt:       timestamppb.Now(),
		StreamSequence: meta.Sequence.Stream,
	}
	data, err := proto.Marshal(dl)
	if err == nil {
		out := nats.NewMsg(DeadLetterSubject(w.cfg.Stage))
		out.Data = data
		out.Header.Set(HeaderRequestID, msg.Headers().Get(HeaderRequestID))
		// The id makes a dead letter stored twice (a crash between store
		// and term) collapse into one.
		out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s:%s:%d", w.cfg.Stage, meta.Stream, meta.Sequence.Stream))
		_, err = w.js.PublishMsg(ctx, out)
	}
	if err != nil {
		log.Error("dead letter not stored, message kept for retry", "error", err, "reason", reason)
		if nerr := msg.NakWithDelay(w.cfg.MinBackoff); nerr != nil {
			log.Warn("nak", "error", nerr)
		}
		return
	}
	log.Error("message dead-lettered", "reason", reason)
	if err := msg.Term(); err != nil {
		log.Warn("term", "error", err)
	}
	if w.DeadLettered != nil {
		w.DeadLettered(reason)
	}
}

// reportPending keeps the pending gauge current until ctx ends.
func (w *Worker) reportPending(ctx context.Context, cons jetstream.Consumer) {
	if w.metrics == nil {
		return
	}
	gauge := w.metrics.pending.WithLabelValues(w.cfg.Stage)
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
		info, err := cons.Info(ictx)
		cancel()
		if err == nil {
			gauge.Set(float64(info.NumPending) + float64(info.NumAckPending))
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
