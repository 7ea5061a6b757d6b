package webex

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// DefaultTimeout bounds each HTTP request when Options.Timeout is zero.
const DefaultTimeout = 10 * time.Second

const (
	// maxBodyBytes caps what is read of an answer; Webex's largest objects
	// here (a page of 100 webhooks) stay far below it.
	maxBodyBytes = 1 << 20
	// maxDrainBytes is how much of an unread answer is discarded so that
	// the connection can be reused; beyond it the connection is dropped.
	maxDrainBytes = 64 << 10
	// webhooksPageSize is the page size asked for when listing webhooks,
	// Webex's maximum.
	webhooksPageSize = 100
	// maxPages stops following Link headers that never end.
	maxPages = 1000
	// trackingIDPrefix starts the TrackingID sent with every request, so
	// that Webex support can find our calls.
	trackingIDPrefix = "sparkguard_"
)

// The operations, used in errors and as the metrics' "operation" label.
const (
	opGetMe         = "get_me"
	opGetPerson     = "get_person"
	opGetMessage    = "get_message"
	opCreateMessage = "create_message"
	opListWebhooks  = "list_webhooks"
	opGetWebhook    = "get_webhook"
	opCreateWebhook = "create_webhook"
	opUpdateWebhook = "update_webhook"
	opDeleteWebhook = "delete_webhook"
)

// Options configure a Client.
type Options struct {
	BaseURL    string        // e.g. https://webexapis.com/v1 (a trailing slash is tolerated)
	Token      string        // the bot's bearer token
	Timeout    time.Duration // per call (each HTTP request), default DefaultTimeout
	HTTPClient *http.Client  // optional; default a client with sane transport timeouts that does not follow redirects
	Metrics    *Metrics      // optional; nil means no metrics
}

// Client calls the Webex REST API as one bot. It never retries: a failed
// call returns an error (an *APIError for a non-2xx answer, with Retry-After
// parsed) and the caller's queue decides when to try again. After a 429 (or
// 423) with Retry-After, every call fails at once with a 429 *APIError until
// that time has passed, so no replica's worker hammers a rate-limited API. A
// Client is safe for concurrent use.
type Client struct {
	base    url.URL // scheme, host and path prefix, without a trailing slash
	token   string
	timeout time.Duration
	http    *http.Client
	metrics *Metrics
	// pausedUntil (unix nanoseconds) is when the last 429 or 423 allows
	// calling Webex again: until then no call leaves the client.
	pausedUntil atomic.Int64
}

// New returns a Client for opts. It fails when BaseURL is not an absolute
// http or https URL, or when the token is empty.
func New(opts Options) (*Client, error) {
	base, err := parseBaseURL(opts.BaseURL)
	if err != nil {
		return nil, fmt.Errorf("webex: new client: base URL: %w", err)
	}
	token := strings.TrimSpace(opts.Token)
	switch {
	case token == "":
		return nil, errors.New("webex: new client: token is empty")
	case strings.ContainsFunc(token, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		// Say nothing more about it: the token must not reach a log.
		return nil, errors.New("webex: new client: token holds control characters")
	}
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		return nil, fmt.Errorf("webex: new client: timeout %v is negative", timeout)
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = defaultHTTPClient()
	}
	return &Client{
		base:    *base,
		token:   token,
		timeout: timeout,
		http:    hc,
		metrics: opts.Metrics,
	}, nil
}

// parseBaseURL checks that raw is an absolute http(s) URL without query or
// fragment, and drops trailing slashes from its path.
func parseBaseURL(raw string) (*url.URL, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, errors.New("empty")
	}
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		return nil, err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("%q is not an absolute http or https URL", raw)
	case u.Host == "":
		return nil, fmt.Errorf("%q has no host", raw)
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, fmt.Errorf("%q has a query or fragment", raw)
	}
	prefix := strings.TrimRight(u.EscapedPath(), "/")
	u.Path, err = url.PathUnescape(prefix)
	if err != nil {
		return nil, err
	}
	u.RawPath = prefix
	return u, nil
}

// defaultHTTPClient bounds every phase of a connection so that a stuck
// network cannot hold a worker beyond the per-call timeout, and refuses
// redirects: Webex does not send them, and following one could carry a
// request body or the token somewhere unexpected.
func defaultHTTPClient() *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			ExpectContinueTimeout: time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          100,
			MaxIdleConnsPerHost:   32,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Me returns the token's own identity (GET /people/me): the bot's person id,
