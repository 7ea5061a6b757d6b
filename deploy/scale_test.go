package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// TestScaledPipeline runs the deployment's shape as real processes: the
// binaries built as the images build them, nats-server with nats.conf, one
// ingress, two authz, three responders (each with its own NATS user,
// secrets read from files), the emulator, and a real Prometheus scraping the
// six replicas. Every message is answered exactly once, every responder
// does a share, and Prometheus counts every reply.
func TestScaledPipeline(t *testing.T) {
	if testing.Short() {
		t.Log("-short: the scaled pipeline runs in the full test run only")
		return
	}
	promBin := lookTool(t, "prometheus")
	begin := time.Now()
	bin := buildBinaries(t)
	t.Logf("built in %s", time.Since(begin).Round(time.Millisecond))
	srv, nlog := startConfiguredNATS(t)
	secrets := t.TempDir()
	secretFile := func(name, value string) string {
		path := filepath.Join(secrets, name)
		if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}

	sim := startProcess(t, "webexsim", filepath.Join(bin, "webexsim"),
		[]string{"-addr", "127.0.0.1:0", "-person", "alice@example.com"}, nil)
	api := sim.waitForLine(t, regexp.MustCompile(`listening on (http://\S+)/v1`))
	botID := sim.waitForLine(t, regexp.MustCompile(`^bot .* id=(\S+)`))

	common := func(user, metricsAddr string) []string {
		return []string{
			"NATS_URL=" + srv.ClientURL(),
			"NATS_USER=" + user,
			"NATS_PASSWORD_FILE=" + secretFile("nats_"+user+"_password", passwords[user]),
			"METRICS_ADDR=" + metricsAddr,
			"LOG_FORMAT=text",
		}
	}
	webexEnv := []string{
		"WEBEX_API_URL=" + api + "/v1",
		"WEBEX_ACCESS_TOKEN_FILE=" + secretFile("webex_access_token", "sim-token"),
	}
	var replicas []replica
	start := func(job string, i int, extra ...string) replica {
		addr := freeAddr(t)
		env := append(common(job, addr), extra...)
		r := replica{job: job, metricsAddr: addr,
			p: startProcess(t, fmt.Sprintf("%s-%d", job, i), filepath.Join(bin, job), nil, env)}
		replicas = append(replicas, r)
		return r
	}
	ingressAddr := freeAddr(t)
	start("ingress", 0, "INGRESS_ADDR="+ingressAddr,
		"WEBEX_WEBHOOK_SECRETS_FILE="+secretFile("webex_webhook_secrets", testWebhookSecret))
	for i := range 2 {
		start("authz", i, append(webexEnv, "AUTHZ_ALLOWED_DOMAINS=example.com", "AUTHZ_CONCURRENCY=4")...)
	}
	var responders []replica
	for i := range 3 {
		responders = append(responders, start("responder", i, append(webexEnv, "RESPONDER_CONCURRENCY=4")...))
	}
	// The binaries' own health check, as the images run it, then readiness
	// (connected, consumer running).
	for _, r := range replicas {
		// Generous bounds: under a loaded CI machine six race-built
		// processes may take a while to come up.
		waitFor(t, 60*time.Second, r.p.name+" healthy", func() bool {
			cmd := exec.Command(r.p.path, "healthcheck")
			cmd.Env = []string{"METRICS_ADDR=" + r.metricsAddr}
			return cmd.Run() == nil
		})
		waitFor(t, 60*time.Second, r.p.name+" ready", func() bool {
			return httpStatus("http://"+r.metricsAddr+"/readyz") == http.StatusOK
		})
	}
	t.Logf("replicas ready after %s", time.Since(begin).Round(time.Millisecond))
	prom := startPrometheus(t, promBin, replicas)
	t.Logf("prometheus ready after %s", time.Since(begin).Round(time.Millisecond))

	const n = 30
	rooms := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		msg := simPost(t, api, fmt.Sprintf("message %d", i))
		rooms[i] = msg.RoomID
		wg.Go(func() {
			if code, err := postSignedWebhook("http://"+ingressAddr+"/webhooks/webex", msg, botID); code != http.StatusOK {
				t.Errorf("ingress answered %d (%v), want 200", code, err)
			}
		})
	}
	wg.Wait()

	// Exactly once: each room holds the message and one reply, and still
	// does a moment later.
	waitFor(t, 30*time.Second, "a reply in every room", func() bool {
		for _, room := range rooms {
			if len(simRoom(t, api, room)) < 2 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	for i, room := range rooms {
		msgs := simRoom(t, api, room)
		if len(msgs) != 2 || msgs[1].PersonID != botID || msgs[1].Text != fmt.Sprintf("message %d", i) {
			t.Errorf("room %d: %d messages %+v, want the message and one echo", i, len(msgs), msgs)
		}
	}

	t.Logf("answered after %s", time.Since(begin).Round(time.Millisecond))
	total := 0
	for _, r := range responders {
		sent := scrapeCounter(t, "http://"+r.metricsAddr+"/metrics", `sparkguard_responder_replies_total{outcome="sent"}`)
		t.Logf("%s sent %d", r.p.name, sent)
		if sent == 0 {
			t.Errorf("%s sent no reply: the replicas do not share the work", r.p.name)
		}
		total += sent
	}
	if total != n {
		t.Errorf("responders sent %d replies in all, want %d", total, n)
	}
	waitFor(t, 30*time.Second, "Prometheus counting every reply", func() bool {
		return prom.query(t, `sum(sparkguard_responder_replies_total{outcome="sent"})`) == n &&
			prom.query(t, `count(up{job=~"ingress|authz|responder"} == 1)`) == 6
	})
	t.Logf("counted by Prometheus after %s", time.Since(begin).Round(time.Millisecond))
	if v := nlog.violations(); len(v) > 0 {
		t.Errorf("nats-server logged permission violations:\n%s", strings.Join(v, "\n"))
	}
}

// replica is one running replica of a stage.
type replica struct {
	job, metricsAddr string
	p                *process
}

// buildBinaries builds the four binaries as the Dockerfiles do.
func buildBinaries(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=false", "-o", dir+string(filepath.Separator),
		"./services/ingress/cmd/ingress", "./services/authz/cmd/authz",
		"./services/responder/cmd/responder", "./tools/webexsim/cmd/webexsim")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// process is a started binary whose output is kept, and shown when the test
// fails.
type process struct {
	name, path string
	mu         sync.Mutex
	out        bytes.Buffer
	lines      chan string
}

func (p *process) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.Write(b)
}

func startProcess(t *testing.T, name, path string, args, env []string) *process {
	t.Helper()
	p := &process{name: name, path: path, lines: make(chan string, 100)}
	cmd := exec.Command(path, args...)
	cmd.Env = append([]string{}, env...) // nothing inherited from the test's environment
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = p
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			_, _ = p.Write(append(sc.Bytes(), '\n'))
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { <-done; exited <- cmd.Wait() }()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Errorf("%s did not stop within 10s of SIGTERM", name)
		}
		if t.Failed() {
			p.mu.Lock()
			t.Logf("--- %s output:\n%s", name, p.out.String())
			p.mu.Unlock()
		}
	})
	return p
}

