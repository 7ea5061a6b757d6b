package webex

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// APIError is a non-2xx answer from Webex. Callers decide with Permanent
// whether to retry (after RetryAfter) or give up; the client never retries
// by itself.
type APIError struct {
	Operation  string        // e.g. "get_person"
	Status     int           // HTTP status
	Message    string        // Webex's "message", or the status text when the body is not Webex-shaped; never holds the token
	TrackingID string        // Webex's trackingId from the body, or the TrackingID response header
	Wait       time.Duration // parsed Retry-After (seconds or an HTTP date), 0 when absent
}

// Error reads like "webex get_person: 404 The requested resource could not
// be found. (trackingId ROUTER_...)", the line to log and to quote to Webex
// support.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "webex %s: %d %s", e.Operation, e.Status, e.Message)
	if e.TrackingID != "" {
		fmt.Fprintf(&b, " (trackingId %s)", e.TrackingID)
	}
	return b.String()
}

// Permanent reports whether sending the same request again cannot succeed:
// true for 4xx answers except 408 (timeout), 423 (locked), 425 (too early)
// and 429 (rate limited); false for those and for 5xx.
func (e *APIError) Permanent() bool {
	switch e.Status {
	case http.StatusRequestTimeout, http.StatusLocked, http.StatusTooEarly, http.StatusTooManyRequests:
		return false
	}
	return e.Status >= 400 && e.Status < 500
}

// RetryAfter is how long Webex asked us to wait before calling again
// (Retry-After), 0 when it did not say.
func (e *APIError) RetryAfter() time.Duration {
	return e.Wait
}

// IsNotFound reports whether err is, or wraps, a 404 answer from Webex.
func IsNotFound(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound
}

// maxErrorMessageBytes bounds APIError.Message so that an odd answer cannot
// flood the logs.
const maxErrorMessageBytes = 512

// newAPIError builds the APIError for a non-2xx answer with the given
// (already size-capped) body. The token is removed from the message in case
// a server echoes the request back.
func newAPIError(op string, resp *http.Response, body []byte, token string, now time.Time) *APIError {
	e := &APIError{
		Operation: op,
		Status:    resp.StatusCode,
		Wait:      parseRetryAfter(resp.Header.Get("Retry-After"), now),
	}
	var eb ErrorBody
	if json.Unmarshal(body, &eb) == nil {
		e.Message = eb.Message
		e.TrackingID = eb.TrackingID
	}
	if e.TrackingID == "" {
		e.TrackingID = resp.Header.Get("TrackingID")
	}
	if strings.TrimSpace(e.Message) == "" {
		e.Message = http.StatusText(resp.StatusCode)
		if e.Message == "" {
			e.Message = "unexpected status"
		}
	}
	e.Message = clean(e.Message, token)
	e.TrackingID = clean(e.TrackingID, token)
	return e
}

// clean makes a server-chosen string safe to log: the token (should a
// server echo it) is replaced, control characters become spaces and the
// length is bounded.
func clean(s, token string) string {
	if token != "" {
		s = strings.ReplaceAll(s, token, "[redacted]")
	}
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxErrorMessageBytes {
		s = s[:maxErrorMessageBytes]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	return strings.TrimSpace(s)
}

// parseRetryAfter reads a Retry-After value: delay-seconds or an HTTP date
// (RFC 9110 §10.2.3). Absent, malformed or past values give 0; absurdly large
// ones saturate instead of overflowing.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		if secs > uint64(math.MaxInt64/int64(time.Second)) {
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(secs) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0
	}
	if d := t.Sub(now); d > 0 {
		return d
	}
	return 0
}

// argumentError is a call the client refuses before sending it, such as an
// empty id. Sending it again cannot help, so it reports itself permanent in
// the same way as APIError.
type argumentError struct {
	op  string
	msg string
}

func (e *argumentError) Error() string   { return fmt.Sprintf("webex %s: %s", e.op, e.msg) }
func (e *argumentError) Permanent() bool { return true }
