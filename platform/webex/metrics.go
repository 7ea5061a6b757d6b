package webex

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkguard/sparkguard/platform/obs"
)

// codeError is the "code" label of a call that got no complete HTTP answer:
// a network error, a timeout, or a body cut short.
const codeError = "error"

// Metrics are the Webex API metrics, shared by every service that calls
// Webex: one count per call by operation and answer, and the calls'
// durations. A nil *Metrics records nothing.
type Metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewMetrics registers the Webex API metrics with reg (never the global
// registry) and returns them. Calling it again with the same registerer, as
// the all-in-one binary does for each service it runs, returns metrics that
// share the collectors registered first. A nil reg gives metrics that are
// counted but exported nowhere.
//
// It panics only when reg already holds different metrics under these
// names, a programming error that any start-up test reveals.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkguard_webex_api_requests_total",
			Help: "Webex REST API calls, by operation and HTTP status code (\"error\" when no complete answer came).",
		}, []string{"operation", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sparkguard_webex_api_request_duration_seconds",
			Help:    "Duration of Webex REST API calls, from sending the request to reading the whole answer.",
			Buckets: prometheus.DefBuckets,
		}, []string{"operation"}),
	}
	if reg == nil {
		return m
	}
	m.requests = obs.Register(reg, m.requests)
	m.duration = obs.Register(reg, m.duration)
	return m
}

// observe records one call; status 0 means no complete HTTP answer.
func (m *Metrics) observe(op string, status int, took time.Duration) {
	if m == nil {
		return
	}
	code := codeError
	if status != 0 {
		code = strconv.Itoa(status)
	}
	m.requests.WithLabelValues(op, code).Inc()
	m.duration.WithLabelValues(op).Observe(took.Seconds())
}
