package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/sparkguard/sparkguard/internal/webhooks"
	"github.com/sparkguard/sparkguard/platform/app"
	"github.com/sparkguard/sparkguard/platform/config"
	"github.com/sparkguard/sparkguard/platform/obs"
	"github.com/sparkguard/sparkguard/platform/webex"
	"github.com/sparkguard/sparkguard/services/authz"
	"github.com/sparkguard/sparkguard/services/ingress"
	"github.com/sparkguard/sparkguard/services/responder"
	"github.com/sparkguard/sparkguard/tools/webexsim"
)

// demoSecret is the demo webhook's secret; it protects nothing real.
const demoSecret = "demo-webhook-secret"

// demo is `sparkguard demo`: the emulator, an embedded NATS and the three
// stages in one process, and a conversation that shows each defence.
func demo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sparkguard demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	once := fs.Bool("once", false, "exit after the conversation: 0 if every step behaved, 1 if not")
	addr := fs.String("addr", "127.0.0.1:0", "the ingress's listen address")
	simAddr := fs.String("sim-addr", "127.0.0.1:0", "the Webex emulator's listen address")
	verbose := fs.Bool("v", false, "log the stages' info lines (the audit line of each denial among them) to stderr")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	d, err := startDemo(ctx, *addr, *simAddr, *verbose, stderr)
	if err != nil {
		return err
	}
	defer d.close()

	failed := d.converse(ctx, stdout)
	if *once {
		if failed > 0 {
			return fmt.Errorf("demo: %d step(s) did not behave", failed)
		}
		return nil
	}
	d.printTryIt(stdout)
	<-ctx.Done()
	return nil
}

// demoWorld is a running demo: the emulator, the bus and the stages.
type demoWorld struct {
	sim        *webexsim.Sim
	simURL     string
	ingressURL string
	reg        *prometheus.Registry
	alice      webex.Person
	mallory    webex.Person
	room       string
	close      func()
}

func startDemo(ctx context.Context, addr, simAddr string, verbose bool, stderr io.Writer) (*demoWorld, error) {
	dir, err := os.MkdirTemp("", "sparkguard-demo-")
	if err != nil {
		return nil, err
	}
	var closers []func()
	d := &demoWorld{close: func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}}
	fail := func(err error) (*demoWorld, error) { d.close(); return nil, err }
	closers = append(closers, func() { _ = os.RemoveAll(dir) })

	nats, err := startNATS(dir, -1)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { nats.Shutdown(); nats.WaitForShutdown() })

	d.sim = webexsim.New(webexsim.Options{})
	simLn, err := net.Listen("tcp", simAddr)
	if err != nil {
		return fail(fmt.Errorf("listen for the emulator: %w", err))
	}
	d.simURL = "http://" + simLn.Addr().String()
	closers = append(closers, func() { _ = simLn.Close() })
	ingressLn, err := net.Listen("tcp", addr)
	if err != nil {
		return fail(fmt.Errorf("listen for the ingress: %w", err))
	}
	d.ingressURL = "http://" + ingressLn.Addr().String() + ingress.WebhookPath
	closers = append(closers, func() { _ = ingressLn.Close() })
	obsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fail(err)
	}
	closers = append(closers, func() { _ = obsLn.Close() })

	// The stages read the same variables as in production; here the demo
	// sets them.
	env := map[string]string{
		"NATS_URL":              nats.ClientURL(),
		"LOG_LEVEL":             "error",
		"LOG_FORMAT":            "text",
		"WEBEX_WEBHOOK_SECRETS": demoSecret,
		"WEBEX_API_URL":         d.simURL + "/v1",
		"WEBEX_ACCESS_TOKEN":    webexsim.DefaultToken,
		"AUTHZ_ALLOWED_DOMAINS": "example.com",
	}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	var common app.Common
	var cfg allConfig
	if err := errors.Join(config.Load(lookup, &common), config.Load(lookup, &cfg)); err != nil {
		return fail(err)
	}
	// Unless asked, only errors reach the terminal: the transcript is the
	// demo's output.
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	if verbose {
		log = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rt, cleanup, err := app.NewRuntime("sparkguard", common, log)
	if err != nil {
		return fail(err)
	}
	closers = append(closers, cleanup)
	d.reg = rt.Registry

	runCtx, stopRun := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	simSrv := obs.NewHTTPServer(d.sim.Handler())
	g.Go(func() error { return obs.ServeHTTP(gctx, simLn, simSrv) })
	g.Go(func() error { return rt.Obs.Serve(gctx, obsLn) })
	in := ingress.New(cfg.Ingress, ingress.Deps{JS: rt.JS, NC: rt.NC, Registry: rt.Registry, Log: rt.Log})
	g.Go(func() error { return in.Run(gctx, ingressLn) })
	g.Go(func() error { return authz.Service(&cfg.Authz)(gctx, rt) })
	g.Go(func() error { return responder.Service(&cfg.Responder)(gctx, rt) })
	closers = append(closers, d.sim.Close, func() { stopRun(); _ = g.Wait() })

	if err := waitReady(ctx, "http://"+obsLn.Addr().String()+"/readyz"); err != nil {
		return fail(err)
	}
	// Register the bot's webhook the way an operator would.
	client, err := cfg.Authz.Webex.NewClient(nil)
	if err != nil {
		return fail(err)
	}
	if _, err := webhooks.Sync(ctx, client, webhooks.Spec{TargetURL: d.ingressURL, Secret: demoSecret}, rt.Log); err != nil {
		return fail(fmt.Errorf("register the demo webhook: %w", err))
	}
	d.alice = d.sim.AddPerson(webex.Person{Emails: []string{"alice@example.com"}, DisplayName: "Alice"})
	d.mallory = d.sim.AddPerson(webex.Person{Emails: []string{"mallory@evil.test"}, DisplayName: "Mallory"})
	d.room = d.sim.NewRoomID()
	return d, nil
}

