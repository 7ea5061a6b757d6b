// Command webexsim serves the Webex API emulator over HTTP: the Webex API
// under /v1 for the bot, and an admin API under /admin for the demo and
// load tests. "webexsim healthcheck" probes a running one.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

const (
	defaultAddr     = "127.0.0.1:8900"
	shutdownTimeout = 10 * time.Second
)

// ops are the operation names -fault and -latency accept.
var ops = []string{
	webexsim.OpGetMe, webexsim.OpGetPerson, webexsim.OpGetMessage, webexsim.OpListMessages,
	webexsim.OpCreateMessage, webexsim.OpListWebhooks, webexsim.OpGetWebhook,
	webexsim.OpCreateWebhook, webexsim.OpUpdateWebhook, webexsim.OpDeleteWebhook,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "webexsim:", err)
		os.Exit(1)
	}
}

// run serves the emulator until ctx ends (or runs the healthcheck
// subcommand). It prints the API's base URL, the bot and the seeded people
// to stdout; with -addr 127.0.0.1:0 the printed URL has the chosen port.
func run(ctx context.Context, args []string, getenv func(string) string, stdout io.Writer) error {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(ctx, args[1:], stdout)
	}
	cfg, err := parseFlags(args, getenv, stdout)
	if err != nil {
		return err
	}

	ln, err := net.Listen("tcp", cfg.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.addr, err)
	}
	logLevel := slog.LevelInfo
	if cfg.verbose {
		logLevel = slog.LevelDebug
	}
	sim := webexsim.New(webexsim.Options{
		Token:                          cfg.token,
		Bot:                            webex.Person{DisplayName: cfg.botName, Emails: nonEmpty(cfg.botEmail)},
		DeliveryFailuresBeforeInactive: cfg.failAfter,
		Logger:                         slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: logLevel})),
	})
	defer sim.Close()

	base := "http://" + ln.Addr().String()
	bot := sim.Bot()
	fmt.Fprintf(stdout, "webexsim listening on %s/v1 (admin API %s/admin, token %s)\n", base, base, cfg.tokenSource)
	fmt.Fprintf(stdout, "bot %s <%s> id=%s orgId=%s\n", bot.DisplayName, bot.Emails[0], bot.ID, bot.OrgID)
	for _, p := range cfg.people {
		p = sim.AddPerson(p)
		fmt.Fprintf(stdout, "person %s id=%s orgId=%s\n", p.Emails[0], p.ID, p.OrgID)
	}
	for _, op := range slices.Sorted(maps.Keys(cfg.faults)) {
		f := cfg.faults[op]
		sim.SetFault(op, f)
		fmt.Fprintf(stdout, "fault %s status=%d retryAfter=%d latency=%s\n", op, f.Status, f.RetryAfter, f.Latency)
	}

	srv := &http.Server{
		Handler:           sim.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      5 * time.Minute, // room for injected latency
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	fmt.Fprintln(stdout, "webexsim stopped")
	return nil
}

// config is what the flags say.
type config struct {
	addr        string
	token       string
	tokenSource string
	botName     string
	botEmail    string
	people      []webex.Person
	faults      map[string]webexsim.Fault
	failAfter   int
	verbose     bool
}

