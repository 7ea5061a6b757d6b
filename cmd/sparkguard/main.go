// Command sparkguard is sparkguard's all-in-one binary and operator CLI:
// `run` starts the three stages in one process (with an embedded NATS
// server unless NATS_URL is set), `demo` shows the whole bot working
// against the built-in Webex emulator, and `webhooks` manages the bot's
// webhook registration.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sparkguard/sparkguard/internal/webhooks"
	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/platform/config"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

const usage = `sparkguard: a secure, scalable back end for Webex bots.

Usage:
  sparkguard run [--public-url URL [--filter FILTER]]
        ingress, authz and responder in one process; with --public-url,
        register the bot's webhook at URL/webhooks/webex at start
  sparkguard demo [--once] [-v] [--addr ADDR] [--sim-addr ADDR]
        the whole bot against a built-in Webex emulator, no account needed
  sparkguard webhooks sync|list|new-secret
        register and check the bot's webhook (sparkguard webhooks --help)
  sparkguard healthcheck   exit 0 when /healthz on METRICS_ADDR answers
  sparkguard version       print the version
  sparkguard help          this text

Configuration comes from the environment: see docs/configuration.md.
`

func run(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) error {
	err := dispatch(ctx, args, lookup, stdout, stderr)
	if errors.Is(err, errHelpShown) {
		return nil
	}
	return err
}

func dispatch(ctx context.Context, args []string, lookup config.Lookup, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		_, _ = io.WriteString(stdout, usage)
		return nil
	}
	switch args[0] {
	case "run":
		return runAll(ctx, args[1:], lookup, stderr)
	case "healthcheck":
		return runAll(ctx, args, lookup, stderr)
	case "version":
		_, err := fmt.Fprintln(stdout, "sparkguard", app.Version)
		return err
	case "demo":
		return demo(ctx, args[1:], stdout, stderr)
	case "webhooks":
		return webhooks.Command(ctx, args[1:], lookup, stdout)
	case "help", "-h", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	return fmt.Errorf("sparkguard: unknown command %q (see sparkguard help)", args[0])
}