// used to drop the bot's own messages.
func (c *Client) Me(ctx context.Context) (*Person, error) {
	var p Person
	if _, err := c.do(ctx, opGetMe, http.MethodGet, c.endpoint("/people/me"), nil, &p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, errNoID(opGetMe)
	}
	return &p, nil
}

// Person returns one person (GET /people/{id}), whose own OrgID is the one
// to trust rather than a webhook payload's.
func (c *Client) Person(ctx context.Context, id string) (*Person, error) {
	seg, err := pathSegment(opGetPerson, id)
	if err != nil {
		return nil, err
	}
	var p Person
	if _, err := c.do(ctx, opGetPerson, http.MethodGet, c.endpoint("/people/"+seg), nil, &p); err != nil {
		return nil, err
	}
	if p.ID == "" {
		return nil, errNoID(opGetPerson)
	}
	return &p, nil
}

// Message returns one message with its text (GET /messages/{id}); webhook
// deliveries carry no text.
func (c *Client) Message(ctx context.Context, id string) (*Message, error) {
	seg, err := pathSegment(opGetMessage, id)
	if err != nil {
		return nil, err
	}
	var m Message
	if _, err := c.do(ctx, opGetMessage, http.MethodGet, c.endpoint("/messages/"+seg), nil, &m); err != nil {
		return nil, err
	}
	if m.ID == "" {
		return nil, errNoID(opGetMessage)
	}
	return &m, nil
}

// CreateMessage posts a message (POST /messages) and returns it as Webex
// stored it. Only the fields set in m are sent.
func (c *Client) CreateMessage(ctx context.Context, m MessageRequest) (*Message, error) {
	var out Message
	if _, err := c.do(ctx, opCreateMessage, http.MethodPost, c.endpoint("/messages"), m, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, errNoID(opCreateMessage)
	}
	return &out, nil
}

// Webhooks lists every webhook of the token (GET /webhooks), following the
// Link rel="next" pages to the end. It refuses a next page on another scheme
// or host than the base URL's, so that the token goes nowhere else.
func (c *Client) Webhooks(ctx context.Context) ([]Webhook, error) {
	u := c.endpoint("/webhooks")
	u.RawQuery = url.Values{"max": {fmt.Sprint(webhooksPageSize)}}.Encode()
	seen := map[string]bool{}
	all := []Webhook{}
	for page := 1; ; page++ {
		if page > maxPages {
			return nil, fmt.Errorf("webex %s: follow Link header: more than %d pages", opListWebhooks, maxPages)
		}
		seen[u.String()] = true
		var body struct {
			Items []Webhook `json:"items"`
		}
		header, err := c.do(ctx, opListWebhooks, http.MethodGet, u, nil, &body)
		if err != nil {
			return nil, err
		}
		all = append(all, body.Items...)
		next, err := nextLink(header)
		if err != nil {
			return nil, fmt.Errorf("webex %s: parse Link header of page %d: %w", opListWebhooks, page, err)
		}
		if next == "" {
			return all, nil
		}
		nu, err := u.Parse(next)
		if err != nil {
			return nil, fmt.Errorf("webex %s: parse next page URL of page %d: %w", opListWebhooks, page, err)
		}
		if !strings.EqualFold(nu.Scheme, c.base.Scheme) || !strings.EqualFold(nu.Host, c.base.Host) {
			return nil, fmt.Errorf("webex %s: follow Link header of page %d: refusing next page at %s://%s, not the base URL's %s://%s",
				opListWebhooks, page, nu.Scheme, nu.Host, c.base.Scheme, c.base.Host)
		}
		nu.Fragment, nu.RawFragment = "", ""
		if seen[nu.String()] {
			return nil, fmt.Errorf("webex %s: follow Link header of page %d: next page repeats an earlier one", opListWebhooks, page)
		}
		u = nu
	}
}

// Webhook returns one webhook (GET /webhooks/{id}).
func (c *Client) Webhook(ctx context.Context, id string) (*Webhook, error) {
	seg, err := pathSegment(opGetWebhook, id)
	if err != nil {
		return nil, err
	}
	var w Webhook
	if _, err := c.do(ctx, opGetWebhook, http.MethodGet, c.endpoint("/webhooks/"+seg), nil, &w); err != nil {
		return nil, err
	}
	if w.ID == "" {
		return nil, errNoID(opGetWebhook)
	}
	return &w, nil
}

