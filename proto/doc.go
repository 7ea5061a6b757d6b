// Package proto holds the protobuf schemas of the messages on sparkguard's
// bus; the generated Go is in proto/sparkguard/v1 (package sparkguardv1).
// Regenerate with `make generate`.
package proto
