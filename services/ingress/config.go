package ingress

import (
	"errors"
	"fmt"
	"time"

	"github.com/sparkguard/sparkguard/platform/config"
)

// Config is the ingress's own configuration.
type Config struct {
	// Addr is the webhook listener's address.
	Addr string `env:"INGRESS_ADDR" envDefault:":8080"`
	// Secrets are the webhook secrets, comma-separated; a delivery signed
	// with any one of them is accepted, so a secret can be rotated without
	// a gap.
	Secrets config.Secret `env:"WEBEX_WEBHOOK_SECRETS"`
	// MaxBodyBytes bounds a webhook body; larger ones get 413.
	MaxBodyBytes int64 `env:"INGRESS_MAX_BODY_BYTES" envDefault:"65536"`
	// PublishTimeout bounds the wait for JetStream to store an event; past
	// it the ingress answers 503 and Webex delivers again later.
	PublishTimeout time.Duration `env:"INGRESS_PUBLISH_TIMEOUT" envDefault:"5s"`
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if len(c.secrets()) == 0 {
		errs = append(errs, errors.New("WEBEX_WEBHOOK_SECRETS: required: at least one webhook secret (comma-separated), so that only Webex can call the ingress"))
	}
	if c.MaxBodyBytes <= 0 {
		errs = append(errs, fmt.Errorf("INGRESS_MAX_BODY_BYTES: must be positive, got %d", c.MaxBodyBytes))
	}
	if c.PublishTimeout <= 0 {
		errs = append(errs, fmt.Errorf("INGRESS_PUBLISH_TIMEOUT: must be positive, got %s", c.PublishTimeout))
	}
	return errors.Join(errs...)
}

// secrets splits the secret list.
func (c *Config) secrets() [][]byte {
	var out [][]byte
	for _, s := range config.List(c.Secrets.Reveal()) {
		out = append(out, []byte(s))
	}
	return out
}