// CreateWebhook registers a webhook (POST /webhooks) and returns it.
func (c *Client) CreateWebhook(ctx context.Context, w WebhookRequest) (*Webhook, error) {
	var out Webhook
	if _, err := c.do(ctx, opCreateWebhook, http.MethodPost, c.endpoint("/webhooks"), w, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, errNoID(opCreateWebhook)
	}
	return &out, nil
}

// UpdateWebhook changes a webhook (PUT /webhooks/{id}), for instance to
// reactivate one Webex disabled (Status "active") or to rotate its secret.
func (c *Client) UpdateWebhook(ctx context.Context, id string, w WebhookUpdate) (*Webhook, error) {
	seg, err := pathSegment(opUpdateWebhook, id)
	if err != nil {
		return nil, err
	}
	var out Webhook
	if _, err := c.do(ctx, opUpdateWebhook, http.MethodPut, c.endpoint("/webhooks/"+seg), w, &out); err != nil {
		return nil, err
	}
	if out.ID == "" {
		return nil, errNoID(opUpdateWebhook)
	}
	return &out, nil
}

// DeleteWebhook removes a webhook (DELETE /webhooks/{id}).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	seg, err := pathSegment(opDeleteWebhook, id)
	if err != nil {
		return err
	}
	_, err = c.do(ctx, opDeleteWebhook, http.MethodDelete, c.endpoint("/webhooks/"+seg), nil, nil)
	return err
}

// endpoint is the URL of escapedPath (starting with "/") under the base URL.
func (c *Client) endpoint(escapedPath string) *url.URL {
	u := c.base
	u.RawPath = c.base.RawPath + escapedPath
	// The segments were escaped by pathSegment, so this cannot fail.
	u.Path, _ = url.PathUnescape(u.RawPath)
	return &u
}

// pathSegment escapes id for use as one path segment. An empty id would name
// the collection instead (GET /people/ lists people), and "." or ".." would
// name another resource, so those are refused.
func pathSegment(op, id string) (string, error) {
	switch id {
	case "":
		return "", &argumentError{op: op, msg: "id is empty"}
	case ".", "..":
		return "", &argumentError{op: op, msg: fmt.Sprintf("id %q is not an id", id)}
	}
	return url.PathEscape(id), nil
}

// do sends one request and reads its answer: in (if not nil) is sent as
// JSON, a 2xx answer is decoded into out (if not nil), any other answer
// becomes an *APIError. It returns the answer's header for paging.
func (c *Client) do(ctx context.Context, op, method string, u *url.URL, in, out any) (http.Header, error) {
	if wait := time.Until(time.Unix(0, c.pausedUntil.Load())); wait > 0 {
		return nil, &APIError{Operation: op, Status: http.StatusTooManyRequests,
			Message: "not called: waiting out Webex's Retry-After", Wait: wait}
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("webex %s: encode request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}

	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("webex %s: build request: %w", op, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("TrackingID", c.trackingID())
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	start := time.Now()
	resp, err := c.http.Do(req)
	if err != nil {
		c.metrics.observe(op, 0, time.Since(start))
		return nil, fmt.Errorf("webex %s: %w", op, err)
	}
	defer func() {
		// Drain a little so the connection can be reused, then close.
		_, _ = io.CopyN(io.Discard, resp.Body, maxDrainBytes)
		_ = resp.Body.Close()
	}()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		c.metrics.observe(op, 0, time.Since(start))
		return nil, fmt.Errorf("webex %s: read answer (status %d): %w", op, resp.StatusCode, err)
	}
	c.metrics.observe(op, resp.StatusCode, time.Since(start))
	tooLarge := len(raw) > maxBodyBytes

	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if tooLarge {
			raw = nil // the status still says what happened
		}
		apiErr := newAPIError(op, resp, raw, c.token, time.Now())
		c.pause(apiErr)
		return nil, apiErr
	}
	if tooLarge {
		return nil, fmt.Errorf("webex %s: read answer (status %d): larger than %d bytes", op, resp.StatusCode, maxBodyBytes)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("webex %s: decode answer (status %d): %w", op, resp.StatusCode, err)
		}
	}
	return resp.Header, nil
}

