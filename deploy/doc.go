// Package deploy holds no code: its tests check the deployment files next
// to it (docker-compose.yml, the Dockerfiles, nats/nats.conf, prometheus/,
// grafana/) and prove what can be proven without a container engine: the
// NATS permissions with the real services, the Prometheus configuration and
// rules with promtool, and a scaled pipeline of real processes.
package deploy
