package deploy

import (
	"net"
	"net/url"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// forbiddenNetworks: which service must never be on which network, and why
// (docs/deploy.md, "Networks").
var forbiddenNetworks = map[string]map[string]string{
	"ingress": {"monitoring": "the internet-facing ingress must not reach Grafana"},
	"grafana": {"backend": "Grafana needs only Prometheus, never NATS or a stage"},
	"nats":    {"monitoring": "NATS serves only the pipeline and the exporter"},
}

// TestComposeNetworks checks the split into "backend" and "monitoring":
// every service says its networks (none falls back to compose's default
// network), the forbidden memberships above, and every connection the
// system needs shares a network: each stage to NATS, the exporter to NATS,
// Prometheus to every scrape target of prometheus.yml (DNS discovery
// answers only on a shared network), Grafana to its data source, and the
// emulator to the services it talks to.
func TestComposeNetworks(t *testing.T) {
	var prom struct {
		ScrapeConfigs []struct {
			JobName       string                       `yaml:"job_name"`
			DNSSDConfigs  []struct{ Names []string }   `yaml:"dns_sd_configs"`
			StaticConfigs []struct{ Targets []string } `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, "prometheus/prometheus.yml", &prom)
	var scraped []string
	for _, sc := range prom.ScrapeConfigs {
		for _, d := range sc.DNSSDConfigs {
			scraped = append(scraped, d.Names...)
		}
		for _, s := range sc.StaticConfigs {
			for _, target := range s.Targets {
				if host, _, err := net.SplitHostPort(target); err == nil && host != "localhost" {
					scraped = append(scraped, host)
				}
			}
		}
	}
	if !slices.Contains(scraped, "ingress") || !slices.Contains(scraped, "nats-exporter") {
		t.Fatalf("scrape targets %v: want the stages and nats-exporter", scraped)
	}

	var ds struct {
		Datasources []struct{ URL string } `yaml:"datasources"`
	}
	readYAML(t, "grafana/provisioning/datasources/prometheus.yml", &ds)
	var grafanaSources []string
	for _, d := range ds.Datasources {
		u, err := url.Parse(d.URL)
		if err != nil {
			t.Fatal(err)
		}
		grafanaSources = append(grafanaSources, u.Hostname())
	}

	for _, envFile := range []string{".env.example", ".env.sim"} {
		t.Run(envFile, func(t *testing.T) {
			p := loadCompose(t, envFile)
			for _, want := range []string{"backend", "monitoring"} {
				if _, ok := p.Networks[want]; !ok {
					t.Errorf("no network %q", want)
				}
			}
			for name, svc := range p.Services {
				if len(svc.Networks) == 0 {
					t.Errorf("%s: no networks: every service must name its own", name)
				}
				if _, ok := svc.Networks["default"]; ok {
					t.Errorf("%s: on the default network", name)
				}
				for network, why := range forbiddenNetworks[name] {
					if _, ok := svc.Networks[network]; ok {
						t.Errorf("%s is on %q: %s", name, network, why)
					}
				}
			}
			need := map[string][]string{ // client: servers it must reach
				"ingress":       {"nats"},
				"authz":         {"nats"},
				"responder":     {"nats"},
				"nats-exporter": {"nats"},
				"prometheus":    scraped,
				"grafana":       grafanaSources,
			}
			if _, ok := p.Services["webexsim"]; ok {
				need["webexsim"] = []string{"ingress"} // webhook deliveries
				need["authz"] = append(need["authz"], "webexsim")
				need["responder"] = append(need["responder"], "webexsim")
			}
			for client, servers := range need {
				for _, server := range servers {
					if !shareNetwork(p.Services[client], p.Services[server]) {
						t.Errorf("%s cannot reach %s: no shared network (%v, %v)", client, server,
							networkNames(p.Services[client]), networkNames(p.Services[server]))
					}
				}
			}
		})
	}
}

func shareNetwork(a, b types.ServiceConfig) bool {
	for n := range a.Networks {
		if _, ok := b.Networks[n]; ok {
			return true
		}
	}
	return false
}

func networkNames(svc types.ServiceConfig) []string {
	var names []string
	for n := range svc.Networks {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
