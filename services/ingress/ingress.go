// Package ingress is sparkguard's internet-facing stage. It proves that a
// webhook request came from Webex (X-Spark-Signature over the raw body,
// against every configured secret), stores the event durably in JetStream,
// and only then answers 200, so Webex retries whatever was not stored. It
// holds no Webex token.
package ingress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/obs"
	"github.com/sparkguard/sparkguard/platform/webex"
	sparkguardv1 "github.com/sparkguard/sparkguard/proto/sparkguard/v1"
)

// WebhookPath is the route Webex posts to.
const WebhookPath = "/webhooks/webex"

// Deps are what the ingress runs with.
type Deps struct {
	JS       jetstream.JetStream
	NC       *nats.Conn
	Registry prometheus.Registerer
	Log      *slog.Logger
}

// Ingress is one replica of the ingress stage.
type Ingress struct {
	cfg     Config
	secrets [][]byte
	js      jetstream.JetStream
	nc      *nats.Conn
	log     *slog.Logger
	metrics *metrics
	echo    *echo.Echo
	ready   atomic.Bool // the webhook stream is there
}

// New returns an ingress for cfg; cfg must have passed Validate.
func New(cfg Config, deps Deps) *Ingress {
	in := &Ingress{
		cfg:     cfg,
		secrets: cfg.secrets(),
		js:      deps.JS,
		nc:      deps.NC,
		log:     deps.Log,
		metrics: newMetrics(deps.Registry),
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = in.handleError
	e.Use(middleware.Recover())
	e.POST(WebhookPath, in.handleWebhook,
		middleware.BodyLimit(strconv.FormatInt(cfg.MaxBodyBytes, 10)+"B"))
	in.echo = e
	return in
}

// Handler is the HTTP handler of the webhook endpoint.
func (in *Ingress) Handler() http.Handler { return in.echo }

// Ready reports whether the ingress can store webhooks: its stream is there.
func (in *Ingress) Ready(context.Context) error {
	if !in.ready.Load() {
		return errors.New("ingress: webhook stream not set up yet")
	}
	return nil
}

// Run waits until the webhook stream exists (creating it when the bus
// credential allows; else authz creates it), then serves webhooks on ln
// until ctx ends and drains in-flight requests. Until then connections wait
// in the listener's backlog and Ready reports not ready.
func (in *Ingress) Run(ctx context.Context, ln net.Listener) error {
	if err := bus.Retry(ctx, in.log, "find or create the webhook stream", func(ctx context.Context) error {
		if _, err := in.js.Stream(ctx, bus.StreamWebhooks); err == nil {
			return nil
		}
		return bus.EnsureStreams(ctx, in.js, bus.StreamWebhooks)
	}); err != nil {
		return err
	}
	in.ready.Store(true)
	defer in.ready.Store(false)
	srv := obs.NewHTTPServer(in.echo)
	// A request may wait for the publish timeout before it is answered.
	srv.WriteTimeout = in.cfg.PublishTimeout + 10*time.Second
	in.log.Info("ingress listening", "addr", ln.Addr().String(), "path", WebhookPath,
		"secrets", len(in.secrets), "max_body_bytes", in.cfg.MaxBodyBytes)
	return obs.ServeHTTP(ctx, ln, srv)
}

// Service runs the ingress as a binary's service: it listens on INGRESS_ADDR
// with the runtime's bus and registry.
func Service(cfg *Config) app.Service {
	return func(ctx context.Context, rt *app.Runtime) error {
		ln, err := net.Listen("tcp", cfg.Addr)
		if err != nil {
			return fmt.Errorf("listen on INGRESS_ADDR %s: %w", cfg.Addr, err)
		}
		in := New(*cfg, Deps{JS: rt.JS, NC: rt.NC, Registry: rt.Registry, Log: rt.Log})
		rt.Obs.AddReadiness("ingress", in.Ready)
		return in.Run(ctx, ln)
	}
}

// errorAnswer is an HTTP answer that says nothing internal.
type errorAnswer struct {
	status  int
	message string
	outcome string
}

func (e *errorAnswer) Error() string { return e.message }

func reject(status int, outcome, message string) error {
	return &errorAnswer{status: status, message: message, outcome: outcome}
}

// subjectToken is what a resource or event must look like to become one
// subject token: no dots, wildcards or spaces can reach the subject.
var subjectToken = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]{0,63}$`)

// maxDataIDLength bounds data.id, which becomes part of the Nats-Msg-Id.
const maxDataIDLength = 512

// payload is the part of a webhook body the ingress reads.
type payload struct {
	ID       string `json:"id"`
	Resource string `json:"resource"`
	Event    string `json:"event"`
	Data     struct {
		ID string `json:"id"`
	} `json:"data"`
}

// verify proves body came from Webex and reads the fields the ingress needs.
// The signature is checked before anything else, over the bytes exactly as
// received; an error is an *errorAnswer.
func (in *Ingress) verify(body []byte, signature, contentType string) (*payload, error) {
	if signature == "" {
		return nil, reject(http.StatusUnauthorized, outcomeMissingSignature, "missing signature")
	}
	if !webex.VerifySignature(body, signature, in.secrets) {
		return nil, reject(http.StatusUnauthorized, outcomeBadSignature, "invalid signature")
	}
	if mt, _, err := mime.ParseMediaType(contentType); err != nil || mt != echo.MIMEApplicationJSON {
		return nil, reject(http.StatusUnsupportedMediaType, outcomeUnsupportedMedia, "content type must be application/json")
	}
	var p payload
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, reject(http.StatusBadRequest, outcomeMalformed, "body is not valid JSON")
	}
	if !subjectToken.MatchString(p.Resource) || !subjectToken.MatchString(p.Event) ||
		p.Data.ID == "" || len(p.Data.ID) > maxDataIDLength {
		return nil, reject(http.StatusBadRequest, outcomeMalformed, "body lacks a valid resource, event or data.id")
	}
	return &p, nil
}

func (in *Ingress) handleWebhook(c echo.Context) error {
	received := time.Now()
	defer func() { in.metrics.duration.Observe(time.Since(received).Seconds()) }()
	req := c.Request()

	body, err := io.ReadAll(req.Body)
	if err != nil {
		if errors.Is(err, echo.ErrStatusRequestEntityTooLarge) {
			return reject(http.StatusRequestEntityTooLarge, outcomeTooLarge, "request body too large")
		}
		return reject(http.StatusBadRequest, outcomeMalformed, "could not read request body")
	}
	p, err := in.verify(body, req.Header.Get(webex.SignatureHeader), req.Header.Get(echo.HeaderContentType))
	if err != nil {
		return err
	}

	requestID := newRequestID()
	event := &sparkguardv1.WebhookEvent{
		RawBody:    body,
		ReceivedAt: timestamppb.New(received),
		WebhookId:  p.ID,
		Resource:   p.Resource,
		Event:      p.Event,
		DataId:     p.Data.ID,
		RequestId:  requestID,
	}
	data, err := proto.Marshal(event)
	if err != nil {
		return fmt.Errorf("marshal webhook event: %w", err)
	}
	msg := nats.NewMsg(bus.WebhookSubject(p.Resource, p.Event))
	msg.Data = data
	msg.Header.Set(jetstream.MsgIDHeader, p.Resource+":"+p.Event+":"+p.Data.ID)
	msg.Header.Set(bus.HeaderRequestID, requestID)

	ack, err := in.publish(req.Context(), msg)
	if err != nil {
		in.log.Warn("webhook not stored", "request_id", requestID, "resource", p.Resource, "event", p.Event, "error", err)
		c.Response().Header().Set("Retry-After", "5")
		return reject(http.StatusServiceUnavailable, outcomePublishFailed, "temporarily unavailable")
	}
	outcome := outcomeAccepted
	if ack.Duplicate {
		outcome = outcomeDuplicate
	}
	in.metrics.webhooks.WithLabelValues(outcome).Inc()
	in.log.Debug("webhook stored", "request_id", requestID, "resource", p.Resource, "event", p.Event,
		"outcome", outcome, "stream_seq", ack.Sequence)
	return c.JSON(http.StatusOK, map[string]string{"status": outcome})
}

// publish stores msg, waiting at most the publish timeout for the PubAck.
// While the connection is down it fails at once instead of buffering. A
// caller that hangs up does not cancel it: the event may be stored anyway,
// and Webex's retry will then be a duplicate.
func (in *Ingress) publish(ctx context.Context, msg *nats.Msg) (*jetstream.PubAck, error) {
	if in.nc != nil && in.nc.Status() != nats.CONNECTED {
		return nil, fmt.Errorf("publish: nats %s", in.nc.Status())
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), in.cfg.PublishTimeout)
	defer cancel()
	return in.js.PublishMsg(ctx, msg)
}

// handleError answers every error as a short JSON body and counts it.
func (in *Ingress) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status, message := http.StatusInternalServerError, "internal error"
	var answer *errorAnswer
	var he *echo.HTTPError
	switch {
	case errors.As(err, &answer):
		status, message = answer.status, answer.message
		in.metrics.webhooks.WithLabelValues(answer.outcome).Inc()
	case errors.As(err, &he):
		status, message = he.Code, http.StatusText(he.Code)
		if status == http.StatusRequestEntityTooLarge {
			in.metrics.webhooks.WithLabelValues(outcomeTooLarge).Inc()
		}
	default:
		in.log.Error("webhook handler", "error", err)
	}
	if err := c.JSON(status, map[string]string{"error": message}); err != nil {
		in.log.Debug("write error answer", "error", err)
	}
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