// waitForLine waits for a stdout line matching re and returns its first
// group.
func (p *process) waitForLine(t *testing.T, re *regexp.Regexp) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case line := <-p.lines:
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		case <-timeout:
			t.Fatalf("%s printed no line matching %s within 20s", p.name, re)
		}
	}
}

// freeAddr is a 127.0.0.1 address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpStatus(u string) int {
	resp, err := http.Get(u)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// simPost makes alice post text, mentioning the bot, in a new room of the
// emulator.
func simPost(t *testing.T, api, text string) webex.Message {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"personEmail": "alice@example.com", "text": text, "mentionBot": true})
	resp, err := http.Post(api+"/admin/messages", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m webex.Message
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("POST /admin/messages: %s %s", resp.Status, b)
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

// simRoom lists a room's messages, oldest first.
func simRoom(t *testing.T, api, room string) []webex.Message {
	t.Helper()
	resp, err := http.Get(api + "/admin/rooms/" + url.PathEscape(room) + "/messages")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page struct{ Items []webex.Message }
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// scrapeCounter reads one sample of a /metrics page.
func scrapeCounter(t *testing.T, u, series string) int {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return int(f)
		}
	}
	t.Fatalf("%s has no %s", u, series)
	return 0
}

// promServer is a running Prometheus server.
type promServer struct{ url string }

// startPrometheus runs Prometheus scraping every replica each second, with
// the replicas' stage as the job, as deploy/prometheus/prometheus.yml does.
func startPrometheus(t *testing.T, promBin string, replicas []replica) *promServer {
	t.Helper()
	targets := map[string][]string{}
	for _, r := range replicas {
		targets[r.job] = append(targets[r.job], r.metricsAddr)
	}
	var cfg strings.Builder
	cfg.WriteString("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n")
	for _, job := range []string{"ingress", "authz", "responder"} {
		quoted, _ := json.Marshal(targets[job])
		fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs:\n      - targets: %s\n", job, quoted)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(path, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startProcess(t, "prometheus", promBin, []string{
		"--config.file=" + path, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
	}, nil)
	p := &promServer{url: "http://" + addr}
	waitFor(t, 30*time.Second, "Prometheus ready", func() bool {
		return httpStatus(p.url+"/-/ready") == http.StatusOK
	})
	return p
}

// query evaluates a PromQL expression of one sample; -1 when there is none.
func (p *promServer) query(t *testing.T, q string) int {
	t.Helper()
	resp, err := http.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string
		Data   struct {
			Result []struct {
				Value [2]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("query %s: %v", q, err)
	}
	if r.Status != "success" || len(r.Data.Result) != 1 {
		return -1
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return -1
	}
	return int(f)
}