// parseFlags reads args; the token defaults to WEBEX_ACCESS_TOKEN.
func parseFlags(args []string, getenv func(string) string, out io.Writer) (config, error) {
	cfg := config{faults: make(map[string]webexsim.Fault)}
	fs := flag.NewFlagSet("webexsim", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&cfg.addr, "addr", defaultAddr, "listen address (host:port; port 0 picks one)")
	fs.StringVar(&cfg.token, "token", "", `the bot's bearer token (default $WEBEX_ACCESS_TOKEN or the file $WEBEX_ACCESS_TOKEN_FILE names, else "`+webexsim.DefaultToken+`")`)
	fs.StringVar(&cfg.botName, "bot-name", webexsim.DefaultBotName, "the bot's display name")
	fs.StringVar(&cfg.botEmail, "bot-email", webexsim.DefaultBotEmail, "the bot's email")
	fs.IntVar(&cfg.failAfter, "fail-after", webexsim.DefaultDeliveryFailuresBeforeInactive, "consecutive failed deliveries before a webhook goes inactive")
	fs.BoolVar(&cfg.verbose, "v", false, "log every delivery")
	fs.Func("person", "seed a person, `email[:orgId]` (repeatable)", func(v string) error {
		email, org, _ := strings.Cut(v, ":")
		if !strings.Contains(email, "@") {
			return fmt.Errorf("%q is not an email", email)
		}
		cfg.people = append(cfg.people, webex.Person{Emails: []string{email}, OrgID: org})
		return nil
	})
	fs.Func("fault", "answer every call of an operation with an error, `op=status[:retryAfter]` (repeatable)", func(v string) error {
		op, spec, ok := strings.Cut(v, "=")
		if err := checkOp(op, ok); err != nil {
			return err
		}
		status, retry, _ := strings.Cut(spec, ":")
		f := cfg.faults[op]
		var err error
		if f.Status, err = strconv.Atoi(status); err != nil || f.Status < 400 || f.Status > 599 {
			return fmt.Errorf("status %q is not a 4xx or 5xx code", status)
		}
		if retry != "" {
			if f.RetryAfter, err = strconv.Atoi(retry); err != nil || f.RetryAfter < 0 {
				return fmt.Errorf("retryAfter %q is not a number of seconds", retry)
			}
		}
		cfg.faults[op] = f
		return nil
	})
	fs.Func("latency", "delay every call of an operation, `op=duration` (repeatable)", func(v string) error {
		op, d, ok := strings.Cut(v, "=")
		if err := checkOp(op, ok); err != nil {
			return err
		}
		f := cfg.faults[op]
		var err error
		if f.Latency, err = time.ParseDuration(d); err != nil || f.Latency < 0 {
			return fmt.Errorf("latency %q is not a duration", d)
		}
		cfg.faults[op] = f
		return nil
	})
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	switch {
	case cfg.token != "":
		cfg.tokenSource = "from -token"
	case getenv("WEBEX_ACCESS_TOKEN") != "":
		cfg.token, cfg.tokenSource = getenv("WEBEX_ACCESS_TOKEN"), "from WEBEX_ACCESS_TOKEN"
	case getenv("WEBEX_ACCESS_TOKEN_FILE") != "":
		b, err := os.ReadFile(getenv("WEBEX_ACCESS_TOKEN_FILE"))
		if err != nil {
			return config{}, fmt.Errorf("WEBEX_ACCESS_TOKEN_FILE: %w", err)
		}
		cfg.token, cfg.tokenSource = strings.TrimRight(string(b), "\r\n"), "from WEBEX_ACCESS_TOKEN_FILE"
	default:
		cfg.token, cfg.tokenSource = webexsim.DefaultToken, fmt.Sprintf("%q (default)", webexsim.DefaultToken)
	}
	if cfg.failAfter < 1 {
		return config{}, fmt.Errorf("-fail-after must be at least 1, not %d", cfg.failAfter)
	}
	return cfg, nil
}

func checkOp(op string, ok bool) error {
	if !ok || !slices.Contains(ops, op) {
		return fmt.Errorf("operation %q is not one of %s", op, strings.Join(ops, ", "))
	}
	return nil
}

// healthcheck exits 0 when the emulator at -addr answers its stats: for
// containers without a shell.
func healthcheck(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("webexsim healthcheck", flag.ContinueOnError)
	fs.SetOutput(out)
	addr := fs.String("addr", defaultAddr, "the emulator's address (host:port)")
	timeout := fs.Duration("timeout", 2*time.Second, "give up after")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+*addr+"/admin/stats", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: %s answered %s", *addr, resp.Status)
	}
	return nil
}

func nonEmpty(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}