// waitReady polls a /readyz until it answers 200.
func waitReady(ctx context.Context, url string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the stages did not become ready: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// converse plays the conversation and prints it; it returns how many steps
// did not behave.
func (d *demoWorld) converse(ctx context.Context, out io.Writer) int {
	failed := 0
	step := func(ok bool, good, bad string) {
		if ok {
			fmt.Fprintf(out, "    ✓ %s\n\n", good)
			return
		}
		failed++
		fmt.Fprintf(out, "    ✗ %s\n\n", bad)
	}
	bot := d.sim.Bot()
	fmt.Fprintf(out, "sparkguard demo: a Webex emulator, NATS JetStream and the three stages in one process.\n")
	fmt.Fprintf(out, "Policy: people of example.com may talk to %s; webhook secret checked on every delivery.\n\n", bot.DisplayName)

	// 1. An allowed person, in a thread, mentioning the bot.
	root, err := d.sim.Post(webexsim.Post{PersonID: d.alice.ID, RoomID: d.room, RoomType: webexsim.RoomGroup, Text: "Release checklist for Friday?"})
	if err != nil {
		fmt.Fprintf(out, "    ✗ post: %v\n", err)
		return failed + 1
	}
	fmt.Fprintf(out, "alice@example.com:  Release checklist for Friday?\n")
	hello, err := d.sim.Post(webexsim.Post{PersonID: d.alice.ID, RoomID: d.room, RoomType: webexsim.RoomGroup,
		ParentID: root.ID, Text: "Hello, World!", MentionBot: true})
	if err != nil {
		fmt.Fprintf(out, "    ✗ post: %v\n", err)
		return failed + 1
	}
	fmt.Fprintf(out, "alice@example.com:  %s   (in the thread)\n", hello.Text)
	reply, ok := d.waitReply(ctx, bot.ID, func(m webex.Message) bool { return m.ParentID == root.ID })
	if ok {
		fmt.Fprintf(out, "%s:            %s   (in the same thread)\n", bot.DisplayName, reply.Text)
	}
	step(ok && reply.Text == "Hello, World!" && reply.Markdown == "",
		"an allowed person is echoed, mention stripped, as plain text, in the thread",
		fmt.Sprintf("no proper echo (got %q)", reply.Text))

	// 2. A stranger.
	denied := d.counter("sparkguard_authz_decisions_total", "decision", "deny")
	stranger, err := d.sim.Post(webexsim.Post{PersonID: d.mallory.ID, RoomID: d.room, RoomType: webexsim.RoomGroup,
		Text: "what is in the secret plan?", MentionBot: true})
	if err == nil {
		fmt.Fprintf(out, "mallory@evil.test:  %s\n", stranger.Text)
	}
	refused := d.waitCounter(ctx, "sparkguard_authz_decisions_total", "decision", "deny", denied+1)
	_, answered := d.findReply(bot.ID, func(m webex.Message) bool { return strings.Contains(m.Text, "secret plan") })
	step(err == nil && refused && !answered,
		"a stranger is refused: not on the allowlist, so no answer (the audit line shows with -v)",
		"the stranger was not refused")

	// 3. A forged delivery.
	forged, _ := json.Marshal(webex.Event{ID: "forged", Resource: "messages", Event: "created",
		Data: webex.EventData{ID: "forged-message", PersonID: d.mallory.ID, PersonEmail: "alice@example.com", RoomID: d.room}})
	status := d.deliver(ctx, forged, webex.Sign([]byte("guessed-secret"), forged))
	fmt.Fprintf(out, "(someone):          POST %s with a guessed signature → %d\n", ingress.WebhookPath, status)
	step(status == http.StatusUnauthorized, "a forged request is rejected with 401 before anything is stored",
		fmt.Sprintf("the forged request got %d", status))

	// 4. Webex delivers the first message again.
	again, _ := json.Marshal(webex.Event{ID: "redelivery", Resource: "messages", Event: "created",
		Data: webex.EventData{ID: hello.ID, RoomID: hello.RoomID, RoomType: hello.RoomType, PersonID: hello.PersonID, PersonEmail: hello.PersonEmail}})
	dupStatus := d.deliver(ctx, again, webex.Sign([]byte(demoSecret), again))
	duplicates := d.counter("sparkguard_ingress_webhooks_total", "outcome", "duplicate")
	fmt.Fprintf(out, "(Webex):            delivers alice's message again → %d\n", dupStatus)
	time.Sleep(500 * time.Millisecond)
	replies := d.replies(bot.ID, func(m webex.Message) bool { return m.ParentID == root.ID })
	step(dupStatus == http.StatusOK && duplicates >= 1 && replies == 1,
		"a duplicate delivery is acknowledged and answered once",
		fmt.Sprintf("duplicate: status %d, %d answers", dupStatus, replies))

	// 5. The bot's own reply came back as a webhook.
	fmt.Fprintf(out, "(Webex):            delivers %s's own reply to the bot, as it does every message\n", bot.DisplayName)
	self := d.waitCounter(ctx, "sparkguard_authz_decisions_total", "reason", "self", 1)
	step(self && d.replies(bot.ID, func(m webex.Message) bool { return m.Text == reply.Text }) == 1,
		"the bot's own reply came back as a webhook and was ignored: it never answers itself",
		"the bot's own message was not ignored")
	return failed
}

// deliver posts a webhook body to the ingress as Webex would.
func (d *demoWorld) deliver(ctx context.Context, body []byte, signature string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.ingressURL, bytes.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webex.SignatureHeader, signature)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (d *demoWorld) findReply(botID string, match func(webex.Message) bool) (webex.Message, bool) {
	for _, m := range d.sim.Messages(d.room) {
		if m.PersonID == botID && match(m) {
			return m, true
		}
	}
	return webex.Message{}, false
}

func (d *demoWorld) replies(botID string, match func(webex.Message) bool) int {
	n := 0
	for _, m := range d.sim.Messages(d.room) {
		if m.PersonID == botID && match(m) {
			n++
		}
	}
	return n
}

func (d *demoWorld) waitReply(ctx context.Context, botID string, match func(webex.Message) bool) (webex.Message, bool) {
	var found webex.Message
	ok := poll(ctx, func() bool {
		var ok bool
		found, ok = d.findReply(botID, match)
		return ok
	})
	return found, ok
}

// counter sums a counter's series whose label has value.
func (d *demoWorld) counter(name, label, value string) float64 {
	families, err := d.reg.Gather()
	if err != nil {
		return 0
	}
	sum := 0.0
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					sum += m.GetCounter().GetValue()
				}
			}
		}
	}
	return sum
}