// maxPause caps how long one Retry-After holds every call back.
const maxPause = time.Hour

// pause keeps every call from leaving the client until a rate limit's
// Retry-After has passed: Webex asks clients not to call again before then,
// whatever the endpoint.
func (c *Client) pause(e *APIError) {
	if (e.Status != http.StatusTooManyRequests && e.Status != http.StatusLocked) || e.Wait <= 0 {
		return
	}
	// An absurd Retry-After must not overflow the clock nor park the bot
	// for days: an hour is the longest pause.
	until := time.Now().Add(min(e.Wait, maxPause)).UnixNano()
	for {
		cur := c.pausedUntil.Load()
		if cur >= until || c.pausedUntil.CompareAndSwap(cur, until) {
			return
		}
	}
}

// errNoID reports a 2xx answer without the object's id (such as "null" or
// "{}"), which must not pass for a real object: an empty bot id, for one,
// would match nothing when the bot drops its own messages.
func errNoID(op string) error {
	return fmt.Errorf("webex %s: decode answer: no id in it", op)
}

// trackingID returns a new TrackingID for one request.
func (c *Client) trackingID() string {
	var b [16]byte
	// crypto/rand.Read never fails; it crashes the program instead.
	_, _ = rand.Read(b[:])
	return trackingIDPrefix + hex.EncodeToString(b[:])
}

// nextLink returns the target of the first rel="next" link in the Link
// header fields of h (RFC 8288), or "" when there is none.
func nextLink(h http.Header) (string, error) {
	for _, field := range h.Values("Link") {
		links, err := parseLinkHeader(field)
		if err != nil {
			return "", err
		}
		for _, l := range links {
			for _, rel := range strings.Fields(l.rel) {
				if strings.EqualFold(rel, "next") {
					return l.target, nil
				}
			}
		}
	}
	return "", nil
}

// link is one link of a Link header: its target URI reference and its rel
// parameter (space-separated relation types).
type link struct {
	target string
	rel    string
}

// parseLinkHeader parses one Link header field value: a comma-separated list
// of `<URI-reference>; param=value; param="quoted value"`. Commas inside <>
// or quotes do not split links. It is strict, so that a garbled header stops
// the listing rather than silently cutting it short.
func parseLinkHeader(v string) ([]link, error) {
	var links []link
	s := v
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			return links, nil
		}
		if s[0] != '<' {
			return nil, fmt.Errorf("link %d: want '<', found %q", len(links)+1, s[0])
		}
		end := strings.IndexByte(s, '>')
		if end < 0 {
			return nil, fmt.Errorf("link %d: unterminated '<'", len(links)+1)
		}
		l := link{target: strings.TrimSpace(s[1:end])}
		relSeen := false
		s = s[end+1:]
		for {
			s = strings.TrimLeft(s, " \t")
			if s == "" || s[0] == ',' {
				break
			}
			if s[0] != ';' {
				return nil, fmt.Errorf("link %d: want ';' or ',', found %q", len(links)+1, s[0])
			}
			s = strings.TrimLeft(s[1:], " \t")
			n := strings.IndexAny(s, "=;, \t")
			if n < 0 {
				n = len(s)
			}
			name := s[:n]
			s = strings.TrimLeft(s[n:], " \t")
			var value string
			if strings.HasPrefix(s, "=") {
				s = strings.TrimLeft(s[1:], " \t")
				var err error
				value, s, err = paramValue(s)
				if err != nil {
					return nil, fmt.Errorf("link %d: parameter %q: %w", len(links)+1, name, err)
				}
			}
			// Only the first rel counts (RFC 8288 §3.3).
			if strings.EqualFold(name, "rel") && !relSeen {
				l.rel, relSeen = value, true
			}
		}
		links = append(links, l)
	}
}

// paramValue reads a token or a quoted-string at the start of s and returns
// it with the rest of s.
func paramValue(s string) (value, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		n := strings.IndexAny(s, ";, \t")
		if n < 0 {
			n = len(s)
		}
		return s[:n], s[n:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 == len(s) {
				return "", "", errors.New("unterminated quoted string")
			}
			i++
			b.WriteByte(s[i])
		case '"':
			return b.String(), s[i+1:], nil
		default:
			b.WriteByte(s[i])
		}
	}
	return "", "", errors.New("unterminated quoted string")
}
