// Package obs is the observability side every sparkguard service shares: a
// Prometheus registry with the Go, process and build-info collectors, and the
// HTTP server on METRICS_ADDR with /metrics, /healthz and /readyz.
package obs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Config is the observability part of every service's configuration.
type Config struct {
	Addr string `env:"METRICS_ADDR" envDefault:":9090"`
}

// NewRegistry returns a custom registry holding the Go and process
// collectors and sparkguard_build_info{service,version} = 1.
func NewRegistry(service, version string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "sparkguard_build_info",
		Help: "Always 1; the labels say which service and version runs.",
	}, []string{"service", "version"})
	info.WithLabelValues(service, version).Set(1)
	reg.MustRegister(info)
	return reg
}

// Register registers c with reg, or returns the collector of the same
// description already registered there, so that two services sharing one
// registry (the all-in-one binary) share the metric instead of failing.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A name clash with a different shape is a programming error that a
		// test of the wiring catches at once.
		panic(fmt.Sprintf("register metric: %v", err))
	}
	return c
}

// ReadinessCheck reports whether a part the service depends on is ready; a
// non-nil error says why not.
type ReadinessCheck func(ctx context.Context) error

// Server serves /metrics, /healthz (the process is alive) and /readyz (every
// readiness check passes).
type Server struct {
	gatherer prometheus.Gatherer
	log      *slog.Logger

	mu     sync.Mutex
	checks map[string]ReadinessCheck
}

// NewServer returns a server exposing gatherer's metrics.
func NewServer(gatherer prometheus.Gatherer, log *slog.Logger) *Server {
	return &Server{gatherer: gatherer, log: log, checks: map[string]ReadinessCheck{}}
}

// AddReadiness adds a named check that /readyz runs on every request.
func (s *Server) AddReadiness(name string, check ReadinessCheck) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = check
}

// Handler returns the HTTP handler of the three endpoints.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelError),
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.ready)
	return mux
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.Ready(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintln(w, err)
		return
	}
	_, _ = w.Write([]byte("ready\n"))
}

// Ready runs every readiness check and reports those that fail, one line
// each; nil means ready.
func (s *Server) Ready(ctx context.Context) error {
	s.mu.Lock()
	names := make([]string, 0, len(s.checks))
	for name := range s.checks {
		names = append(names, name)
	}
	checks := maps.Clone(s.checks)
	s.mu.Unlock()
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		if err := checks[name](ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// Serve serves the endpoints on ln until ctx ends, then shuts down
// gracefully.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return ServeHTTP(ctx, ln, NewHTTPServer(s.Handler()))
}

// NewHTTPServer returns an http.Server with timeouts that keep a slow or
// idle client from holding connections open.
func NewHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
	}
}

// ShutdownTimeout bounds how long a server drains in-flight requests once
// its context ends.
const ShutdownTimeout = 10 * time.Second

// ServeHTTP runs srv on ln until ctx ends, then drains in-flight requests
// for at most ShutdownTimeout. A clean shutdown returns nil.
func ServeHTTP(ctx context.Context, ln net.Listener, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Healthcheck asks the /healthz of a service listening on addr (such as
// ":9090") and returns an error unless it answers 200. Binaries expose it as
// a `healthcheck` subcommand, since their distroless images have no shell.
func Healthcheck(ctx context.Context, addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck address %q: %w", addr, err)
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s", resp.Status)
	}
	return nil
}
