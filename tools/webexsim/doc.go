// Package webexsim emulates the parts of the Webex REST API that sparkguard
// uses (people, messages, webhooks) and delivers signed webhooks the way
// Webex does, so that tests, the demo and load tests run without a Webex
// account.
//
// A Sim is an http.Handler factory plus a few methods that act as the rest
// of the world: simulated people post messages (Post), tests inspect what
// the bot answered (Messages) and inject faults per operation (SetFault).
// The same controls are served over HTTP under /admin/ for use across
// processes; the Webex API itself is served under /v1/.
//
//	sim := webexsim.New(webexsim.Options{Token: "t"})
//	srv := httptest.NewServer(sim.Handler())
//	defer srv.Close()
//	defer sim.Close()
//	// point the code under test at srv.URL + "/v1"
//
// Answers stay inside the schemas of Webex's published OpenAPI definition;
// ids have the real format (unpadded base64 of ciscospark://us/KIND/uuid).
package webexsim
