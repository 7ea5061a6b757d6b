// Package platform is the root of what two or more sparkguard services share:
// config loading (config), logging (logging), the observability server (obs),
// the JetStream set-up and workers (bus), and the Webex REST client (webex).
package platform
