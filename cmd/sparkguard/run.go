package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"golang.org/x/sync/errgroup"

	"github.com/sparkguard/sparkguard/internal/webhooks"
	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/platform/bus"
	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
	"github.com/sparkguard/sparkguard/services/authz"
	"github.com/sparkguard/sparkguard/services/ingress"
	"github.com/sparkguard/sparkguard/services/responder"
)

// allConfig is the configuration of the all-in-one: the three services' own
// settings (read from the same variables as their binaries) and its own.
type allConfig struct {
	Ingress   ingress.Config
	Authz     authz.Config
	Responder responder.Config
	// DataDir holds the embedded NATS server's JetStream store.
	DataDir string `env:"SPARKGUARD_DATA_DIR" envDefault:"./data"`
}

// Validate reports every problem of the three services at once.
func (c *allConfig) Validate() error {
	return errors.Join(c.Ingress.Validate(), c.Authz.Validate(), c.Responder.Validate())
}

// runAll is `sparkguard run`: the three stages in one process, built with
// the same constructors as their own binaries, sharing one NATS connection,
// one registry and one METRICS_ADDR.
func runAll(ctx context.Context, args []string, lookup config.Lookup, stderr io.Writer) error {
	fs := flag.NewFlagSet("sparkguard run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	publicURL := fs.String("public-url", "", "the ingress's public base URL; when set, the bot's webhook is synced to URL"+ingress.WebhookPath+" at start")
	filter := fs.String("filter", "", "with --public-url: the webhook's filter, such as roomType=direct or mentionedPeople=me")
	subcommand := []string{}
	if len(args) > 0 && args[0] == "healthcheck" {
		subcommand = args[:1]
	} else if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *filter != "" && *publicURL == "" {
		return errors.New("sparkguard run: --filter needs --public-url: it is the filter of the webhook registered there")
	}
	var target string
	if *publicURL != "" {
		target = strings.TrimRight(*publicURL, "/") + ingress.WebhookPath
		if err := webhooks.ValidateTargetURL(target); err != nil {
			return fmt.Errorf("--public-url: %w", err)
		}
	}
	var cfg allConfig
	_, natsURLSet := lookup("NATS_URL")
	if _, fileSet := lookup("NATS_URL_FILE"); fileSet {
		natsURLSet = true
	}
	spec := app.Spec{
		Name:   "sparkguard",
		Config: &cfg,
		BeforeConnect: func(ctx context.Context, common *app.Common, log *slog.Logger) (func(), error) {
			if natsURLSet {
				return func() {}, nil
			}
			srv, err := startNATS(filepath.Join(cfg.DataDir, "jetstream"), -1)
			if err != nil {
				return nil, err
			}
			log.Info("embedded nats server started", "store_dir", filepath.Join(cfg.DataDir, "jetstream"))
			common.Bus.URL = srv.ClientURL()
			return func() { srv.Shutdown(); srv.WaitForShutdown() }, nil
		},
		Run: func(ctx context.Context, rt *app.Runtime) error {
			g, ctx := errgroup.WithContext(ctx)
			g.Go(func() error { return ingress.Service(&cfg.Ingress)(ctx, rt) })
			g.Go(func() error { return authz.Service(&cfg.Authz)(ctx, rt) })
			g.Go(func() error { return responder.Service(&cfg.Responder)(ctx, rt) })
			if *publicURL != "" {
				g.Go(func() error { return syncAtStart(ctx, rt, &cfg, target, *filter) })
			}
			return g.Wait()
		},
	}
	return app.Main(ctx, spec, subcommand, lookup, stderr)
}

// startNATS starts an embedded, JetStream-enabled NATS server on loopback
// with its store in dir; port -1 picks a free one.
func startNATS(dir string, port int) (*server.Server, error) {
	srv, err := server.NewServer(&server.Options{
		ServerName: "sparkguard",
		Host:       "127.0.0.1",
		Port:       port,
		JetStream:  true,
		StoreDir:   dir,
		// Every acknowledged write is on disk before the ack.
		SyncAlways: true,
		NoSigs:     true,
		NoLog:      true,
	})
	if err != nil {
		return nil, fmt.Errorf("embedded nats server: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("embedded nats server: not ready within 30s (store %s)", dir)
	}
	return srv, nil
}

// syncAtStart registers the bot's webhook at target, retrying until Webex
// answers, so that the bot is reachable as soon as it runs.
func syncAtStart(ctx context.Context, rt *app.Runtime, cfg *allConfig, target, filter string) error {
	client, err := cfg.Authz.Webex.NewClient(webex.NewMetrics(rt.Registry))
	if err != nil {
		return err
	}
	spec := webhooks.Spec{TargetURL: target, Filter: filter, Secret: config.List(cfg.Ingress.Secrets.Reveal())[0]}
	// Webex may deliver as soon as the webhook exists: register it only
	// once every stage is ready to take the deliveries.
	for rt.Obs.Ready(ctx) != nil {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
	return bus.Retry(ctx, rt.Log, "sync the webhook", func(ctx context.Context) error {
		res, err := webhooks.Sync(ctx, client, spec, rt.Log)
		if err == nil {
			rt.Log.Info("webhook synced", "action", res.Action, "webhook_id", res.Webhook.ID, "target_url", target)
		}
		return err
	})
}

// parseFlags parses a subcommand's flags and refuses stray arguments. A
// help request has printed the flags by then; it returns errHelpShown.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelpShown
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// errHelpShown ends a subcommand whose help was asked for: run turns it
// into a clean exit.
var errHelpShown = errors.New("help shown")
