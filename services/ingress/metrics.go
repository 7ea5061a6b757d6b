package ingress

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkguard/sparkguard/platform/obs"
)

// Outcomes of a webhook request, the values of the outcome label.
const (
	outcomeAccepted         = "accepted"
	outcomeDuplicate        = "duplicate"
	outcomeBadSignature     = "bad_signature"
	outcomeMissingSignature = "missing_signature"
	outcomeMalformed        = "malformed"
	outcomeTooLarge         = "too_large"
	outcomeUnsupportedMedia = "unsupported_media_type"
	outcomePublishFailed    = "publish_failed"
)

var outcomes = []string{
	outcomeAccepted, outcomeDuplicate, outcomeBadSignature, outcomeMissingSignature,
	outcomeMalformed, outcomeTooLarge, outcomeUnsupportedMedia, outcomePublishFailed,
}

type metrics struct {
	webhooks *prometheus.CounterVec
	duration prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		webhooks: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkguard_ingress_webhooks_total",
			Help: "Webhook requests by outcome.",
		}, []string{"outcome"})),
		duration: obs.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sparkguard_ingress_request_duration_seconds",
			Help:    "Time from receiving a webhook request to answering it.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		})),
	}
	// Every outcome is exported from the start, so rates work before the
	// first failure.
	for _, o := range outcomes {
		m.webhooks.WithLabelValues(o)
	}
	return m
}
