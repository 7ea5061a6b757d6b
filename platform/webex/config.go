package webex

import (
	"errors"
	"time"

	"github.com/sparkguard/sparkguard/platform/config"
)

// Config is the Webex part of the configuration of every service that
// calls Webex (authz, the responder, the CLI).
type Config struct {
	APIURL  string        `env:"WEBEX_API_URL" envDefault:"https://webexapis.com/v1"`
	Token   config.Secret `env:"WEBEX_ACCESS_TOKEN"`
	Timeout time.Duration `env:"WEBEX_API_TIMEOUT" envDefault:"10s"`
}

// Validate reports a missing token or a bad URL or timeout, all at once.
func (c *Config) Validate() error {
	var errs []error
	if c.Token.Reveal() == "" {
		errs = append(errs, errors.New("WEBEX_ACCESS_TOKEN: required: the bot's access token"))
	}
	if _, err := parseBaseURL(c.APIURL); err != nil {
		errs = append(errs, errors.New("WEBEX_API_URL: "+err.Error()))
	}
	if c.Timeout <= 0 {
		errs = append(errs, errors.New("WEBEX_API_TIMEOUT: must be positive"))
	}
	return errors.Join(errs...)
}

// NewClient returns the client c describes, reporting to metrics (which
// may be nil).
func (c *Config) NewClient(metrics *Metrics) (*Client, error) {
	return New(Options{BaseURL: c.APIURL, Token: c.Token.Reveal(), Timeout: c.Timeout, Metrics: metrics})
}
