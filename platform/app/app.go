// Package app is the start-up every sparkguard binary shares: it loads the
// common and the service's configuration (reporting every problem at once),
// builds the logger and the metrics registry, connects to NATS, serves the
// observability endpoints, and runs the service until its context ends. It
// also answers the `healthcheck` subcommand that container health checks
// call, since the images have no shell.
package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/logging"
	"github.com/sparkguard/sparkguard/platform/obs"
)

// Version is the build's version, stamped with
// -ldflags "-X github.com/sparkguard/sparkguard/platform/app.Version=…".
var Version = "dev"

// Common is the configuration every service reads besides its own.
type Common struct {
	Log logging.Config
	Obs obs.Config
	Bus bus.Config
}

// Validate reports every problem of the common settings.
func (c *Common) Validate() error {
	return errors.Join(c.Log.Validate(), c.Bus.Validate())
}

// Runtime is what a service gets to run with: built once per process, so the
// all-in-one binary's three services share one of each.
type Runtime struct {
	Log      *slog.Logger
	Registry *prometheus.Registry
	Obs      *obs.Server
	NC       *nats.Conn
	JS       jetstream.JetStream
}

// Service is what a binary runs on a Runtime until ctx ends.
type Service func(ctx context.Context, rt *Runtime) error

// Spec describes one binary for Main.
type Spec struct {
	// Name is the binary's name: the NATS client name, the build_info
	// service label and the first word of its log lines.
	Name string
	// Config is a pointer to the service's own config struct (env tags,
	// optional Validate); nil when it has none.
	Config any
	// Run runs the service.
	Run Service
	// BeforeConnect, when set, runs after the configuration is loaded and
	// before NATS is dialled; the all-in-one starts its embedded server
	// here and may change the bus settings. Its cleanup runs at exit.
	BeforeConnect func(ctx context.Context, common *Common, log *slog.Logger) (cleanup func(), err error)
}

// Main runs spec as a binary: args are the command-line arguments after the
// program name, lookup reads the environment.
func Main(ctx context.Context, spec Spec, args []string, lookup config.Lookup, stderr io.Writer) error {
	var common Common
	loadErr := config.Load(lookup, &common)
	if len(args) > 0 {
		switch args[0] {
		case "healthcheck":
			return obs.Healthcheck(ctx, common.Obs.Addr)
		case "version":
			_, err := fmt.Fprintf(stderr, "%s %s\n", spec.Name, Version)
			return err
		case "-h", "-help", "--help", "help":
			_, err := fmt.Fprintf(stderr, usage, spec.Name)
			return err
		default:
			return fmt.Errorf("%s: unknown argument %q (try %s --help)", spec.Name, args[0], spec.Name)
		}
	}
	if spec.Config != nil {
		loadErr = errors.Join(loadErr, config.Load(lookup, spec.Config))
	}
	if loadErr != nil {
		return fmt.Errorf("%s: configuration:\n%w", spec.Name, loadErr)
	}
	log, err := logging.New(stderr, common.Log)
	if err != nil {
		return err
	}
	log = log.With("service", spec.Name)
	if spec.BeforeConnect != nil {
		cleanup, err := spec.BeforeConnect(ctx, &common, log)
		if err != nil {
			return err
		}
		defer cleanup()
	}
	rt, cleanup, err := NewRuntime(spec.Name, common, log)
	if err != nil {
		return err
	}
	defer cleanup()
	// The observability listener opens first, so orchestrators see the
	// process alive (and not yet ready) while the service sets itself up.
	ln, err := net.Listen("tcp", common.Obs.Addr)
	if err != nil {
		return fmt.Errorf("listen on METRICS_ADDR %s: %w", common.Obs.Addr, err)
	}
	log.Info("starting", "version", Version, "metrics_addr", ln.Addr().String(), "nats_url", redactURLs(common.Bus.URL))
	stop := ctx
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return rt.Obs.Serve(ctx, ln) })
	g.Go(func() error { return spec.Run(ctx, rt) })
	err = g.Wait()
	if stop.Err() != nil && errors.Is(err, stop.Err()) {
		// Asked to stop, perhaps while still setting up: a clean exit.
		err = nil
	}
	log.Info("stopped", "error", err)
	return err
}

const usage = `Usage: %[1]s [healthcheck | version | --help]

With no argument, %[1]s runs, configured by environment variables (every
one also as NAME_FILE): see docs/configuration.md. It serves /metrics,
/healthz and /readyz on METRICS_ADDR.

  healthcheck   exit 0 when this service's /healthz on METRICS_ADDR answers
  version       print the version
`

// NewRuntime builds a Runtime: the registry, the observability server (its
// readiness includes the NATS connection) and the NATS connection.
func NewRuntime(name string, common Common, log *slog.Logger) (*Runtime, func(), error) {
	reg := obs.NewRegistry(name, Version)
	nc, err := bus.Connect(common.Bus, "sparkguard-"+name, log)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("jetstream: %w", err)
	}
	srv := obs.NewServer(reg, log)
	srv.AddReadiness("nats", bus.Ready(nc))
	rt := &Runtime{Log: log, Registry: reg, Obs: srv, NC: nc, JS: js}
	// By cleanup time every service has stopped and settled its messages.
	return rt, nc.Close, nil
}

// redactURLs drops credentials from NATS URLs before they are logged.
func redactURLs(urls string) string {
	out := ""
	for i, u := range config.List(urls) {
		if i > 0 {
			out += ","
		}
		out += redactURL(u)
	}
	return out
}

// redactURL hides the user info of a URL.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "[unparsable]"
	}
	if u.User != nil {
		u.User = url.User("[redacted]")
	}
	return u.String()
}
