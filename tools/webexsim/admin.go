package webexsim

import (
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sparkguard/sparkguard/platform/webex"
)

// adminRoutes adds the admin API: the Sim's methods over HTTP, without a
// token, for the demo and load tests that run the emulator in another
// process. It must not be reachable from untrusted networks. Bodies are
// JSON whatever their Content-Type, so that plain curl -d works.
func (s *Sim) adminRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /admin/people", s.adminAddPerson)
	mux.HandleFunc("POST /admin/messages", s.adminPost)
	mux.HandleFunc("GET /admin/rooms/{roomId}/messages", s.adminRoomMessages)
	mux.HandleFunc("PUT /admin/faults/{op}", s.adminSetFault)
	mux.HandleFunc("DELETE /admin/faults", s.adminClearFaults)
	mux.HandleFunc("GET /admin/stats", s.adminStats)
	mux.HandleFunc("GET /admin/webhooks", s.adminWebhooks)
	mux.HandleFunc("/admin/", func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, msgNotFound)
	})
}

func (s *Sim) adminAddPerson(w http.ResponseWriter, r *http.Request) {
	var p webex.Person
	if err := decodeBody(w, r, &p); err != nil {
		writeErr(w, err)
		return
	}
	if len(p.Emails) == 0 || p.Emails[0] == "" {
		writeError(w, http.StatusBadRequest, "emails is required.")
		return
	}
	writeJSON(w, http.StatusOK, s.AddPerson(p))
}

// adminPostRequest is the body of POST /admin/messages: a Post, whose
// sender may also be named by email.
type adminPostRequest struct {
	Post
	PersonEmail string `json:"personEmail,omitempty"`
}

func (s *Sim) adminPost(w http.ResponseWriter, r *http.Request) {
	var req adminPostRequest
	if err := decodeBody(w, r, &req); err != nil {
		writeErr(w, err)
		return
	}
	if req.PersonID == "" && req.PersonEmail != "" {
		s.mu.Lock()
		req.PersonID = s.emails[strings.ToLower(req.PersonEmail)]
		s.mu.Unlock()
		if req.PersonID == "" {
			writeError(w, http.StatusNotFound, "post: unknown person "+req.PersonEmail)
			return
		}
	}
	m, err := s.Post(req.Post)
	if err != nil {
		writeErr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, m)
}

func (s *Sim) adminRoomMessages(w http.ResponseWriter, r *http.Request) {
	msgs := s.Messages(r.PathValue("roomId"))
	if msgs == nil {
		writeError(w, http.StatusNotFound, msgNotFound)
		return
	}
	writeJSON(w, http.StatusOK, items[webex.Message]{Items: msgs})
}

// faultJSON is a Fault as the admin API reads and writes it.
type faultJSON struct {
	LatencyMS  int64 `json:"latencyMs,omitempty"`
	Status     int   `json:"status,omitempty"`
	RetryAfter int   `json:"retryAfter,omitempty"`
	Times      int   `json:"times,omitempty"`
}

func (s *Sim) adminSetFault(w http.ResponseWriter, r *http.Request) {
	op := r.PathValue("op")
	if !slices.Contains(ops, op) {
		writeError(w, http.StatusNotFound, "Unknown operation "+op+"; known: "+strings.Join(ops, ", ")+".")
		return
	}
	var f faultJSON
	if err := decodeBody(w, r, &f); err != nil {
		writeErr(w, err)
		return
	}
	if f.LatencyMS < 0 || f.RetryAfter < 0 || f.Times < 0 || (f.Status != 0 && (f.Status < 400 || f.Status > 599)) {
		writeError(w, http.StatusBadRequest, "latencyMs, retryAfter and times must not be negative; status must be 4xx or 5xx.")
		return
	}
	s.SetFault(op, Fault{
		Latency:    time.Duration(f.LatencyMS) * time.Millisecond,
		Status:     f.Status,
		RetryAfter: f.RetryAfter,
		Times:      f.Times,
	})
	writeJSON(w, http.StatusOK, f)
}

func (s *Sim) adminClearFaults(w http.ResponseWriter, _ *http.Request) {
	s.ClearFaults()
	w.WriteHeader(http.StatusNoContent)
}

// stats is the body of GET /admin/stats.
type stats struct {
	Calls      map[string]int `json:"calls"`
	Deliveries int            `json:"deliveries"`
}

func (s *Sim) adminStats(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	st := stats{Calls: make(map[string]int, len(ops)), Deliveries: s.deliveries}
	for _, op := range ops {
		st.Calls[op] = s.calls[op]
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

func (s *Sim) adminWebhooks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, items[webex.Webhook]{Items: s.Webhooks()})
}
