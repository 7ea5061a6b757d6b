// Package webhooks implements `sparkguard webhooks`: registering this
// deployment's Webex webhook so that Webex holds exactly one, idempotently
// (sync, also used by `sparkguard run --public-url`), checking it (list,
// usable as a health check) and making webhook secrets (new-secret).
//
// A deployment's webhooks are recognised by name (default "sparkguard");
// the token's other webhooks are listed but never changed.
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/webex"
)

// ErrInactive is what Command returns for `list` when a webhook of this
// deployment is inactive: Webex stopped delivering to it after repeated
// failures, and `sync` reactivates it.
var ErrInactive = errors.New("a webhook of this deployment is inactive")

// secretBytes is the entropy of a new secret.
const secretBytes = 32

const usage = `Usage: sparkguard webhooks <command> [flags]

Manage this deployment's Webex webhook (see docs/webhooks.md).

Commands:
  sync --target-url URL [--filter FILTER] [--name NAME]
              make Webex hold exactly one webhook of this deployment,
              signed with the first secret of WEBEX_WEBHOOK_SECRETS
  list [--name NAME]
              list the token's webhooks, marking this deployment's with *;
              fails when one of them is inactive or there is none
  new-secret  print a fresh random webhook secret

Environment: WEBEX_ACCESS_TOKEN (sync, list), WEBEX_API_URL, WEBEX_API_TIMEOUT,
WEBEX_WEBHOOK_SECRETS (sync).
`

// subcommands names them in errors.
const subcommands = "sync, list or new-secret"

// Command runs `sparkguard webhooks <sub> [flags]`; args are the words
// after "webhooks". It reads webex.Config and WEBEX_WEBHOOK_SECRETS through
// lookup (config.Load), prints to stdout, and returns an error (the caller
// prints it and exits 1). For `list`, an inactive webhook of this
// deployment makes it return ErrInactive after printing. Neither the token
// nor a webhook secret is ever printed (new-secret prints the one it
// makes).
func Command(ctx context.Context, args []string, lookup config.Lookup, stdout io.Writer) error {
	if len(args) == 0 {
		_, _ = io.WriteString(stdout, usage)
		return errors.New("webhooks: missing command: want " + subcommands)
	}
	switch args[0] {
	case "sync":
		return runSync(ctx, args[1:], lookup, stdout)
	case "list":
		return runList(ctx, args[1:], lookup, stdout)
	case "new-secret":
		return runNewSecret(args[1:], stdout)
	case "help", "-h", "-help", "--help":
		_, err := io.WriteString(stdout, usage)
		return err
	}
	_, _ = io.WriteString(stdout, usage)
	return fmt.Errorf("webhooks: unknown command %q: want %s", args[0], subcommands)
}

// cliConfig is what the commands read from the environment.
type cliConfig struct {
	Webex   webex.Config
	Secrets config.Secret `env:"WEBEX_WEBHOOK_SECRETS"`

	needSecrets bool // sync signs with the first secret; list needs none
}

// Validate reports every missing or bad setting at once.
func (c *cliConfig) Validate() error {
	errs := []error{c.Webex.Validate()}
	if c.needSecrets && len(config.List(c.Secrets.Reveal())) == 0 {
		errs = append(errs, errors.New("WEBEX_WEBHOOK_SECRETS: required: the secret Webex signs deliveries with, first of a comma-separated list (make one with `sparkguard webhooks new-secret`)"))
	}
	return errors.Join(errs...)
}

// load reads the configuration and builds the Webex client.
func load(lookup config.Lookup, needSecrets bool) (*cliConfig, *webex.Client, error) {
	cfg := &cliConfig{needSecrets: needSecrets}
	if err := config.Load(lookup, cfg); err != nil {
		return nil, nil, fmt.Errorf("load configuration: %w", err)
	}
	client, err := cfg.Webex.NewClient(nil)
	if err != nil {
		return nil, nil, fmt.Errorf("create Webex client: %w", err)
	}
	return cfg, client, nil
}

