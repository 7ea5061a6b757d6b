package authz

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sparkguard/sparkguard/platform/obs"
)

type metrics struct {
	decisions *prometheus.CounterVec
	lookups   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		decisions: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkguard_authz_decisions_total",
			Help: "Authorization decisions by decision (allow, deny, ignore) and reason.",
		}, []string{"decision", "reason"})),
		lookups: obs.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sparkguard_authz_person_lookups_total",
			Help: "Person look-ups by where the answer came from: memory, shared (the bucket) or api.",
		}, []string{"source"})),
	}
	for _, d := range []Decision{allowEmail, allowDomain, allowOrg, allowAll, denyNot, denyRoom, ignoreSelf, ignoreBot, ignoreOther} {
		m.decisions.WithLabelValues(d.Decision, d.Reason)
	}
	for _, s := range []string{sourceMemory, sourceShared, sourceAPI} {
		m.lookups.WithLabelValues(s)
	}
	return m
}

func (m *metrics) decided(d Decision) {
	m.decisions.WithLabelValues(d.Decision, d.Reason).Inc()
}