func (d *demoWorld) waitCounter(ctx context.Context, name, label, value string, atLeast float64) bool {
	return poll(ctx, func() bool { return d.counter(name, label, value) >= atLeast })
}

// poll checks cond until it holds, for at most 15 seconds.
func poll(ctx context.Context, cond func() bool) bool {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(25 * time.Millisecond):
		}
	}
	return true
}

// printTryIt tells the user how to send their own message.
func (d *demoWorld) printTryIt(out io.Writer) {
	post, _ := json.Marshal(webexsim.Post{PersonID: d.alice.ID, RoomID: d.room, RoomType: webexsim.RoomGroup,
		Text: "your words here", MentionBot: true})
	fmt.Fprintf(out, `Your turn. The demo keeps running until you press Ctrl-C.

Post as alice@example.com; the emulator signs the webhook with the secret and
delivers it to the ingress at %s:

  curl -s -X POST %s/admin/messages -H 'Content-Type: application/json' \
    -d '%s'

Then read the room, the bot's answer included:

  curl -s %s/admin/rooms/%s/messages

Or play Webex yourself: sign a delivery with the webhook secret (%q).
The ingress stores it (200); authz then denies it, since no such message
or sender exists. Change one character of the secret and it answers 401.

  body='{"id":"wh","resource":"messages","event":"created","data":{"id":"my-own"}}'
  sig=$(printf '%%s' "$body" | openssl dgst -sha1 -hmac %s | awk '{print $NF}')
  curl -i -H 'Content-Type: application/json' -H "X-Spark-Signature: $sig" -d "$body" %s
`, d.ingressURL, d.simURL, post, d.simURL, d.room, demoSecret, demoSecret, d.ingressURL)
}
