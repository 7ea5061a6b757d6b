package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// TestNATSPasswordsFromEnvironment: nats.conf takes the passwords from
// the environment ($NATS_INGRESS_PASSWORD…), and nats-server parses a
// variable's value as configuration, not as a string. The recipe's values
// (openssl rand -hex 32) and the sim profile's come through unchanged; a
// value that reads as a number (digits, digits with a size suffix such as
// k or e), a boolean, or that starts with "-" stops the server at start.
// docs/deploy.md ("Secrets") tells operators so.
func TestNATSPasswordsFromEnvironment(t *testing.T) {
	load := func(t *testing.T, pw string) (string, error) {
		t.Helper()
		t.Setenv("NATS_INGRESS_PASSWORD", pw)
		t.Setenv("NATS_AUTHZ_PASSWORD", "unused-authz")
		t.Setenv("NATS_RESPONDER_PASSWORD", "unused-responder")
		opts, err := server.ProcessConfigFile("nats/nats.conf")
		if err != nil {
			return "", err
		}
		for _, u := range opts.Users {
			if u.Username == "ingress" {
				return u.Password, nil
			}
		}
		t.Fatal("nats.conf: no user ingress")
		return "", nil
	}

	var kept []string
	for range 20 { // openssl rand -hex 32
		b := make([]byte, 32)
		rand.Read(b)
		kept = append(kept, hex.EncodeToString(b))
	}
	sim, err := os.ReadFile("sim/secrets/nats_ingress_password")
	if err != nil {
		t.Fatal(err)
	}
	kept = append(kept, strings.TrimSpace(string(sim))) // the sim profile's
	for _, pw := range kept {
		got, err := load(t, pw)
		if err != nil || got != pw {
			t.Errorf("password %q: nats-server read %q, %v; want it unchanged", pw, got, err)
		}
	}

	for _, pw := range []string{"1234567890", "12k", "12MB", "12e", "0123", "12.5", "true", "no", "-abc"} {
		if got, err := load(t, pw); err == nil {
			t.Errorf("password %q: nats-server read %q without error; docs/deploy.md says such values stop it", pw, got)
		} else {
			t.Logf("password %q: %v", pw, err)
		}
	}
}
