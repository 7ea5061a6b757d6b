// Package bus is sparkguard's one JetStream set-up: the connection with its
// reconnect policy, the names of every stream, subject, consumer and
// key-value bucket, their idempotent creation, and the Worker that runs a
// stage's durable pull consumer.
package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sparkguard/sparkguard/platform/config"
)

// Names on the bus. DESIGN.md and the deploy files (NATS permissions) rely
// on them.
const (
	StreamWebhooks        = "SPARKGUARD_WEBHOOKS"
	SubjectWebhooksPrefix = "sparkguard.webhooks."

	StreamAuthorized  = "SPARKGUARD_AUTHORIZED"
	SubjectAuthorized = "sparkguard.authorized.messages"

	StreamDeadLetter        = "SPARKGUARD_DEADLETTER"
	SubjectDeadLetterPrefix = "sparkguard.deadletter."

	ConsumerAuthz     = "authz"
	ConsumerResponder = "responder"

	BucketPeople  = "sparkguard_people"
	BucketReplies = "sparkguard_replies"
)

// Headers that travel with every bus message.
const (
	// HeaderRequestID carries the ingress request id through every stage.
	HeaderRequestID = "Sparkguard-Request-Id"
)

// DuplicateWindow is how long JetStream remembers a Nats-Msg-Id: a repeated
// Webex delivery of one event inside it is stored once.
const DuplicateWindow = 30 * time.Minute

// WebhookSubject is the subject of a webhook event; resource and event must
// be single subject tokens (the ingress checks them).
func WebhookSubject(resource, event string) string {
	return SubjectWebhooksPrefix + resource + "." + event
}

// DeadLetterSubject is where stage puts what it gave up on.
func DeadLetterSubject(stage string) string {
	return SubjectDeadLetterPrefix + stage
}

// Config is the bus part of every service's configuration.
type Config struct {
	URL       string        `env:"NATS_URL" envDefault:"nats://127.0.0.1:4222"`
	CredsFile string        `env:"NATS_CREDS_FILE"`
	User      string        `env:"NATS_USER"`
	Password  config.Secret `env:"NATS_PASSWORD"`
}

// Validate reports inconsistent credentials.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.URL) == "" {
		errs = append(errs, errors.New("NATS_URL: must not be empty"))
	}
	if (c.User == "") != (c.Password == "") {
		errs = append(errs, errors.New("NATS_USER and NATS_PASSWORD: set both or neither"))
	}
	if c.CredsFile != "" && c.User != "" {
		errs = append(errs, errors.New("NATS_CREDS_FILE and NATS_USER: use one way to authenticate"))
	}
	return errors.Join(errs...)
}

// Connect connects to NATS as client name. It does not wait for the server:
// when none answers yet it keeps trying in the background (as it does after
// any disconnect, forever), so a service can start before NATS and report
// itself not ready until the connection is up.
func Connect(cfg Config, name string, log *slog.Logger) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.RetryOnFailedConnect(true),
		nats.PingInterval(10 * time.Second),
		nats.MaxPingsOutstanding(2),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: our own Close
				log.Warn("nats disconnected", "error", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("nats reconnected", "server", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			log.Error("nats async error", "subject", subject, "error", err)
		}),
	}
	switch {
	case cfg.CredsFile != "":
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	case cfg.User != "":
		opts = append(opts, nats.UserInfo(cfg.User, cfg.Password.Reveal()),
			nats.CustomInboxPrefix(InboxPrefix(cfg.User)))
	}
	nc, err := nats.Connect(cfg.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats: %w", err)
	}
	return nc, nil
}

// InboxPrefix is where a NATS user receives its replies (PubAcks, API
// answers, pulled messages, watches). A prefix of its own lets the server
// allow each user its replies and nobody else's.
func InboxPrefix(user string) string { return "_INBOX_" + user }

// Ready is a readiness check: the connection is up.
func Ready(nc *nats.Conn) func(context.Context) error {
	return func(context.Context) error {
		if s := nc.Status(); s != nats.CONNECTED {
			return fmt.Errorf("nats %s", s)
		}
		return nil
	}
}

// streams are the streams of the pipeline, by name.
var streams = map[string]jetstream.StreamConfig{
	StreamWebhooks: {
		Name:        StreamWebhooks,
		Description: "Verified Webex webhook deliveries, waiting for authz.",
		Subjects:    []string{SubjectWebhooksPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  DuplicateWindow,
		MaxAge:      7 * 24 * time.Hour,
		Discard:     jetstream.DiscardNew,
	},
	StreamAuthorized: {
		Name:        StreamAuthorized,
		Description: "Messages from allowed senders, waiting for the responder.",
		Subjects:    []string{SubjectAuthorized},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Duplicates:  DuplicateWindow,
		MaxAge:      7 * 24 * time.Hour,
		Discard:     jetstream.DiscardNew,
	},
	StreamDeadLetter: {
		Name:        StreamDeadLetter,
		Description: "What a stage gave up on, kept for inspection and replay.",
		Subjects:    []string{SubjectDeadLetterPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      30 * 24 * time.Hour,
	},
}

// EnsureStreams creates the named streams, or brings an existing one to the
// expected configuration. It is idempotent and safe for several replicas at
// once.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, names ...string) error {
	for _, name := range names {
		cfg, ok := streams[name]
		if !ok {
			return fmt.Errorf("ensure stream %s: unknown stream", name)
		}
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("ensure stream %s: %w", name, err)
		}
	}
	return nil
}

// EnsureBucket creates the key-value bucket, or updates its TTL. Keys may
// also carry their own shorter TTL (jetstream.KeyTTL).
func EnsureBucket(ctx context.Context, js jetstream.JetStream, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         bucket,
		TTL:            ttl,
		Storage:        jetstream.FileStorage,
		LimitMarkerTTL: time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("ensure bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// Retry runs step until it succeeds or ctx ends, waiting a growing pause
// (capped at 5s) between tries and logging each failure. Services use it for
// their start-up set-up, so that they ride out a bus or API that starts
// after them. A permanent error (a rejected token, say) stops it at once:
// no retry can fix that, and the service should fail with one clear error.
func Retry(ctx context.Context, log *slog.Logger, what string, step func(context.Context) error) error {
	wait := 100 * time.Millisecond
	for {
		err := step(ctx)
		if err == nil {
			return nil
		}
		if permanent, _ := classify(err); permanent {
			return fmt.Errorf("%s: %w", what, err)
		}
		log.Warn("start-up step failed, retrying", "step", what, "error", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, errors.Join(ctx.Err(), err))
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}
