package webexsim

import (
	"net/http"
	"strconv"
	"time"
)

// The operations of the API, as named by SetFault, Calls and the admin
// API (the same names as sparkguard's Webex client metrics).
const (
	OpGetMe         = "get_me"
	OpGetPerson     = "get_person"
	OpGetMessage    = "get_message"
	OpListMessages  = "list_messages"
	OpCreateMessage = "create_message"
	OpListWebhooks  = "list_webhooks"
	OpGetWebhook    = "get_webhook"
	OpCreateWebhook = "create_webhook"
	OpUpdateWebhook = "update_webhook"
	OpDeleteWebhook = "delete_webhook"
)

// ops lists every operation name, in API order.
var ops = []string{
	OpGetMe, OpGetPerson, OpGetMessage, OpListMessages, OpCreateMessage,
	OpListWebhooks, OpGetWebhook, OpCreateWebhook, OpUpdateWebhook, OpDeleteWebhook,
}

// Fault is what an operation does wrong, set with SetFault.
type Fault struct {
	Latency    time.Duration // added before answering
	Status     int           // if non-zero, answer this status with a Webex-shaped error body
	RetryAfter int           // seconds, sent as Retry-After when Status is 429 (or 423)
	Times      int           // how many calls the fault applies to; 0 = until cleared
}

// SetFault makes the next calls of op (all of them, or f.Times of them)
// wait f.Latency and, with f.Status set, fail with that status. It
// replaces op's earlier fault; a zero Fault clears it.
func (s *Sim) SetFault(op string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == (Fault{}) {
		delete(s.faults, op)
		return
	}
	s.faults[op] = &f
}

// ClearFaults removes every fault.
func (s *Sim) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// Calls returns how many API calls of op were received, faulted and
// unauthorized ones included.
func (s *Sim) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

// countCall records a call of op.
func (s *Sim) countCall(op string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[op]++
}

// takeFault returns the fault for one call of op, using up one of its
// Times.
func (s *Sim) takeFault(op string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.faults[op]
	if !ok {
		return Fault{}, false
	}
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(s.faults, op)
		}
	}
	return *f, true
}

// applyFault plays op's fault, if any, and reports whether it answered
// the request (or the client went away during the latency).
func (s *Sim) applyFault(w http.ResponseWriter, r *http.Request, op string) bool {
	f, ok := s.takeFault(op)
	if !ok {
		return false
	}
	if f.Latency > 0 {
		t := time.NewTimer(f.Latency)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return true
		}
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter > 0 && (f.Status == http.StatusTooManyRequests || f.Status == http.StatusLocked) {
		w.Header().Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	writeError(w, f.Status, faultMessage(f.Status))
	return true
}

// faultMessage is the error message Webex gives with status.
func faultMessage(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "Too many requests have been sent in a given amount of time and the request has been rate limited. A Retry-After header should be present that specifies how many seconds you need to wait before a successful request can be made."
	case http.StatusLocked:
		return "The requested resource is temporarily unavailable. A Retry-After header may be present that specifies how many seconds you need to wait before attempting the request again."
	case http.StatusServiceUnavailable:
		return "Server is overloaded with requests. Try again later."
	case http.StatusNotFound:
		return msgNotFound
	}
	if t := http.StatusText(status); t != "" {
		return t + "."
	}
	return "Injected fault."
}