// newFlagSet returns the flag set of one command, printing to stdout.
func newFlagSet(name, synopsis string, stdout io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("sparkguard webhooks "+name, flag.ContinueOnError)
	fs.SetOutput(stdout)
	fs.Usage = func() {
		fmt.Fprintf(stdout, "Usage: sparkguard webhooks %s %s\n\nFlags:\n", name, synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args into fs and refuses stray arguments. It reports
// done when -h asked for the usage, which fs has printed.
func parseFlags(fs *flag.FlagSet, args []string) (done bool, err error) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, fmt.Errorf("parse flags: %w", err)
	}
	if fs.NArg() > 0 {
		return false, fmt.Errorf("parse flags: unexpected argument %q", fs.Arg(0))
	}
	return false, nil
}

func runSync(ctx context.Context, args []string, lookup config.Lookup, stdout io.Writer) error {
	fs := newFlagSet("sync", "--target-url URL [--filter FILTER] [--name NAME]", stdout)
	target := fs.String("target-url", "", "where Webex delivers: the ingress's public `URL`, https (http only for localhost), e.g. https://bot.example.com/webhooks/webex")
	filter := fs.String("filter", "", "Webex `filter` for messages: roomId=…, roomType=direct|group, mentionedPeople=me, personId=…, personEmail=…, joined with &")
	name := fs.String("name", DefaultName, "the `name` that marks this deployment's webhook")
	if done, err := parseFlags(fs, args); done || err != nil {
		return wrap("webhooks sync", err)
	}
	if *target == "" {
		return errors.New("webhooks sync: --target-url is required")
	}
	// Bad flags are refused before the configuration is even read.
	if err := ValidateTargetURL(*target); err != nil {
		return fmt.Errorf("webhooks sync: --target-url: %w", err)
	}
	if err := validateFilter(*filter); err != nil {
		return fmt.Errorf("webhooks sync: --filter: %w", err)
	}
	if *name == "" {
		return errors.New("webhooks sync: --name is empty")
	}

	cfg, client, err := load(lookup, true)
	if err != nil {
		return fmt.Errorf("webhooks sync: %w", err)
	}
	spec := Spec{Name: *name, TargetURL: *target, Filter: *filter, Secret: config.List(cfg.Secrets.Reveal())[0]}
	// Only waits on rate limits are worth a line; the summary says the rest.
	log := slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: slog.LevelWarn}))
	res, err := Sync(ctx, client, spec, log)
	if err != nil {
		return fmt.Errorf("webhooks sync: %w", err)
	}
	w := res.Webhook
	fmt.Fprintf(stdout, "webhook %q %s: id %s, %s/%s, target %s, filter %s, status %s\n",
		spec.Name, res.Action, w.ID, w.Resource, w.Event, w.TargetURL, orDash(w.Filter), orDash(w.Status))
	if res.Removed > 0 {
		fmt.Fprintf(stdout, "removed %d duplicate webhook(s) named %q\n", res.Removed, spec.Name)
	}
	return nil
}

func runList(ctx context.Context, args []string, lookup config.Lookup, stdout io.Writer) error {
	fs := newFlagSet("list", "[--name NAME]", stdout)
	name := fs.String("name", DefaultName, "the `name` that marks this deployment's webhooks")
	if done, err := parseFlags(fs, args); done || err != nil {
		return wrap("webhooks list", err)
	}
	_, client, err := load(lookup, false)
	if err != nil {
		return fmt.Errorf("webhooks list: %w", err)
	}
	all, err := withRetry(ctx, slog.New(slog.DiscardHandler), "list webhooks", func(ctx context.Context) ([]webex.Webhook, error) {
		return client.Webhooks(ctx)
	})
	if err != nil {
		return fmt.Errorf("webhooks list: list webhooks: %w", err)
	}

	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "\tID\tNAME\tRESOURCE/EVENT\tFILTER\tTARGET\tSTATUS")
	ours := 0
	var inactive []string
	for _, w := range all {
		mark := ""
		if w.Name == *name {
			mark = "*"
			ours++
			if w.Status != "" && w.Status != webex.WebhookActive {
				inactive = append(inactive, w.ID)
			}
		}
		// The secret is deliberately not among the columns.
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s/%s\t%s\t%s\t%s\n", mark, cell(w.ID), cell(w.Name),
			cell(w.Resource), cell(w.Event), cell(w.Filter), cell(w.TargetURL), cell(w.Status))
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("webhooks list: print: %w", err)
	}
	fmt.Fprintf(stdout, "\n%d webhook(s); * marks this deployment's (name %q): %d, %d inactive\n",
		len(all), *name, ours, len(inactive))

	switch {
	case len(inactive) > 0:
		return fmt.Errorf("webhooks list: %w: %s (run `sparkguard webhooks sync` to reactivate it)",
			ErrInactive, strings.Join(inactive, ", "))
	case ours == 0:
		return fmt.Errorf("webhooks list: no webhook named %q: Webex delivers nothing to this deployment (run `sparkguard webhooks sync`)", *name)
	}
	return nil
}

func runNewSecret(args []string, stdout io.Writer) error {
	fs := newFlagSet("new-secret", "", stdout)
	if done, err := parseFlags(fs, args); done || err != nil {
		return wrap("webhooks new-secret", err)
	}
	secret, err := NewSecret()
	if err != nil {
		return fmt.Errorf("webhooks new-secret: %w", err)
	}
	fmt.Fprintf(stdout, "A new webhook secret (%d random bytes): put it first in WEBEX_WEBHOOK_SECRETS, then run `sparkguard webhooks sync`.\n%s\n",
		secretBytes, secret)
	return nil
}

// NewSecret returns a fresh webhook secret: 32 bytes from crypto/rand as
// unpadded URL-safe base64 (43 characters), safe in environment variables,
// files and comma-separated lists.
func NewSecret() (string, error) {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// wrap prefixes err with the command, keeping nil nil.
func wrap(cmd string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", cmd, err)
}

// cell makes a value Webex returned safe for one table cell: control
// characters (a tab or newline would break the table, an escape sequence
// the terminal) become '?', and empty becomes "-".
func cell(s string) string {
	return orDash(strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
