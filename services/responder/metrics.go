package responder

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkguard/sparkguard/platform/obs"
)

// Outcomes of handling one authorized message, the values of the outcome
// label.
const (
	outcomeSent         = "sent"
	outcomeDuplicate    = "duplicate"
	outcomeRetried      = "retried"
	outcomeDeadLettered = "dead_lettered"
)

var outcomes = []string{outcomeSent, outcomeDuplicate, outcomeRetried, outcomeDeadLettered}

type metrics struct {
	replies *prometheus.CounterVec
	latency prometheus.Histogram
}

// newMetrics registers the responder's metrics with reg, or reuses them when
// they are already there (the all-in-one binary shares one registry).
func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		replies: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkguard_responder_replies_total",
			Help: "Authorized messages handled by the responder, by outcome: sent, duplicate (already answered), retried (handed back for a later try), dead_lettered.",
		}, []string{"outcome"})),
		latency: obs.Register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "sparkguard_pipeline_latency_seconds",
			Help:    "Time from the ingress receiving a webhook to Webex accepting the reply.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900},
		})),
	}
	// Every outcome is exported from the start, so rates work before the
	// first failure.
	for _, o := range outcomes {
		m.replies.WithLabelValues(o)
	}
	return m
}
