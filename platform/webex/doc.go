// Package webex is sparkguard's one Webex REST client, the types of the
// Webex API objects it reads and writes, and the webhook signature
// (X-Spark-Signature) that proves a delivery came from Webex.
package webex
