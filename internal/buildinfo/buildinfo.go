// Package buildinfo holds the version stamped into the binary at build
// time, so logs, the User-Agent and `risk-reset-bot version` agree.
package buildinfo

// Version is set with -ldflags "-X risk-reset-bot/internal/buildinfo.Version=v1.2.3".
var Version = "dev"
